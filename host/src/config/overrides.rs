//! The command-line and environment overrides of the configuration, each declared once: its
//! flag (name, environment variable, help text) and the [`Config`] field it sets. The clap
//! arguments, the merging of a subcommand's flags with the top-level ones, and the layering
//! over the file are all generated from that one list.
//!
//! Precedence, lowest first: defaults < TOML file (`--config` / `HYPERVISOR_CONFIG`, else
//! `./hypervisor.toml` if present) < environment < flags (clap gives a flag precedence over
//! its environment variable).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use super::{Config, ConfigError, SettlementMode};

/// One override's value as clap gives it: `Option<T>` for a value (absent when neither the
/// flag nor its variable is given), `bool` for a switch (false when not given).
trait Layer: Clone {
    /// What the override carries when given.
    type Value;
    /// `self` if given, else `below`.
    fn or(self, below: &Self) -> Self;
    /// The value, if given.
    fn given(&self) -> Option<Self::Value>;
}

impl<T: Clone> Layer for Option<T> {
    type Value = T;
    fn or(self, below: &Self) -> Self {
        self.or_else(|| below.clone())
    }
    fn given(&self) -> Option<T> {
        self.clone()
    }
}

impl Layer for bool {
    type Value = ();
    fn or(self, below: &Self) -> Self {
        self || *below
    }
    fn given(&self) -> Option<()> {
        self.then_some(())
    }
}

