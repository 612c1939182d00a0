//! The executor: one PolkaVM engine per process, on the backend this machine can run, and the
//! programs compiled for it.
//!
//! The recompiler turns a program into native code and runs it in a worker process of its own
//! (a seccomp filter, new user, network and PID namespaces, no file system); PolkaVM keeps a few
//! idle workers for the next runs. It needs unprivileged user namespaces, which container
//! runtimes' default seccomp profiles often refuse. [`BackendChoice::Auto`] then falls back to
//! PolkaVM's interpreter, which runs the program in the host's own process (slower, no worker).
//! The choice is probed once, at start, by running a small program.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use polkavm::{
    BackendKind, Config, CorePinning, Engine, GasMeteringKind, Module, ModuleConfig, RawInstance,
};

use crate::program::Program;
use crate::watchdog::Watchdog;

/// The first slice of gas of a run (`run.rs`).
pub(crate) const FIRST_SLICE: u64 = 1 << 20;

/// The backend that runs programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PolkaVM's recompiler, each run in a sandboxed worker process.
    Recompiler,
    /// PolkaVM's interpreter, in the host's process.
    Interpreter,
}

impl Backend {
    /// `recompiler` or `interpreter`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Recompiler => "recompiler",
            Self::Interpreter => "interpreter",
        }
    }
}

/// Which backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// The recompiler where its sandbox starts, the interpreter otherwise.
    #[default]
    Auto,
    /// The recompiler, or fail to start.
    Recompiler,
    /// The interpreter.
    Interpreter,
}

/// How the executor is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutorConfig {
    /// The backend.
    pub backend: BackendChoice,
    /// Idle worker processes the recompiler keeps for the next runs (each some tens of KiB).
    pub idle_workers: usize,
    /// Programs whose next run's instance the recompiler may have ready at once
    /// ([`Executor::prewarm`]; each holds a worker process). 0: none.
    pub warm_instances: usize,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            backend: BackendChoice::Auto,
            idle_workers: 2,
            warm_instances: 4,
        }
    }
}

/// A host-side failure of the executor (never the program's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutorError {
    /// The engine could not be set up with the chosen backend.
    #[error("the RISC-V executor cannot start: {0}")]
    Start(String),
    /// PolkaVM could not compile a program that passed intake.
    #[error("the RISC-V program could not be compiled: {0}")]
    Compile(String),
    /// A run failed on the host's side: no worker process, or one that died for another
    /// reason than a limit.
    #[error("the RISC-V executor failed: {0}")]
    Run(String),
}

/// A program compiled for the executor's backend: instantiate it for each run.
#[derive(Clone)]
pub struct Compiled {
    pub(crate) module: Module,
    pub(crate) program: Program,
    /// Bytes of the program's fixed memory: read-only data, read-write data (with its zeroed
    /// part) and stack, each rounded to whole pages.
    pub(crate) static_memory: u64,
    /// A fresh instance made ahead of the next run ([`Executor::prewarm`]).
    pub(crate) warm: Arc<WarmSlot>,
}

/// At most one instance of a program, instantiated ahead of its next run and never run: the
/// next run takes it instead of instantiating (with the recompiler, loading a program into a
/// worker process costs tens of microseconds). Dropping it gives its worker back.
pub(crate) struct WarmSlot {
    instance: Mutex<Option<RawInstance>>,
    /// Instances parked in all slots of the executor.
    parked: Arc<AtomicUsize>,
}

impl WarmSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<RawInstance>> {
        self.instance.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn is_full(&self) -> bool {
        self.lock().is_some()
    }

    /// Parks `instance` unless one is parked already (then `instance` is dropped).
    fn park(&self, instance: RawInstance) -> bool {
        let mut parked = self.lock();
        if parked.is_some() {
            return false;
        }
        *parked = Some(instance);
        self.parked.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The parked instance, if there is one.
    pub(crate) fn take(&self) -> Option<RawInstance> {
        let taken = self.lock().take();
        if taken.is_some() {
            self.parked.fetch_sub(1, Ordering::Relaxed);
        }
        taken
    }
}

impl Drop for WarmSlot {
    fn drop(&mut self) {
        // Counted down; the instance's worker goes back to PolkaVM.
        drop(self.take());
    }
}

impl Compiled {
    /// Bytes of the program's fixed memory (read-only and read-write data, stack), which a
    /// run's memory limit must hold before the heap grows.
    pub fn static_memory(&self) -> u64 {
        self.static_memory
    }

