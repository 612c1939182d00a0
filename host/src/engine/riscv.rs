//! RISC-V programs behind the engine's seam (`crates/riscv`, PolkaVM): prepared once by hash
//! into the same cache as components (linked in a child process, checked, compiled for the
//! backend), run with a command's input, limits and output caps, their outcome a
//! [`RunOutcome`] like a WebAssembly command's. A program gets what a command gets through
//! `wasi:cli` (arguments, stdin, stdout and stderr, an exit code) and the host's crypto and
//! attestation, as far as its role's [`Capabilities`] allow: no state, no egress.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hypervisor_protocol::host::RiscvInfo;
use hypervisor_protocol::wire::ExitStatus;
use hypervisor_riscv::isolate::{IsolatedLinker, LinkLimits};
use hypervisor_riscv::{
    AttestError, BackendChoice, Compiled, CryptoError, Executor, ExecutorConfig, IntakeError,
    Program, RunRequest, Services, Stop,
};

use super::capabilities::HostImports;
use super::{CommandInput, EngineError, RunOutcome, TRAP_DETAIL_BYTES, cap_text};
use crate::attestation::statement::StatementError;
use crate::attestation::{Attestor, TeeKind};
use crate::config::{RiscvBackend, RiscvConfig};
use crate::crypto::plaintext::Plaintext;
use crate::crypto::primitives::{self, PrimitiveError};

/// The argument that makes the host binary a linking child (`main.rs`): the host links in a
/// child process of its own binary (`hypervisor_riscv::isolate` says why).
pub const LINK_CHILD_ARG: &str = "__link-riscv";

/// The largest ELF file a linking child reads.
pub const MAX_ELF_BYTES: u64 = 256 << 20;

/// The RISC-V executor and how it links.
pub(super) struct Riscv {
    executor: Arc<Executor>,
    /// `None`: link in the host's own process (only where the host is a library: benchmarks).
    linker: Option<IsolatedLinker>,
}

/// The executor as start-up leaves it: the recompiler's probe starts a worker process (a tenth of
/// a second), so with `riscv.backend = "auto"` (or the interpreter) it runs on a thread of its
/// own beside the rest of start-up, and the first request that needs it waits for it. A chosen
/// recompiler is probed before the host serves: if it cannot start, neither does the host.
pub(super) struct Starting(Arc<OnceLock<Result<Riscv, String>>>);

impl Starting {
    /// Starts the executor, or `None` when RISC-V programs are turned off.
    pub(super) fn start(config: &RiscvConfig) -> Result<Option<Self>, EngineError> {
        if !config.enabled {
            tracing::info!("RISC-V programs are turned off (riscv.enabled = false)");
            return Ok(None);
        }
        let slot = Arc::new(OnceLock::new());
        if config.backend == RiscvBackend::Recompiler {
            let _ = slot.set(Ok(Riscv::start(config)?));
            return Ok(Some(Self(slot)));
        }
        let (config, filled) = (config.clone(), slot.clone());
        std::thread::Builder::new()
            .name("riscv-start".into())
            .spawn(move || {
                let started = Riscv::start(&config).map_err(|e| e.to_string());
                if let Err(e) = &started {
                    tracing::error!(error = %e, "RISC-V programs cannot run here");
                }
                let _ = filled.set(started);
            })
            .map_err(|e| EngineError::Internal(format!("the RISC-V executor: {e}")))?;
        Ok(Some(Self(slot)))
    }

    /// The executor, once it is set up.
    ///
    /// # Errors
    /// [`EngineError::Internal`] if it could not start.
    pub(super) async fn get(&self) -> Result<&Riscv, EngineError> {
        if self.0.get().is_none() {
            let slot = self.0.clone();
            tokio::task::spawn_blocking(move || {
                slot.wait();
            })
            .await
            .map_err(|e| EngineError::Internal(format!("the RISC-V executor: {e}")))?;
        }
        match self.0.get() {
            Some(Ok(riscv)) => Ok(riscv),
            Some(Err(e)) => Err(EngineError::Internal(format!(
                "the RISC-V executor did not start: {e}"
            ))),
            None => Err(EngineError::Internal(
                "the RISC-V executor is not set up".into(),
            )),
        }
    }
}

