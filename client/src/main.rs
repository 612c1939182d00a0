//! `hypervisor-client`: talk to a WASM Hypervisor from the command line.
//!
//! The arguments and the subcommands live in the `cli` module; this file only parses the
//! command line and turns failures into exit code 2.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hypervisor-client: {e:#}");
            ExitCode::from(2)
        }
    }
}
