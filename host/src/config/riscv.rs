//! RISC-V programs (`[riscv]`): the executor beside wasmtime (`crates/riscv`, PolkaVM).

use serde::{Deserialize, Serialize};

/// Which PolkaVM backend runs RISC-V programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RiscvBackend {
    /// The recompiler (each run in a sandboxed worker process) where its sandbox starts; the
    /// interpreter otherwise, said once in the log at start-up.
    #[default]
    Auto,
    /// The recompiler, or start-up fails.
    Recompiler,
    /// The interpreter (in the host's process; about ten times slower).
    Interpreter,
}

/// RISC-V programs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiscvConfig {
    /// Accept RISC-V programs on the execution routes and as CLI agents. Default true; false
    /// answers them `riscv_unavailable` (503).
    pub enabled: bool,
    /// The backend. Default `auto`.
    pub backend: RiscvBackend,
    /// Idle worker processes the recompiler keeps ready per core (some tens of KiB each; a run
    /// without one waits ~100 ms for a new worker). Default 2.
    pub idle_workers: usize,
    /// Programs whose next run the recompiler keeps instantiated ahead of time, off the
    /// request's path (each holds a worker process; loading a program into one costs tens of
    /// microseconds). Default 4; 0: none.
    pub warm_instances: usize,
    /// Link in a child process of the host's binary (PolkaVM's linker panics on malformed ELF
    /// files; a child's crash is a refusal, not the host's). Default true; false links in the
    /// host's own process (a panic is caught, a crash or hang is not): only for the host used
    /// as a library, where its binary is not there to start.
    pub isolate_linker: bool,
}

impl Default for RiscvConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            backend: RiscvBackend::Auto,
            idle_workers: 2,
            warm_instances: 4,
            isolate_linker: true,
        }
    }
}