impl Riscv {
    /// Starts the executor (probing the recompiler's sandbox). Logs the backend once.
    fn start(config: &RiscvConfig) -> Result<Self, EngineError> {
        let backend = match config.backend {
            RiscvBackend::Auto => BackendChoice::Auto,
            RiscvBackend::Recompiler => BackendChoice::Recompiler,
            RiscvBackend::Interpreter => BackendChoice::Interpreter,
        };
        let executor = Executor::new(&ExecutorConfig {
            backend,
            idle_workers: config.idle_workers,
            warm_instances: config.warm_instances,
        })
        .map_err(|e| EngineError::Internal(e.to_string()))?;
        match executor.fallback_reason() {
            Some(reason) => tracing::warn!(
                reason,
                "RISC-V programs run on PolkaVM's interpreter: the recompiler's sandbox cannot \
                 start here (its workers need new user, PID, network and UTS namespaces, which \
                 container runtimes' default seccomp profiles refuse)"
            ),
            None => tracing::info!(
                backend = executor.backend().as_str(),
                "RISC-V programs run on PolkaVM"
            ),
        }
        let linker = config.isolate_linker.then(|| IsolatedLinker {
            program: PathBuf::from("/proc/self/exe"),
            args: vec![LINK_CHILD_ARG.into(), MAX_ELF_BYTES.to_string().into()],
            limits: LinkLimits::default(),
        });
        Ok(Self {
            executor: Arc::new(executor),
            linker,
        })
    }

    /// What `GET /host` says.
    pub(super) fn info(&self) -> RiscvInfo {
        RiscvInfo {
            backend: self.executor.backend().as_str().to_string(),
            fallback_reason: self.executor.fallback_reason().map(str::to_string),
        }
    }

    /// Links (in a child process), checks and compiles an ELF file, on a blocking thread.
    ///
    /// # Errors
    /// [`EngineError::InvalidRiscvProgram`], [`EngineError::DisallowedImport`] (an import
    /// outside the ABI), [`EngineError::Internal`].
    pub(super) async fn prepare(&self, elf: Arc<Plaintext>) -> Result<Compiled, EngineError> {
        let executor = self.executor.clone();
        let linker = self.linker.clone();
        let started = std::time::Instant::now();
        let compiled = tokio::task::spawn_blocking(move || {
            let blob = match &linker {
                Some(linker) => linker.link(&elf[..]).map_err(EngineError::Internal)?,
                None => hypervisor_riscv::program::link(&elf[..]),
            }
            .map_err(intake)?;
            let program = Program::from_blob(blob).map_err(intake)?;
            executor
                .compile(&program)
                .map_err(|e| EngineError::Internal(e.to_string()))
        })
        .await
        .map_err(|e| EngineError::Internal(format!("link task failed: {e}")))??;
        tracing::info!(
            blob = compiled.program().blob_len(),
            ms = started.elapsed().as_millis() as u64,
            "RISC-V program linked and compiled"
        );
        self.prewarm(&compiled);
        Ok(compiled)
    }

