//! The `hypervisor` binary.

use clap::Parser;
use hypervisor::config::{Action, Cli, Config};
use hypervisor::server::Host;

/// mimalloc instead of the system allocator: a request allocates and frees many small
/// objects across threads (HTTP, stores, instances), where glibc's malloc spent about a tenth
/// of the server's CPU time under load (see `benches/http-agents.sh`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log.json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hypervisor: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let (action, config) = cli.resolve()?;
    if action == Action::PrintConfig {
        print!("{}", config.to_toml());
        return Ok(());
    }
    init_logging(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move { Host::build(config).await?.serve().await })
}
