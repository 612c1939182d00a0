//! RISC-V programs for the hypervisor, beside its WebAssembly engine.
//!
//! - [`program`]: a guest's ELF file linked into a PolkaVM program blob and checked against
//!   the contract;
//! - [`abi`]: the host calls a program may import, and its entry point;
//! - [`Executor`]: PolkaVM on the best backend this machine runs (the recompiler in sandboxed
//!   worker processes, or the interpreter), compiling checked programs and running them under
//!   a gas budget, a time limit (clock checks between slices of gas, and a watchdog that kills
//!   a worker which does not come back), a memory limit (the program's fixed memory, plus a
//!   heap that grows only through the host) and capped output.
//!
//! A leaf: the host supplies crypto and attestation through [`Services`], and maps
//! [`RunResult`] onto its own outcomes.

/// The host-call ABI (the `hypervisor-riscv-abi` crate, shared with the guest SDK).
pub use hypervisor_riscv_abi as abi;
mod executor;
pub mod isolate;
pub mod program;
mod run;
mod watchdog;

pub use executor::{Backend, BackendChoice, Compiled, Executor, ExecutorConfig, ExecutorError};
pub use hypervisor_protocol::program::{ProgramKind, Recognised, recognise};
pub use program::{IntakeError, Program};
pub use run::{AttestError, CryptoError, RunRequest, RunResult, Services, Stop};
