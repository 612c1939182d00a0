//! The `hypervisor` binary.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use hypervisor::config::Config;
use hypervisor::server::Host;

/// mimalloc instead of the system allocator: a request allocates and frees many small
/// objects across threads (HTTP, stores, instances), where glibc's malloc spent about a tenth
/// of the server's CPU time under load (see `benches/http-agents.sh`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "hypervisor",
    version,
    about = "Confidential WebAssembly execution host"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    overrides: Overrides,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP (the default).
    Serve(Overrides),
    /// Print the effective configuration as TOML and exit.
    Config(Overrides),
}

/// Configuration sources and overrides. Precedence: defaults < TOML file < environment < flags.
#[derive(Args, Clone, Default)]
struct Overrides {
    /// TOML configuration file. Without it, `./hypervisor.toml` is read if present.
    #[arg(long, env = "HYPERVISOR_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Listen address, `IP:PORT` or just `IP` (keeps the configured port).
    #[arg(long, env = "HYPERVISOR_HOST", global = true)]
    listen: Option<String>,
    /// Data directory.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Compiled-component cache directory.
    #[arg(long, global = true)]
    cache_dir: Option<PathBuf>,
    /// Largest request body, bytes.
    #[arg(long, global = true)]
    max_body_bytes: Option<usize>,
    /// Open HTTP connections at most (http.max_connections).
    #[arg(long, global = true)]
    max_connections: Option<usize>,
    /// Default execution time limit, milliseconds.
    #[arg(long, global = true)]
    default_time_ms: Option<u64>,
    /// Maximum execution time limit, milliseconds.
    #[arg(long, global = true)]
    max_time_ms: Option<u64>,
    /// Default memory limit, bytes.
    #[arg(long, global = true)]
    default_memory_bytes: Option<u64>,
    /// Maximum memory limit, bytes.
    #[arg(long, global = true)]
    max_memory_bytes: Option<u64>,
    /// Executions running at once.
    #[arg(long, global = true)]
    max_concurrent_executions: Option<u32>,
    /// Enable fuel metering.
    #[arg(long, global = true)]
    fuel: bool,
    /// Do not keep compiled components on disk.
    #[arg(long, global = true)]
    no_disk_cache: bool,
    /// Session lifetime, seconds.
    #[arg(long, global = true)]
    session_ttl_seconds: Option<u64>,
    /// Attestation provider: none, auto, tdx, sev-snp, simulated (development builds only).
    #[arg(long, global = true)]
    attestation: Option<String>,
    /// The policy component (any component exporting hypervisor:host/policy).
    #[arg(long, global = true, value_name = "FILE")]
    policy_component: Option<PathBuf>,
    /// The policy's rules document (TOML or JSON).
    #[arg(long, global = true, value_name = "FILE")]
    policy_rules: Option<PathBuf>,
    /// Run without a policy: every request is admitted.
    #[arg(long, global = true)]
    no_policy: bool,
    /// The Python runtime component (any component exporting hypervisor:host/python).
    #[arg(long, global = true, value_name = "FILE")]
    python_component: Option<PathBuf>,
    /// Enable the paid routes, paying this address (payments.price.pay_to).
    #[arg(long, global = true, value_name = "ADDRESS")]
    pay_to: Option<String>,
    /// The payments component (any component exporting hypervisor:host/payments).
    #[arg(long, global = true, value_name = "FILE")]
    payments_component: Option<PathBuf>,
    /// Settle payments through this x402 facilitator (payments.mode = "facilitator").
    #[arg(long, global = true, value_name = "URL")]
    facilitator_url: Option<String>,
    /// Log level filter (RUST_LOG overrides).
    #[arg(long, global = true)]
    log_level: Option<String>,
    /// JSON log lines.
    #[arg(long, global = true)]
    log_json: bool,
}