    /// Instantiates `compiled`'s next run in the background (`riscv.warm_instances`).
    fn prewarm(&self, compiled: &Compiled) {
        let (executor, compiled) = (self.executor.clone(), compiled.clone());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = executor.prewarm(&compiled) {
                tracing::warn!(error = %e, "cannot instantiate a RISC-V program ahead of its run");
            }
        });
    }

    /// Runs `compiled` once on a blocking thread; the caller holds an execution slot.
    pub(super) async fn run(
        &self,
        run: Run,
        compiled: Arc<Compiled>,
        input: CommandInput,
    ) -> Result<RunOutcome, EngineError> {
        let executor = self.executor.clone();
        let limits = input.limits;
        let next = compiled.clone();
        let work = move || {
            let request = RunRequest {
                args: &input.args,
                stdin: &input.stdin,
                gas: limits.fuel,
                memory_bytes: limits.memory_bytes,
                time: limits.time,
                stdout_cap: run.stdout_bytes,
                stderr_cap: run.stderr_bytes,
            };
            executor.run(&compiled, &request, &run.services)
        };
        // The run blocks this thread until the program ends (its time limit bounds it). On the
        // multi-threaded runtime the host serves with, it runs in place, the runtime moving its
        // other tasks to another worker: handing it to the blocking pool and back cost two
        // thread wake-ups, a third of a short program's run.
        let result = match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
            _ => tokio::task::spawn_blocking(work)
                .await
                .map_err(|e| EngineError::Internal(format!("RISC-V run task failed: {e}")))?,
        }
        .map_err(|e| EngineError::Internal(e.to_string()))?;
        self.prewarm(&next);
        let (status, exit_code, trap) = match result.stop {
            Stop::Exited(code) => (ExitStatus::Exited, Some(code), None),
            Stop::OutOfGas => (ExitStatus::FuelExhausted, None, None),
            Stop::TimeLimit => (ExitStatus::TimeLimitExceeded, None, None),
            Stop::MemoryLimit => (ExitStatus::MemoryLimitExceeded, None, None),
            Stop::Trap(detail) => (
                ExitStatus::Trapped,
                None,
                Some(cap_text(detail, TRAP_DETAIL_BYTES)),
            ),
        };
        Ok(RunOutcome {
            status,
            exit_code,
            stdout: Bytes::from(result.stdout),
            stderr: Bytes::from(result.stderr),
            stdout_truncated: result.stdout_truncated,
            stderr_truncated: result.stderr_truncated,
            duration: result.duration,
            trap,
            fuel_consumed: limits.fuel.map(|_| result.gas_consumed),
            state_refusal: None,
        })
    }
}

/// One run's host side: its output caps and the services behind its host calls.
pub(super) struct Run {
    pub(super) stdout_bytes: usize,
    pub(super) stderr_bytes: usize,
    pub(super) services: HostServices,
}

fn intake(e: IntakeError) -> EngineError {
    match e {
        IntakeError::UnknownImport(name) => EngineError::DisallowedImport(format!(
            "{name} (a RISC-V program may import only the host calls of its ABI)"
        )),
        other => EngineError::InvalidRiscvProgram(other.to_string()),
    }
}

/// The host's crypto and attestation behind a RISC-V program's host calls (the same primitives
/// as `hypervisor:host` in `host_imports.rs`); attestation as far as the role allows (every
/// role that runs RISC-V programs grants crypto).
pub(super) struct HostServices {
    pub(super) attestor: Arc<Attestor>,
    /// SHA-256 of the program's ELF file: its statements name it.
    pub(super) program_hash: [u8; 32],
    pub(super) allowed: HostImports,
}

fn crypto_error(e: PrimitiveError) -> CryptoError {
    match e {
        PrimitiveError::PublicKey(_) => CryptoError::InvalidKey,
        PrimitiveError::Signature(_) => CryptoError::InvalidSignature,
        PrimitiveError::Length(_) => CryptoError::InvalidLength,
    }
}

impl Services for HostServices {
    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        primitives::sha256(data)
    }

    fn sha512(&self, data: &[u8]) -> [u8; 64] {
        primitives::sha512(data)
    }

    fn hmac_sha256(&self, key: &[u8], data: &[u8]) -> [u8; 32] {
        primitives::hmac_sha256(key, data)
    }

    fn verify_p256_sha256(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, CryptoError> {
        primitives::verify_p256_sha256(public_key, message, signature).map_err(crypto_error)
    }

    fn recover_secp256k1(&self, digest: &[u8], signature: &[u8]) -> Result<[u8; 65], CryptoError> {
        primitives::recover_secp256k1(digest, signature).map_err(crypto_error)
    }

    fn attestation_provider(&self) -> u32 {
        if !self.allowed.attestation {
            return 0;
        }
        match self.attestor.kind() {
            TeeKind::None => 0,
            TeeKind::Simulated => 1,
            TeeKind::Tdx => 2,
            TeeKind::SevSnp => 3,
        }
    }

    fn attest(&self, user_data: &[u8; 64]) -> Result<Vec<u8>, AttestError> {
        if !self.allowed.attestation {
            return Err(AttestError::NotConfigured);
        }
        let statement = self
            .attestor
            .component_statement(self.program_hash, user_data)
            .map_err(|e| match e {
                StatementError::NotConfigured => AttestError::NotConfigured,
                StatementError::InvalidUserData | StatementError::Failed(_) => {
                    AttestError::ProviderFailed
                }
            })?;
        serde_json::to_vec(&statement.to_wire()).map_err(|_| AttestError::ProviderFailed)
    }
}