    /// The checked program.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// About how many bytes the compiled program holds while it is kept: its blob, its
    /// compiled code, and its fixed memory's image (read-only and read-write data, stack),
    /// which the backend keeps beside the code (for a memory budget).
    pub fn held_bytes(&self) -> usize {
        let code = self.module.machine_code().map_or(0, <[u8]>::len);
        let memory = usize::try_from(self.static_memory).unwrap_or(usize::MAX);
        self.program
            .blob_len()
            .saturating_add(code)
            .saturating_add(memory)
    }
}

/// Runs RISC-V programs. Cheap to share: clone the [`Arc`].
pub struct Executor {
    pub(crate) engine: Engine,
    backend: Backend,
    fallback: Option<String>,
    module_config: ModuleConfig,
    pub(crate) watchdog: Option<Arc<Watchdog>>,
    /// The first slice of gas of a run (later ones adapt to take a few milliseconds).
    pub(crate) first_slice: u64,
    /// Instances parked ahead of their runs, in all programs' slots, and the most there may be
    /// (each holds a worker process).
    parked: Arc<AtomicUsize>,
    max_parked: usize,
    /// The slots that were given an instance, oldest first: when all places are taken, the
    /// program that was parked longest ago gives its instance up.
    parking_order: Mutex<VecDeque<Weak<WarmSlot>>>,
}

impl Executor {
    /// Sets up the engine, probing the recompiler's sandbox unless the interpreter is chosen.
    ///
    /// # Errors
    /// [`ExecutorError::Start`] when the chosen backend cannot run (with
    /// [`BackendChoice::Auto`], only when the interpreter cannot either).
    pub fn new(config: &ExecutorConfig) -> Result<Self, ExecutorError> {
        let mut module_config = ModuleConfig::new();
        // Synchronous metering: deterministic to the instruction, and a run stopped for lack
        // of gas resumes where it stopped when given more (the run loop hands gas out in slices
        // and checks the clock between them).
        module_config.set_gas_metering(Some(GasMeteringKind::Sync));
        match config.backend {
            BackendChoice::Interpreter => Self::interpreter(module_config, None),
            BackendChoice::Recompiler => Self::recompiler(config, module_config),
            BackendChoice::Auto => match Self::recompiler(config, module_config.clone()) {
                Ok(executor) => Ok(executor),
                Err(e) => Self::interpreter(module_config, Some(e.to_string())),
            },
        }
    }

    fn recompiler(
        config: &ExecutorConfig,
        module_config: ModuleConfig,
    ) -> Result<Self, ExecutorError> {
        if !BackendKind::Compiler.is_supported() {
            return Err(ExecutorError::Start(
                "PolkaVM's recompiler does not support this platform (it needs Linux on x86-64)"
                    .into(),
            ));
        }
        let mut pvm = Config::new();
        pvm.set_backend(Some(BackendKind::Compiler))
            .set_worker_count(config.idle_workers)
            // Pinning would tie the calling thread (a shared blocking thread of the host) to
            // one core for good.
            .set_core_pinning(CorePinning::Disabled);
        let engine = Engine::new(&pvm).map_err(|e| ExecutorError::Start(e.to_string()))?;
        let executor = Self {
            engine,
            backend: Backend::Recompiler,
            fallback: None,
            module_config,
            watchdog: Some(Watchdog::start().map_err(ExecutorError::Start)?),
            first_slice: FIRST_SLICE,
            parked: Arc::default(),
            max_parked: config.warm_instances,
            parking_order: Mutex::default(),
        };
        executor.probe()?;
        Ok(executor)
    }

