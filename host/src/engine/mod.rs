//! The engine: one wasmtime engine per process (pooling allocator, copy-on-write memory images,
//! epoch deadlines from a single ticker), a cache of compiled components, and a fresh store and
//! instance for every execution; beside it, RISC-V programs on PolkaVM (`riscv.rs`), prepared
//! into the same cache and run behind the same calls ([`Engine::prepare`],
//! [`Engine::run_command`]).

mod cache;
mod capabilities;
mod handler;
mod host_imports;
mod http_agent;
mod imports;
mod js_compiler;
mod js_heap;
mod js_shared;
pub use js_shared::precompiled_parts as js_runtime_precompiled_parts;
mod outgoing;
mod output;
pub mod precompiled;
mod riscv;
mod run;
mod sandbox;
mod settings;
mod snapshot;
mod starlingmonkey;
mod state;
mod state_grant;
mod ticker;

use std::sync::Arc;
use std::time::Duration;

use hypervisor_protocol::wire::ProgramKind;
use sha2::Digest;
use wasmtime::component::{InstancePre, Linker};

pub use cache::{CacheStats, Prepared};
pub use capabilities::{Args, Capabilities, Egress, HostImports, Invocation, Role, Stdin, Wasi};
pub use handler::{HandlerContext, HandlerError, HandlerOutcome, handler_input};
pub use http_agent::{HttpAgentError, HttpResponse};
pub use js_compiler::JsRuntime;
pub use outgoing::{OutgoingFuture, OutgoingHook};
pub use output::{CappedOutput, LABEL_BYTES, TRAP_DETAIL_BYTES, cap_text};
pub use riscv::{LINK_CHILD_ARG, MAX_ELF_BYTES};
pub use run::{CommandInput, RunLimits, RunOutcome, Sandbox, classify_error, is_deadline};
pub use sandbox::HostState;
pub use settings::{PRECOMPILED_CPU, precompile_engine};
pub use snapshot::{JsModule, JsSnapshot, MAX_SETUP_TIME, SnapshotError};
pub use starlingmonkey::StarlingMonkey;
pub use state_grant::StateAccess;

use crate::attestation::Attestor;
use crate::config::Config;
use crate::crypto::plaintext::Plaintext;
use crate::storage::artifacts::ArtifactStore;

/// The error and its causes, one line.
pub(super) fn error_chain(e: &wasmtime::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

/// Why a component could not be prepared or run. Guest misbehaviour (traps, deadlines,
/// memory) is not an error: it is an outcome, see [`RunOutcome`].
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The bytes are not a valid WebAssembly component.
    #[error("not a valid WebAssembly component: {0}")]
    InvalidComponent(String),
    /// Not a RISC-V program this host runs (the message says why).
    #[error("{0}")]
    InvalidRiscvProgram(String),
    /// The request declared one kind of program and sent another.
    #[error("`program_kind` is {declared}, but the program is {found}")]
    ProgramKindMismatch {
        /// What the request said.
        declared: &'static str,
        /// What the program's first bytes are.
        found: &'static str,
    },
    /// RISC-V programs are turned off on this host.
    #[error("this host does not run RISC-V programs (riscv.enabled = false)")]
    RiscvUnavailable,
    /// The component imports something outside WASI and `hypervisor:host`.
    #[error(
        "component imports `{0}`, which is neither a WASI interface nor hypervisor:host/crypto or hypervisor:host/attestation"
    )]
    DisallowedImport(String),
    /// The component imports a WASI interface (or version) this host does not provide.
    #[error("component import cannot be satisfied: {0}")]
    UnsupportedImport(String),
    /// The component does not export `wasi:cli/run`.
    #[error("component is not a command: it does not export wasi:cli/run@0.2")]
    NotACommand,
    /// The component exports none of the entry points an agent can have.
    #[error(
        "component is not an agent: it exports none of wasi:cli/run, wasi:http/incoming-handler, hypervisor:host/handler"
    )]
    NotAnAgent,
    /// The component does not export `hypervisor:host/handler`.
    #[error("component is not a handler agent: it does not export hypervisor:host/handler")]
    NotAHandler,
    /// The component does not export `wasi:http/incoming-handler`.
    #[error("component is not an HTTP agent: it does not export wasi:http/incoming-handler")]
    NotAnHttpAgent,
    /// All execution slots stayed busy (only with a bounded wait).
    #[error("all execution slots are busy")]
    Busy,
    /// Anything else (a host-side failure, not the client's fault).
    #[error("engine failure: {0}")]
    Internal(String),
}

