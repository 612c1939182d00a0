//! The `hypervisor` command line: a subcommand and the configuration [`Overrides`], accepted
//! before or after the subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::{Config, ConfigError, Overrides};

/// The parsed command line of the `hypervisor` binary.
#[derive(Parser, Debug)]
#[command(
    name = "hypervisor",
    version,
    about = "Confidential WebAssembly execution host",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    overrides: Overrides,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve HTTP (the default).
    Serve(Overrides),
    /// Print the effective configuration as TOML and exit.
    Config(Overrides),
    /// A plain TDX guest's launcher: extend RTMR3 with this binary's SHA-256 (Linux 6.16
    /// TSM-MR, `attestation.rtmr3_extend_file`), record the event in
    /// `attestation.runtime_event_log`, then serve. Run it first at boot, from the measured
    /// image, before anything else can extend RTMR3 (docs/PROTOCOL.md §12c).
    Launch(Overrides),
    /// Run a program here, without a server, as the host would run it for a client: the same
    /// engine, limits and imports (a WebAssembly component or a RISC-V ELF file; WASI denied
    /// but arguments and standard input, `hypervisor:host/crypto`, and
    /// `hypervisor:host/attestation` as configured). Prints its output; the exit status is the
    /// program's, or 124 time limit, 125 trap, 137 memory limit, 152 fuel.
    Run {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Compile the plug-ins the configuration names (policy, Python runtime, payments) ahead
    /// of time, for this binary and these engine settings, into `precompiled_dir` (default:
    /// `hypervisor-precompiled/` beside the executable), so that a first start loads them
    /// instead of compiling. Artifacts already there and still valid are kept.
    Precompile {
        /// Write them here instead of `precompiled_dir`.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
    },
}

/// `hypervisor run`'s own arguments (options stand anywhere; `--` ends them).
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct RunArgs {
    /// The program: a WebAssembly component (`wasm32-wasip2` command) or a RISC-V ELF file.
    pub program: PathBuf,
    /// Its arguments (after `argv[0]`).
    pub args: Vec<String>,
    /// A file to give it as standard input (`-`: this process's).
    #[arg(long, value_name = "FILE")]
    pub stdin: Option<PathBuf>,
    /// Time limit, milliseconds (default and maximum: `limits.*_time_ms`).
    #[arg(long)]
    pub time_ms: Option<u64>,
    /// Memory limit, bytes (default and maximum: `limits.*_memory_bytes`).
    #[arg(long)]
    pub memory_bytes: Option<u64>,
    /// Fuel to run on (metering is turned on for the run; `--fuel` alone meters with
    /// `limits.default_fuel`).
    #[arg(long, value_name = "FUEL")]
    pub fuel_limit: Option<u64>,
}

/// What the binary was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Serve HTTP (`hypervisor serve`, or no subcommand).
    Serve,
    /// Print the effective configuration as TOML (`hypervisor config`).
    PrintConfig,
    /// Measure this binary into RTMR3, then serve (`hypervisor launch`).
    Launch,
    /// Run one program locally and exit with its status (`hypervisor run`).
    Run(Box<RunArgs>),
    /// Compile the plug-ins ahead of time (`hypervisor precompile [--out DIR]`).
    Precompile(Option<PathBuf>),
}

impl Cli {
    /// The action asked for and its effective configuration (the subcommand's flags over the
    /// top-level ones, over the environment, the file and the defaults).
    ///
    /// # Errors
    /// As [`Overrides::load`].
    pub fn resolve(self) -> Result<(Action, Config), ConfigError> {
        let (action, overrides) = match self.command {
            Some(Command::Serve(o)) => (Action::Serve, o.or(&self.overrides)),
            Some(Command::Config(o)) => (Action::PrintConfig, o.or(&self.overrides)),
            Some(Command::Launch(o)) => (Action::Launch, o.or(&self.overrides)),
            Some(Command::Run { run, overrides }) => {
                (Action::Run(Box::new(run)), overrides.or(&self.overrides))
            }
            Some(Command::Precompile { out, overrides }) => {
                (Action::Precompile(out), overrides.or(&self.overrides))
            }
            None => (Action::Serve, self.overrides),
        };
        Ok((action, overrides.load()?))
    }
}

#[cfg(test)]
mod tests;