impl Overrides {
    fn merge(mut self, other: &Overrides) -> Overrides {
        macro_rules! take {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = other.$f.clone(); } )* };
        }
        take!(
            config,
            listen,
            data_dir,
            cache_dir,
            max_body_bytes,
            max_connections,
            default_time_ms,
            max_time_ms,
            default_memory_bytes,
            max_memory_bytes,
            max_concurrent_executions,
            session_ttl_seconds,
            log_level,
            attestation,
            policy_component,
            policy_rules,
            python_component,
            pay_to,
            payments_component,
            facilitator_url
        );
        self.fuel |= other.fuel;
        self.no_policy |= other.no_policy;
        self.no_disk_cache |= other.no_disk_cache;
        self.log_json |= other.log_json;
        self
    }

    fn load(&self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => {
                let default = PathBuf::from("hypervisor.toml");
                if default.is_file() {
                    Config::from_file(&default)?
                } else {
                    Config::default()
                }
            }
        };
        if let Some(l) = &self.listen {
            c.listen = match l.parse::<SocketAddr>() {
                Ok(a) => a,
                Err(_) => SocketAddr::new(
                    l.parse::<IpAddr>().map_err(|_| {
                        anyhow::anyhow!(
                            "--listen / HYPERVISOR_HOST `{l}` is neither IP:PORT nor IP"
                        )
                    })?,
                    c.listen.port(),
                ),
            };
        }
        if let Some(v) = &self.data_dir {
            c.data_dir = v.clone();
        }
        if let Some(v) = &self.cache_dir {
            c.cache_dir = Some(v.clone());
        }
        if let Some(v) = self.max_body_bytes {
            c.http.max_body_bytes = v;
        }
        if let Some(v) = self.max_connections {
            c.http.max_connections = v;
        }
        if let Some(v) = self.default_time_ms {
            c.limits.default_time_ms = v;
        }
        if let Some(v) = self.max_time_ms {
            c.limits.max_time_ms = v;
        }
        if let Some(v) = self.default_memory_bytes {
            c.limits.default_memory_bytes = v;
        }
        if let Some(v) = self.max_memory_bytes {
            c.limits.max_memory_bytes = v;
        }
        if let Some(v) = self.max_concurrent_executions {
            c.engine.max_concurrent_executions = v;
        }
        if let Some(v) = self.session_ttl_seconds {
            c.sessions.ttl_seconds = v;
        }
        if let Some(v) = &self.log_level {
            c.log.level = v.clone();
        }
        if let Some(v) = &self.attestation {
            c.attestation.provider = toml::Value::String(v.clone()).try_into().map_err(|_| {
                anyhow::anyhow!(
                    "--attestation `{v}`: expected none, auto, tdx, sev-snp or simulated"
                )
            })?;
        }
        if let Some(v) = &self.policy_component {
            c.policy.component = v.clone();
        }
        if let Some(v) = &self.policy_rules {
            c.policy.rules = Some(v.clone());
        }
        if let Some(v) = &self.python_component {
            c.python.component = v.clone();
        }
        if let Some(v) = &self.pay_to {
            c.payments.enabled = true;
            c.payments.price.pay_to = v.clone();
        }
        if let Some(v) = &self.payments_component {
            c.payments.component = v.clone();
        }
        if let Some(v) = &self.facilitator_url {
            c.payments.mode = hypervisor::config::SettlementMode::Facilitator;
            c.payments.facilitator_url = Some(v.clone());
        }
        c.policy.enabled &= !self.no_policy;
        c.engine.fuel |= self.fuel;
        c.engine.disk_cache &= !self.no_disk_cache;
        c.log.json |= self.log_json;
        c.validate()?;
        Ok(c)
    }
}

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
    let (command, overrides) = match cli.command {
        Some(Command::Serve(o)) => ("serve", o.merge(&cli.overrides)),
        Some(Command::Config(o)) => ("config", o.merge(&cli.overrides)),
        None => ("serve", cli.overrides),
    };
    let config = overrides.load()?;
    if command == "config" {
        print!("{}", config.to_toml());
        return Ok(());
    }
    init_logging(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move { Host::build(config).await?.serve().await })
}