    fn interpreter(
        module_config: ModuleConfig,
        fallback: Option<String>,
    ) -> Result<Self, ExecutorError> {
        let mut pvm = Config::new();
        pvm.set_backend(Some(BackendKind::Interpreter));
        let engine = Engine::new(&pvm).map_err(|e| ExecutorError::Start(e.to_string()))?;
        let executor = Self {
            engine,
            backend: Backend::Interpreter,
            fallback,
            module_config,
            watchdog: None,
            first_slice: FIRST_SLICE,
            parked: Arc::default(),
            // The interpreter instantiates in a fraction of a microsecond: nothing to gain.
            max_parked: 0,
            parking_order: Mutex::default(),
        };
        executor.probe()?;
        Ok(executor)
    }

    /// Runs a two-instruction program to the end: the worker process starts (or not) here,
    /// not at the first client's run.
    fn probe(&self) -> Result<(), ExecutorError> {
        let start = |e: &dyn std::fmt::Display| ExecutorError::Start(format!("probe: {e}"));
        let blob = polkavm::program::assemble(
            Some(polkavm::program::InstructionSetKind::Latest64),
            "pub @main:\na0 = 42\nret\n",
        )
        .map_err(|e| start(&e))?;
        let program = Program::from_blob(blob).map_err(|e| start(&e))?;
        let compiled = self.compile(&program)?;
        let mut instance = compiled.module.instantiate().map_err(|e| start(&e))?;
        instance.set_gas(100);
        instance.prepare_call_untyped(compiled.program.entry, &[]);
        match instance.run().map_err(|e| start(&e))? {
            polkavm::InterruptKind::Finished if instance.get_result_typed::<u32>() == 42 => Ok(()),
            other => Err(start(&format!("the probe program ended with {other:?}"))),
        }
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Why [`BackendChoice::Auto`] fell back to the interpreter, if it did.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// Compiles a checked program for this executor's backend (tens to hundreds of
    /// microseconds for the recompiler, less for the interpreter).
    ///
    /// # Errors
    /// [`ExecutorError::Compile`].
    pub fn compile(&self, program: &Program) -> Result<Compiled, ExecutorError> {
        let module = Module::from_blob(&self.engine, &self.module_config, program.blob.clone())
            .map_err(|e| ExecutorError::Compile(e.to_string()))?;
        let map = module.memory_map();
        let static_memory = u64::from(map.ro_data_size())
            + u64::from(map.rw_data_size())
            + u64::from(map.stack_size());
        Ok(Compiled {
            module,
            program: program.clone(),
            static_memory,
            warm: Arc::new(WarmSlot {
                instance: Mutex::new(None),
                parked: self.parked.clone(),
            }),
        })
    }

    /// Instantiates `compiled`'s next run ahead of time, off the request's path, unless one is
    /// ready already (recompiler only). With `warm_instances` parked already, the program
    /// parked longest ago gives its instance up. The instance is fresh: nothing has run in it.
    ///
    /// # Errors
    /// [`ExecutorError::Run`] when no instance could be made (no worker process).
    pub fn prewarm(&self, compiled: &Compiled) -> Result<(), ExecutorError> {
        if self.max_parked == 0 {
            return Ok(());
        }
        let slot = &compiled.warm;
        if slot.is_full() {
            return Ok(());
        }
        let instance = compiled
            .module
            .instantiate()
            .map_err(|e| ExecutorError::Run(e.to_string()))?;
        let mut order = self.parking_order.lock().unwrap_or_else(|p| p.into_inner());
        order.retain(|w| w.upgrade().is_some_and(|s| s.is_full()));
        while self.parked.load(Ordering::Relaxed) >= self.max_parked {
            let Some(oldest) = order.pop_front() else {
                break;
            };
            if let Some(oldest) = oldest.upgrade() {
                drop(oldest.take());
            }
        }
        if self.parked.load(Ordering::Relaxed) < self.max_parked && slot.park(instance) {
            order.push_back(Arc::downgrade(slot));
        }
        Ok(())
    }

    /// Instances parked ahead of their runs now.
    pub fn warm_count(&self) -> usize {
        self.parked.load(Ordering::Relaxed)
    }

    /// Process ids of the recompiler's idle workers (none with the interpreter).
    pub fn idle_worker_pids(&self) -> Vec<u32> {
        self.engine.idle_worker_pids()
    }
}