/// Declares the overrides: each entry is the clap field (doc comment = help text, `#[arg]`)
/// and, after `=>`, how its value `v` sets the configuration `c` (may use `?` with a
/// [`ConfigError`]). An entry without `=>` chooses a source instead of setting a field.
macro_rules! overrides {
    (
        $(#[$struct_meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                $field:ident: $ty:ty $(=> |$c:ident, $v:pat_param| $apply:expr)?,
            )*
        }
    ) => {
        $(#[$struct_meta])*
        #[derive(clap::Args, Clone, Debug, Default)]
        pub struct $name {
            $( $(#[$field_meta])* $field: $ty, )*
        }

        impl $name {
            /// These overrides, completed by `below` where not given (a subcommand's flags
            /// over the top-level ones).
            #[must_use]
            pub fn or(self, below: &$name) -> $name {
                $name { $( $field: Layer::or(self.$field, &below.$field), )* }
            }

            /// Sets each given override in `config`.
            fn apply(&self, config: &mut Config) -> Result<(), ConfigError> {
                $($(
                    if let Some($v) = Layer::given(&self.$field) {
                        let $c = &mut *config;
                        $apply;
                    }
                )?)*
                Ok(())
            }
        }
    };
}

overrides! {
    /// Configuration sources and overrides. Precedence: defaults < TOML file < environment < flags.
    pub struct Overrides {
        /// TOML configuration file. Without it, `./hypervisor.toml` is read if present.
        #[arg(long, env = "HYPERVISOR_CONFIG", global = true)]
        config: Option<PathBuf>,
        /// Listen address, `IP:PORT` or just `IP` (keeps the configured port).
        #[arg(long, env = "HYPERVISOR_HOST", global = true)]
        listen: Option<String> => |c, v| c.listen = listen_address(&v, c.listen.port())?,
        /// HTTPS listen address, `IP:PORT` (tls.listen); off unless given.
        #[arg(long, env = "HYPERVISOR_TLS_LISTEN", global = true)]
        tls_listen: Option<SocketAddr> => |c, v| c.tls.listen = Some(v),
        /// PEM certificate chain for HTTPS (tls.certificate, with --tls-key); without it the
        /// host generates an RA-TLS certificate.
        #[arg(long, global = true, requires = "tls_key")]
        tls_certificate: Option<PathBuf> => |c, v| c.tls.certificate = Some(v),
        /// PEM private key of --tls-certificate (tls.key).
        #[arg(long, global = true, requires = "tls_certificate")]
        tls_key: Option<PathBuf> => |c, v| c.tls.key = Some(v),
        /// Data directory.
        #[arg(long, global = true)]
        data_dir: Option<PathBuf> => |c, v| c.data_dir = v,
        /// Compiled-component cache directory.
        #[arg(long, global = true)]
        cache_dir: Option<PathBuf> => |c, v| c.cache_dir = Some(v),
        /// Plug-ins compiled ahead of time (`hypervisor precompile`); "" turns them off.
        #[arg(long, global = true, value_name = "DIR",
              value_parser = clap::builder::TypedValueParser::map(clap::builder::OsStringValueParser::new(), PathBuf::from))]
        precompiled_dir: Option<PathBuf> => |c, v| c.precompiled_dir = Some(v),
        /// Largest request body, bytes.
        #[arg(long, global = true)]
        max_body_bytes: Option<usize> => |c, v| c.http.max_body_bytes = v,
        /// Largest multipart upload (a component as a binary part), bytes.
        #[arg(long, global = true)]
        max_upload_bytes: Option<u64> => |c, v| c.http.max_upload_bytes = v,
        /// Open HTTP connections at most (http.max_connections).
        #[arg(long, global = true)]
        max_connections: Option<usize> => |c, v| c.http.max_connections = v,
        /// Default execution time limit, milliseconds.
        #[arg(long, global = true)]
        default_time_ms: Option<u64> => |c, v| c.limits.default_time_ms = v,
        /// Maximum execution time limit, milliseconds.
        #[arg(long, global = true)]
        max_time_ms: Option<u64> => |c, v| c.limits.max_time_ms = v,
        /// Default memory limit, bytes.
        #[arg(long, global = true)]
        default_memory_bytes: Option<u64> => |c, v| c.limits.default_memory_bytes = v,
        /// Maximum memory limit, bytes.
        #[arg(long, global = true)]
        max_memory_bytes: Option<u64> => |c, v| c.limits.max_memory_bytes = v,
        /// Executions running at once.
        #[arg(long, global = true)]
        max_concurrent_executions: Option<u32> =>
            |c, v| c.engine.max_concurrent_executions = v,
        /// Enable fuel metering.
        #[arg(long, global = true)]
        fuel: bool => |c, ()| c.engine.fuel = true,
        /// RISC-V backend: auto, recompiler, interpreter (riscv.backend).
        #[arg(long, env = "HYPERVISOR_RISCV_BACKEND", global = true, value_name = "BACKEND")]
        riscv_backend: Option<String> => |c, v| c.riscv.backend = riscv_backend(&v)?,
        /// Do not keep compiled components on disk.
        #[arg(long, global = true)]
        no_disk_cache: bool => |c, ()| c.engine.disk_cache = false,
        /// Session lifetime, seconds.
        #[arg(long, global = true)]
        session_ttl_seconds: Option<u64> => |c, v| c.sessions.ttl_seconds = v,
        /// Attestation provider: none, auto, tdx, dstack, sev-snp, simulated (development builds only).
        #[arg(long, global = true)]
        attestation: Option<String> => |c, v| c.attestation.provider = provider(v)?,
        /// The policy component (any component exporting hypervisor:host/policy).
        #[arg(long, global = true, value_name = "FILE")]
        policy_component: Option<PathBuf> => |c, v| c.policy.component = v,
        /// The policy's rules document (TOML or JSON).
        #[arg(long, global = true, value_name = "FILE")]
        policy_rules: Option<PathBuf> => |c, v| c.policy.rules = Some(v),
        /// Run without a policy: every request is admitted.
        #[arg(long, global = true)]
        no_policy: bool => |c, ()| c.policy.enabled = false,
        /// The Python runtime component (any component exporting hypervisor:host/python).
        #[arg(long, global = true, value_name = "FILE")]
        python_component: Option<PathBuf> => |c, v| c.python.component = v,
        /// Keep finished A2A tasks this long, seconds (a2a.task_ttl_seconds).
        #[arg(long, global = true)]
        a2a_task_ttl_seconds: Option<u64> => |c, v| c.a2a.task_ttl_seconds = v,
        /// Deepest chain of agent-to-agent calls (egress.max_depth).
        #[arg(long, global = true)]
        egress_max_depth: Option<u32> => |c, v| c.egress.max_depth = v,
        /// Most outgoing requests per agent run (egress.max_calls_per_run).
        #[arg(long, global = true)]
        egress_max_calls: Option<u32> => |c, v| c.egress.max_calls_per_run = v,
        /// Keys an agent may keep in its key-value state (state.max_keys).
        #[arg(long, global = true)]
        state_max_keys: Option<u64> => |c, v| c.state.max_keys = v,
        /// Bytes an agent may keep in its key-value state (state.max_bytes).
        #[arg(long, global = true)]
        state_max_bytes: Option<u64> => |c, v| c.state.max_bytes = v,
        /// Let grants name http:// loopback origins (egress.allow_loopback_http; tests only).
        #[arg(long, global = true)]
        egress_allow_loopback_http: bool => |c, ()| c.egress.allow_loopback_http = true,
        /// Enable the paid routes, paying this address (payments.price.pay_to).
        #[arg(long, global = true, value_name = "ADDRESS")]
        pay_to: Option<String> => |c, v| {
            c.payments.enabled = true;
            c.payments.price.pay_to = v;
        },
        /// Price of one paid request, in the asset's atomic units (payments.price.amount).
        #[arg(long, env = "HYPERVISOR_PRICE", global = true, value_name = "UNITS")]
        price: Option<String> => |c, v| c.payments.price.amount = v,
        /// The payment token's contract address (payments.price.asset).
        #[arg(long, env = "HYPERVISOR_ASSET", global = true, value_name = "ADDRESS")]
        asset: Option<String> => |c, v| c.payments.price.asset = v,
        /// The payment network, CAIP-2 (payments.price.network), e.g. eip155:8453.
        #[arg(long, env = "HYPERVISOR_NETWORK", global = true, value_name = "CAIP2")]
        network: Option<String> => |c, v| c.payments.price.network = v,
        /// The token's EIP-712 domain name (payments.price.eip712_name), e.g. "USD Coin".
        #[arg(long, env = "HYPERVISOR_ASSET_NAME", global = true, value_name = "NAME")]
        asset_name: Option<String> => |c, v| c.payments.price.eip712_name = v,
        /// The token's EIP-712 domain version (payments.price.eip712_version).
        #[arg(long, env = "HYPERVISOR_ASSET_VERSION", global = true, value_name = "VERSION")]
        asset_version: Option<String> => |c, v| c.payments.price.eip712_version = v,
        /// The payments component (any component exporting hypervisor:host/payments).
        #[arg(long, global = true, value_name = "FILE")]
        payments_component: Option<PathBuf> => |c, v| c.payments.component = v,
        /// Settle payments through this x402 facilitator (payments.mode = "facilitator").
        #[arg(long, global = true, value_name = "URL")]
        facilitator_url: Option<String> => |c, v| {
            c.payments.mode = SettlementMode::Facilitator;
            c.payments.facilitator_url = Some(v);
        },
        /// The address that settles metered (x402 upto) payments
        /// (payments.facilitator_address).
        #[arg(long, global = true, value_name = "ADDRESS")]
        facilitator_address: Option<String> => |c, v| c.payments.facilitator_address = Some(v),
        /// A PostgreSQL database shared by replicas (storage.database), `postgres://…`;
        /// without it, SQLite in the data directory. Empty counts as not given (a compose
        /// file's `${HYPERVISOR_DATABASE:-}` when the operator set none).
        #[arg(long, env = "HYPERVISOR_DATABASE", global = true, value_name = "URL", hide_env_values = true)]
        database: Option<String> => |c, v| if !v.is_empty() {
            c.storage.database = Some(v);
        },
        /// The bearer token of the Assist-compatible /environments routes
        /// (javascript.environments_token).
        #[arg(long, env = "HYPERVISOR_ENVIRONMENTS_TOKEN", global = true, value_name = "TOKEN", hide_env_values = true)]
        environments_token: Option<String> => |c, v| {
            c.javascript.environments_token = Some(super::OperatorToken::from(v));
        },
        /// This replica's name (cluster.replica_id); default the host name. Empty counts as
        /// not given.
        #[arg(long, env = "HYPERVISOR_REPLICA_ID", global = true)]
        replica_id: Option<String> => |c, v| if !v.is_empty() {
            c.cluster.replica_id = Some(v);
        },
        /// Log level filter (RUST_LOG overrides).
        #[arg(long, global = true)]
        log_level: Option<String> => |c, v| c.log.level = v,
        /// JSON log lines.
        #[arg(long, global = true)]
        log_json: bool => |c, ()| c.log.json = true,
    }
}

