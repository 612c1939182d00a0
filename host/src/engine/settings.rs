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

/// A wasmtime engine with the serving engine's settings (for `hypervisor precompile`).
///
/// # Errors
/// [`EngineError::Internal`] if wasmtime rejects the settings.
pub fn host_engine(config: &Config) -> Result<wasmtime::Engine, EngineError> {
    let mut wc = code_generation(config);
    add_pool(&mut wc, config);
    wasmtime::Engine::new(&wc).map_err(|e| EngineError::Internal(e.to_string()))
}
