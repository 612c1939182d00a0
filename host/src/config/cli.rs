//! The `hypervisor` command line: a subcommand and the configuration [`Overrides`], accepted
//! before or after the subcommand.

use clap::{Parser, Subcommand};

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
}

/// What the binary was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Serve HTTP (`hypervisor serve`, or no subcommand).
    Serve,
    /// Print the effective configuration as TOML (`hypervisor config`).
    PrintConfig,
    /// Measure this binary into RTMR3, then serve (`hypervisor launch`).
    Launch,
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
            None => (Action::Serve, self.overrides),
        };
        Ok((action, overrides.load()?))
    }
}

#[cfg(test)]
mod tests;