/// The kind of `bytes`, as `declared` (the request's `program_kind`) must agree: a RISC-V ELF
/// file, or else WebAssembly (whose compiler then says what is wrong with anything else).
///
/// # Errors
/// [`EngineError::ProgramKindMismatch`] when the program is of the other kind than declared;
/// [`EngineError::InvalidRiscvProgram`] for a file declared RISC-V that is no RISC-V ELF file.
pub fn program_kind(
    bytes: &[u8],
    declared: Option<ProgramKind>,
) -> Result<ProgramKind, EngineError> {
    use hypervisor_protocol::program::{Recognised, recognise};
    let found = match recognise(bytes) {
        Recognised::Kind(kind) => Some(kind),
        Recognised::OtherElf(_) | Recognised::Unknown => None,
    };
    let name = |k: ProgramKind| match k {
        ProgramKind::Wasm => "wasm (a WebAssembly component)",
        ProgramKind::Riscv => "riscv (a RISC-V ELF file)",
    };
    match (declared, found) {
        (Some(d), Some(f)) if d != f => Err(EngineError::ProgramKindMismatch {
            declared: name(d),
            found: name(f),
        }),
        (Some(ProgramKind::Riscv), None) => Err(EngineError::InvalidRiscvProgram(
            hypervisor_riscv::program::check_elf_header(bytes)
                .err()
                .map_or_else(|| "not a RISC-V ELF file".to_string(), |e| e.to_string()),
        )),
        (_, Some(f)) => Ok(f),
        (_, None) => Ok(ProgramKind::Wasm),
    }
}

/// A loaded plug-in component, pre-linked and ready to instantiate.
#[derive(Clone)]
pub struct Plugin {
    /// SHA-256 of the component file.
    pub hash: [u8; 32],
    /// The pre-linked component.
    pub pre: InstancePre<HostState>,
}

/// Payments plug-in calls in flight at once; more wait. Part of the pool's size on top of the
/// executions (with the payments instances kept warm between calls).
pub const PLUGIN_CALLS: u32 = 64;

/// The engine shared by all requests.
pub struct Engine {
    engine: wasmtime::Engine,
    linker: Linker<HostState>,
    /// Compiles the JavaScript runtime and its snapshots (the agents' code is never compiled
    /// there).
    js_compiler: Arc<js_compiler::JsCompiler>,
    cache: cache::ComponentCache,
    plugins: cache::ComponentCache,
    /// Plug-ins loaded by this process, by file hash (the policy and the Python runtime are
    /// usually the same file: compiled once, loaded once).
    plugin_memo: std::sync::Mutex<lru::LruCache<[u8; 32], wasmtime::component::Component>>,
    slots: Arc<tokio::sync::Semaphore>,
    max_slots: u32,
    /// Permits for short plug-in calls (payments).
    plugin_calls: tokio::sync::Semaphore,
    attestor: Arc<Attestor>,
    fuel: bool,
    stdout_bytes: usize,
    stderr_bytes: usize,
    tick: Duration,
    deadlines: Arc<ticker::Deadlines>,
    _ticker: ticker::EpochTicker,
    /// RISC-V programs (`None` when `riscv.enabled = false`).
    riscv: Option<riscv::Starting>,
}