impl Overrides {
    /// The effective configuration: the defaults, the TOML file (`--config` /
    /// `HYPERVISOR_CONFIG`, else `./hypervisor.toml` if present), then these overrides;
    /// validated.
    ///
    /// # Errors
    /// An unreadable or invalid file, an unusable override, or an invalid result.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.config {
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
        self.apply(&mut config)?;
        config.validate()?;
        Ok(config)
    }
}

/// `IP:PORT`, or just `IP` with the configured `port`.
fn listen_address(value: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    if let Ok(address) = value.parse::<SocketAddr>() {
        return Ok(address);
    }
    let ip = value.parse::<IpAddr>().map_err(|_| {
        ConfigError::Override(format!(
            "--listen / HYPERVISOR_HOST `{value}` is neither IP:PORT nor IP"
        ))
    })?;
    Ok(SocketAddr::new(ip, port))
}

/// An attestation provider by its configuration name.
fn riscv_backend(value: &str) -> Result<super::RiscvBackend, ConfigError> {
    toml::Value::String(value.to_string())
        .try_into()
        .map_err(|_| {
            ConfigError::Override(format!(
                "--riscv-backend `{value}`: expected auto, recompiler or interpreter"
            ))
        })
}

fn provider(value: String) -> Result<super::ProviderChoice, ConfigError> {
    let message =
        format!("--attestation `{value}`: expected none, auto, tdx, dstack, sev-snp or simulated");
    toml::Value::String(value)
        .try_into()
        .map_err(|_| ConfigError::Override(message))
}
