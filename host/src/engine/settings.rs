//! The wasmtime settings of the host's engine, from the configuration: written once, for the
//! engine that serves, the one that compiles the JavaScript runtime's code (the same code
//! generation, no pool) and `hypervisor precompile`, whose artifacts must match the first.

use wasmtime::{InstanceAllocationStrategy, PoolingAllocationConfig};

use super::{EngineError, PLUGIN_CALLS};
use crate::config::Config;

/// Code generation and run-time checks: what an artifact compiled elsewhere must agree with.
pub(super) fn code_generation(config: &Config) -> wasmtime::Config {
    let limits = &config.limits;
    let mut wc = wasmtime::Config::new();
    wc.wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(config.engine.fuel)
        .max_wasm_stack(limits.max_wasm_stack_bytes)
        // Host calls made by the guest run on the same fiber stack: leave them room.
        .async_stack_size(limits.max_wasm_stack_bytes + (1 << 20))
        .memory_init_cow(true);
    wc
}

/// The pooling allocator, when configured.
pub(super) fn add_pool(wc: &mut wasmtime::Config, config: &Config) {
    let ec = &config.engine;
    if !ec.pooling_allocator {
        return;
    }
    // Executions, plus the plug-ins' instances: the policy's warm ones, the payments calls in
    // flight (bounded by `plugin_calls`) and the payments instances kept warm between calls, so
    // a full set of executions never starves a plug-in of a pool slot, nor the other way round.
    let policy = u32::try_from(config.policy.instances).unwrap_or(u32::MAX);
    let payments = u32::try_from(config.payments.warm_instances).unwrap_or(u32::MAX);
    let n = ec
        .max_concurrent_executions
        .saturating_add(policy)
        .saturating_add(PLUGIN_CALLS)
        .saturating_add(payments);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(16))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(16))
        .total_stacks(n)
        .max_memory_size(usize::try_from(config.limits.max_memory_bytes).unwrap_or(usize::MAX))
        // Reset the pages an instance dirtied in place rather than unmapping them: the next
        // instance in the slot then takes no page faults (the largest cost of a short instance
        // after instantiation itself).
        .linear_memory_keep_resident(ec.pool_keep_resident_bytes)
        .table_keep_resident(ec.pool_keep_resident_bytes.min(1 << 20))
        .pagemap_scan(wasmtime::Enabled::Auto);
    wc.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
}

/// The target this binary was built for (its Rust target triple), which its engines compile
/// for.
pub const TARGET: &str = env!("HYPERVISOR_TARGET");

/// The CPU features code compiled ahead of time is compiled for on x86-64, whatever the
/// machine that compiles it: Cranelift's `x86-64-v3` (AVX2, BMI1 and BMI2, FMA, LZCNT and
/// what x86-64-v2 has), which every Intel TDX host (Sapphire Rapids and later) and AMD SEV-SNP
/// host (EPYC Milan and later) has. The same binary then writes the same artifacts on any
/// build machine (the image stays reproducible), and they load on any machine with these
/// features: wasmtime checks each enabled feature against the CPU when it loads an artifact;
/// a machine without one compiles instead, and logs why.
pub const PRECOMPILED_CPU: &str = "x86-64-v3";

/// A wasmtime engine with the serving engine's settings, code generation made independent
/// of this machine's CPU ([`PRECOMPILED_CPU`]): the engine of `hypervisor precompile`, and the
/// one whose fingerprint precompiled artifacts must carry. (No pool: it only compiles, and
/// the pool does not change code generation.)
///
/// # Errors
/// [`EngineError::Internal`] if wasmtime rejects the settings.
pub fn precompile_engine(config: &Config) -> Result<wasmtime::Engine, EngineError> {
    let internal = |e: &dyn std::fmt::Display| EngineError::Internal(e.to_string());
    let mut wc = code_generation(config);
    if cfg!(target_arch = "x86_64") {
        // The host's own triple, named: wasmtime then infers no feature from this CPU.
        wc.target(TARGET).map_err(|e| internal(&e))?;
        // SAFETY: enabling CPU features for code generation is unsafe because code using a
        // feature the running CPU lacks would fault. This engine's code runs only after
        // wasmtime has checked every enabled feature against the CPU (`hypervisor precompile`
        // checks each artifact it writes by loading it; a serving host loads them with its
        // own engine, which checks them again), and x86-64 hosts have no soft-float ABI.
        #[allow(unsafe_code)]
        unsafe {
            wc.cranelift_flag_enable(PRECOMPILED_CPU);
        }
    }
    wasmtime::Engine::new(&wc).map_err(|e| internal(&e))
}