impl Engine {
    /// Builds the engine from the configuration.
    ///
    /// # Errors
    /// [`EngineError::Internal`] if wasmtime rejects the configuration or the ticker thread
    /// cannot start.
    pub fn new(
        config: &Config,
        disk: Option<ArtifactStore>,
        plugin_disk: Option<ArtifactStore>,
        attestor: Arc<Attestor>,
    ) -> Result<Self, EngineError> {
        let internal = |e: &dyn std::fmt::Display| EngineError::Internal(e.to_string());
        let limits = &config.limits;
        let ec = &config.engine;

        let mut wc = settings::code_generation(config);
        // The same code generation, without the pool: where the JavaScript runtime's code is
        // compiled (`js_compiler`).
        let js_compiler = Arc::new(js_compiler::JsCompiler::new(
            wc.clone(),
            ec.js_function_cache_bytes,
        )?);
        settings::add_pool(&mut wc, config);
        let engine = wasmtime::Engine::new(&wc).map_err(|e| internal(&e))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| internal(&e))?;
        // wasi:http is linked for every component; requests are denied unless granted.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| internal(&e))?;
        host_imports::add_to_linker(&mut linker).map_err(|e| internal(&e))?;
        // wasi:keyvalue and wasi:config for every component; only agents get a store behind
        // them.
        state::add_to_linker(&mut linker).map_err(|e| internal(&e))?;

        let tick = Duration::from_millis(ec.epoch_tick_ms);
        let deadlines = Arc::new(ticker::Deadlines::default());
        let ticker = ticker::EpochTicker::start(engine.clone(), tick, deadlines.clone())
            .map_err(|e| internal(&e))?;
        let riscv = riscv::Starting::start(&config.riscv)?;
        let cache = cache::ComponentCache::new(
            ec.memory_cache_entries,
            ec.memory_cache_bytes,
            disk,
            "component",
        );
        let plugins = cache::ComponentCache::new(1, usize::MAX, plugin_disk, "plug-in")
            .with_precompiled(precompiled::open_configured(
                config.precompiled_dir().as_deref(),
                || settings::precompile_engine(config),
            ));
        Ok(Self {
            engine,
            linker,
            js_compiler,
            cache,
            plugins,
            plugin_memo: std::sync::Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(4).unwrap_or(std::num::NonZeroUsize::MIN),
            )),
            max_slots: ec.max_concurrent_executions,
            plugin_calls: tokio::sync::Semaphore::new(PLUGIN_CALLS as usize),
            slots: Arc::new(tokio::sync::Semaphore::new(
                ec.max_concurrent_executions as usize,
            )),
            attestor,
            fuel: ec.fuel,
            stdout_bytes: limits.stdout_bytes,
            stderr_bytes: limits.stderr_bytes,
            tick,
            deadlines,
            _ticker: ticker,
            riscv,
        })
    }

    /// How RISC-V programs run here (`GET /host`); `None` when they do not (or their executor
    /// could not start).
    pub async fn riscv_info(&self) -> Option<hypervisor_protocol::host::RiscvInfo> {
        Some(self.riscv()?.await.ok()?.info())
    }

    /// The RISC-V executor, once set up; `None` when RISC-V programs are turned off.
    fn riscv(&self) -> Option<impl Future<Output = Result<&riscv::Riscv, EngineError>>> {
        self.riscv.as_ref().map(riscv::Starting::get)
    }

    /// Whether fuel metering is on.
    pub fn fuel_enabled(&self) -> bool {
        self.fuel
    }

    /// The most bytes of output an execution may hand back (`limits.stdout_bytes`): the cap
    /// on captured stdout, and on what a handler or script returns through its interface.
    pub fn output_bytes(&self) -> usize {
        self.stdout_bytes
    }

    /// Compiles (or fetches from the memory or disk cache) a command component and checks its
    /// imports and exports. `hash` must be the SHA-256 of `bytes`.
    ///
    /// # Errors
    /// [`EngineError::InvalidComponent`], [`EngineError::DisallowedImport`],
    /// [`EngineError::UnsupportedImport`], [`EngineError::NotACommand`].
    pub async fn prepare_command(
        &self,
        hash: [u8; 32],
        bytes: Arc<Plaintext>,
    ) -> Result<Arc<Prepared>, EngineError> {
        let prepared = self.prepare(hash, bytes).await?;
        if prepared.command.is_none() && prepared.riscv.is_none() {
            return Err(EngineError::NotACommand);
        }
        Ok(prepared)
    }

    /// The prepared component for `hash` if it is in the memory cache (no disk access).
    pub fn cached(&self, hash: &[u8; 32]) -> Option<Arc<Prepared>> {
        self.cache.cached(hash)
    }

    /// [`Self::prepare`] for an agent's component when `js` is the host's JavaScript runtime
    /// and `sm` StarlingMonkey: a snapshot of one of them that is neither in memory nor on
    /// disk (deployed on another replica, or its artifact lost) runs over that engine's shared
    /// code (`js_shared`, milliseconds), or, laid out otherwise, is compiled through that
    /// engine's function cache (a second or two) instead of from scratch.
    ///
    /// # Errors
    /// As [`Self::prepare`].
    pub async fn prepare_agent(
        &self,
        hash: [u8; 32],
        bytes: Arc<Plaintext>,
        js: Option<&JsRuntime>,
        sm: Option<&Arc<StarlingMonkey>>,
    ) -> Result<Arc<Prepared>, EngineError> {
        if let Some(prepared) = self.cache.cached(&hash) {
            return Ok(prepared);
        }
        // A snapshot of one of the host's JavaScript engines, neither in memory nor on disk:
        // through that engine's compiler (a fraction of a second, not seconds). The code is
        // hashed only when the disk cannot serve it, and once for both engines.
        if !self.cache.on_disk(&hash) {
            let sections = js_compiler::code_sections(&bytes);
            let boa = js.filter(|js| js.made_this(&sections));
            let sm = sm.filter(|sm| boa.is_none() && sm.made_this(&sections));
            let (shared, compiler, which) = match (boa, sm) {
                (Some(js), _) => (
                    js.shared(self).await,
                    self.js_compiler.clone(),
                    "the runtime's compiler",
                ),
                (None, Some(sm)) => (
                    sm.shared(self).await,
                    sm.compiler(),
                    "StarlingMonkey's compiler",
                ),
                (None, None) => return self.prepare(hash, bytes).await,
            };
            let (prepared, over_shared) =
                self.prepare_snapshot(shared, compiler, hash, bytes).await?;
            if over_shared {
                tracing::info!(
                    hash = %hex::encode(hash),
                    "a JavaScript agent's snapshot prepared over its engine's shared code"
                );
            } else {
                tracing::info!(
                    hash = %hex::encode(hash),
                    "a JavaScript agent's snapshot compiled through {which}"
                );
            }
            return Ok(prepared);
        }
        self.prepare(hash, bytes).await
    }

    /// Compiles (or fetches from the caches) any component and checks its imports; what it
    /// can run as is [`Prepared::kind`]. `hash` must be the SHA-256 of `bytes`.
    ///
    /// # Errors
    /// [`EngineError::InvalidComponent`], [`EngineError::DisallowedImport`],
    /// [`EngineError::UnsupportedImport`].
    pub async fn prepare(
        &self,
        hash: [u8; 32],
        bytes: Arc<Plaintext>,
    ) -> Result<Arc<Prepared>, EngineError> {
        if program_kind(&bytes, None)? == ProgramKind::Riscv {
            let riscv = self.riscv().ok_or(EngineError::RiscvUnavailable)?.await?;
            return self
                .cache
                .get_or_init(hash, || async {
                    // One of the compilations allowed at once, as a component's takes.
                    let _slot = self.cache.compile_slot().await?;
                    let compiled = riscv.prepare(bytes).await?;
                    self.cache.count_compile();
                    // Weighed by what it holds in this process (its code and data images
                    // are kept beside it), against `engine.memory_cache_bytes`.
                    let held = compiled.held_bytes();
                    Ok(Arc::new(Prepared {
                        hash,
                        command: None,
                        http: None,
                        handler: None,
                        riscv: Some(Arc::new(compiled)),
                        bytes: held,
                    }))
                })
                .await;
        }
        self.cache
            .get_or_prepare(&self.engine, &self.linker, hash, bytes)
            .await
    }

    /// Runs a prepared command in a fresh store and instance with `capabilities` (those of
    /// [`Role::ClientProgram`] or [`Role::CliAgent`]). Waits for a free execution slot first
    /// (at most `max_concurrent_executions` run at once).
    ///
    /// # Errors
    /// [`EngineError::Internal`] for host-side failures; guest failures are outcomes.
    pub async fn run_command(
        &self,
        capabilities: &Capabilities,
        prepared: &Prepared,
        input: CommandInput,
    ) -> Result<RunOutcome, EngineError> {
        let _slot = self.execution_slot().await?;
        if let Some(compiled) = &prepared.riscv {
            let riscv = self.riscv().ok_or(EngineError::RiscvUnavailable)?.await?;
            let run = riscv::Run {
                stdout_bytes: self.stdout_bytes,
                stderr_bytes: self.stderr_bytes,
                services: riscv::HostServices {
                    attestor: self.attestor.clone(),
                    program_hash: prepared.hash,
                    allowed: capabilities.host,
                },
            };
            return riscv.run(run, compiled.clone(), input).await;
        }
        run::run_command(self, capabilities, prepared, input).await
    }

    /// Loads a plug-in component (policy, Python runtime, payments) from its `bytes`: from the
    /// sealed plug-in cache when these exact bytes were compiled before, otherwise compiled and
    /// cached (start-up never recompiles an unchanged plug-in). Imports are checked against
    /// `role`'s capabilities, then the component is pre-linked against the host's linker.
    ///
    /// # Errors
    /// The errors of [`Self::prepare_command`] for a bad component.
    pub async fn load_plugin(&self, role: Role, bytes: Vec<u8>) -> Result<Plugin, EngineError> {
        let hash: [u8; 32] = sha2::Sha256::digest(&bytes).into();
        let allowed = Capabilities::of(role).host;
        let known = self.plugin_memo().get(&hash).cloned();
        let component = match known {
            Some(c) => {
                // Loaded before, maybe for another role: check against this one's.
                imports::check(&c, &self.engine, allowed)?;
                c
            }
            None => {
                let c = self
                    .plugins
                    .load_or_compile(&self.engine, hash, Arc::new(Plaintext::new(bytes)), allowed)
                    .await?;
                self.plugin_memo().put(hash, c.clone());
                c
            }
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| EngineError::UnsupportedImport(error_chain(&e)))?;
        Ok(Plugin { hash, pre })
    }

    fn plugin_memo(
        &self,
    ) -> std::sync::MutexGuard<'_, lru::LruCache<[u8; 32], wasmtime::component::Component>> {
        self.plugin_memo.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for one of the `max_concurrent_executions` execution slots; hold the permit
    /// while the guest runs.
    ///
    /// # Errors
    /// [`EngineError::Busy`] if the slots were closed.
    pub async fn execution_slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, EngineError> {
        self.slots.acquire().await.map_err(|_| EngineError::Busy)
    }

    /// Waits for one of the [`PLUGIN_CALLS`] permits for a plug-in call (payments); hold it
    /// for the call.
    ///
    /// # Errors
    /// [`EngineError::Busy`] if the permits were closed.
    pub async fn plugin_call_slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, EngineError> {
        self.plugin_calls
            .acquire()
            .await
            .map_err(|_| EngineError::Busy)
    }

    /// [`Self::execution_slot`], for a guest running in a task of its own.
    ///
    /// # Errors
    /// [`EngineError::Busy`] if the slots were closed.
    pub async fn owned_execution_slot(
        &self,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, EngineError> {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| EngineError::Busy)
    }

    /// Compile-cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Plug-in loads: precompiled, from the sealed disk cache, compiled.
    pub fn plugin_stats(&self) -> CacheStats {
        self.plugins.stats()
    }

    /// Execution slots taken now, and slots in all.
    pub fn slots_in_use(&self) -> (u64, u64) {
        let all = u64::from(self.max_slots);
        let free = self.slots.available_permits() as u64;
        (all.saturating_sub(free), all)
    }
}
