//! Configuration: one typed struct with embedded defaults, loadable from TOML, overridable from
//! the environment and the command line (in that order of precedence, lowest first).
//!
//! The keys `listening`, `app_path` and `executor_path` of the original design are accepted as
//! aliases of `listen`, `data_dir` and `cache_dir`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod cli;
mod egress;
mod http;
mod idempotency;
mod overrides;
mod plugins;
mod riscv;
mod state;
mod storage;
mod tls;

pub use cli::{Action, Cli, RunArgs};
pub use egress::{A2aConfig, EgressConfig};
pub use http::{HttpConfig, OperatorToken};
pub use idempotency::{IdentifierConfig, IdentifierMode};
pub use overrides::Overrides;
pub use plugins::{
    DEFAULT_JS_RUNTIME, DEFAULT_PAYMENTS, DEFAULT_POLICY_PYTHON, JavascriptConfig, PaymentsConfig,
    PolicyConfig, PriceConfig, PythonConfig, SettlementMode, VerifyAt,
};
pub use riscv::{RiscvBackend, RiscvConfig};
pub use state::StateConfig;
pub use storage::{ClusterConfig, StorageConfig, redact};
pub use tls::TlsConfig;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error (names the key).
        source: Box<toml::de::Error>,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A command-line or environment override has an unusable value (the message names it).
    #[error("{0}")]
    Override(String),
}

/// The whole configuration of a `hypervisor serve` process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:3000`.
    #[serde(alias = "listening")]
    pub listen: SocketAddr,
    /// Directory for persistent data (storage key, compiled-component cache). Default `./data`.
    #[serde(alias = "app_path")]
    pub data_dir: PathBuf,
    /// Directory for compiled components. Default `<data_dir>/cache`.
    #[serde(alias = "executor_path")]
    pub cache_dir: Option<PathBuf>,
    /// Directory for compiled plug-in components (policy, Python runtime). Default
    /// `<data_dir>/plugins`.
    pub plugin_cache_dir: Option<PathBuf>,
    /// Directory of plug-ins compiled ahead of time (`hypervisor precompile`), checked before
    /// use. Default `hypervisor-precompiled/` beside the executable; `""` turns them off.
    pub precompiled_dir: Option<PathBuf>,
    /// HTTP front.
    pub http: HttpConfig,
    /// HTTPS listener (off by default).
    pub tls: TlsConfig,
    /// Encrypted sessions.
    pub sessions: SessionConfig,
    /// Per-execution limits.
    pub limits: LimitsConfig,
    /// The WebAssembly engine.
    pub engine: EngineConfig,
    /// RISC-V programs (the executor beside wasmtime).
    pub riscv: RiscvConfig,
    /// Attestation (verifiable routes).
    pub attestation: AttestationConfig,
    /// The operator's policy component.
    pub policy: PolicyConfig,
    /// The Python routes' runtime component.
    pub python: PythonConfig,
    /// JavaScript and TypeScript agents' runtime.
    pub javascript: JavascriptConfig,
    /// x402 payments on the paid routes.
    pub payments: PaymentsConfig,
    /// Agents' outgoing calls.
    pub egress: EgressConfig,
    /// The A2A front (task retention).
    pub a2a: A2aConfig,
    /// Storage backend (SQLite, or a PostgreSQL database replicas share).
    pub storage: StorageConfig,
    /// Agents' key-value state (quotas, read cache).
    pub state: StateConfig,
    /// Replicas on a shared database.
    pub cluster: ClusterConfig,
    /// Log output.
    pub log: LogConfig,
}

/// Session settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Lifetime of a session, seconds. Default 3600.
    pub ttl_seconds: u64,
    /// Most live sessions; a full table drops its least recently used sessions to make room
    /// for new ones. Default 100 000.
    pub max_sessions: usize,
}

/// Per-execution limits: operator defaults and maxima. A request may ask for less than the
/// maximum, never for more.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Default wall-clock limit, milliseconds. Default 10 000.
    pub default_time_ms: u64,
    /// Maximum wall-clock limit a request may ask for, milliseconds. Default 60 000.
    pub max_time_ms: u64,
    /// Default linear-memory limit, bytes. Default 128 MiB.
    pub default_memory_bytes: u64,
    /// Maximum linear-memory limit, bytes. Default 1 GiB.
    pub max_memory_bytes: u64,
    /// Default fuel budget when fuel metering is on. Default 10^10.
    pub default_fuel: u64,
    /// Maximum fuel budget. Default 10^11.
    pub max_fuel: u64,
    /// Captured bytes of stdout per execution; the rest is cut and flagged. Default 1 MiB.
    pub stdout_bytes: usize,
    /// Captured bytes of stderr per execution. Default 1 MiB.
    pub stderr_bytes: usize,
    /// WebAssembly stack per execution, bytes (deeper recursion traps). Default 1 MiB.
    pub max_wasm_stack_bytes: usize,
}

/// Engine settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Epoch tick, milliseconds: the granularity of deadlines and how often a running guest
    /// yields its thread. Default 10.
    pub epoch_tick_ms: u64,
    /// Most executions running at once; more wait for a slot. Also sizes the instance pool.
    /// Default 256.
    pub max_concurrent_executions: u32,
    /// Use the pooling allocator (with copy-on-write memory images). Default true.
    pub pooling_allocator: bool,
    /// Bytes of each pooled linear memory kept resident when an instance ends, reset in place
    /// instead of being returned to the kernel: the next instance in that slot takes no page
    /// faults for them. Only pages the instance dirtied are kept (Linux `PAGEMAP_SCAN`, kernel
    /// 6.7+; older kernels reset the lowest bytes with `memset`). Costs up to this much
    /// resident memory per warm slot (see `docs/ARCHITECTURE.md`). 0 returns every page.
    /// Default 4 MiB.
    pub pool_keep_resident_bytes: usize,
    /// Enable fuel metering (costs some speed; needed for `limits.fuel`). Default false.
    pub fuel: bool,
    /// Compiled components kept in memory (least recently used evicted). Default 128.
    pub memory_cache_entries: usize,
    /// Most bytes of compiled code the memory cache keeps (each component's compiled image;
    /// a JavaScript agent's is its snapshot's memory, a few MiB); past it the least recently
    /// used are dropped and loaded again from the sealed disk cache (or, for a JavaScript
    /// agent, made again from its snapshot) when next needed. Default 128 MiB.
    pub memory_cache_bytes: usize,
    /// Most bytes of Cranelift's per-function cache for JavaScript snapshots that cannot run
    /// over the runtime's shared code (`engine/js_shared.rs`; never one the host made itself,
    /// so the cache stays empty on a healthy host), compiled whole through it
    /// (`engine/js_compiler.rs`). Default 48 MiB.
    pub js_function_cache_bytes: usize,
    /// Bytes of recently sent programs whose SHA-256 is remembered, so that a program sent
    /// again is not hashed again (found by a keyed fast hash, confirmed byte for byte; see
    /// `crypto/digests.rs`). 0 hashes every time. Default 32 MiB.
    pub program_digest_memo_bytes: usize,
    /// Keep compiled components on disk (encrypted) so restarts never recompile. Default true.
    pub disk_cache: bool,
    /// Most bytes the disk cache of compiled components may take; past it the least recently
    /// used are removed (anyone who sends a new component adds one). Plug-ins' cache and
    /// deployed agents' code are not counted and never removed. Default 4 GiB.
    pub disk_cache_max_bytes: u64,
}

/// Which attestation provider to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderChoice {
    /// No attestation: verifiable routes answer 503.
    None,
    /// Use the dstack guest agent if its socket exists, else TDX or SEV-SNP if configfs-tsm
    /// offers one, otherwise none. Never simulated.
    Auto,
    /// Intel TDX through configfs-tsm (start-up fails without it).
    Tdx,
    /// Intel TDX through the dstack guest agent's Unix socket (quotes with dstack's event log).
    Dstack,
    /// AMD SEV-SNP through configfs-tsm (start-up fails without it).
    SevSnp,
    /// Development-only simulation (needs the `simulated-attestation` build feature).
    Simulated,
}

/// Attestation settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttestationConfig {
    /// Provider. Default `none`.
    pub provider: ProviderChoice,
    /// configfs-tsm report root. Default `/sys/kernel/config/tsm/report`.
    pub configfs_root: PathBuf,
    /// Create a new attested signing key this often, seconds (0 = never). Default 86400.
    pub key_rotation_seconds: u64,
    /// With the simulated provider only: the host measurement to claim (hex SHA-256) instead
    /// of the binary's, so that tests can stand up a replica "built differently". Refused with
    /// any other provider.
    pub simulated_host_measurement: Option<String>,
    /// With the simulated provider only: the platform it simulates (registers and RTMR3 event
    /// log), so that tests can stand up a replica on "another machine".
    pub simulated_platform: SimulatedPlatform,
    /// The dstack guest agent's socket. Default: `DSTACK_AGENT_ADDRESS` (a path, or
    /// `unix:PATH`), else the first of `/var/run/dstack.sock`, `/run/dstack.sock`,
    /// `/var/run/dstack/dstack.sock`, `/run/dstack/dstack.sock` that exists.
    pub dstack_socket: Option<PathBuf>,
    /// The event log a launcher appended its RTMR3 events to (`hypervisor launch`), included
    /// with configfs-tsm TDX evidence after the firmware's (CCEL). Default
    /// `/run/wasm-hypervisor/rtmr3-events.log`.
    pub runtime_event_log: PathBuf,
    /// The firmware's event log (ACPI CCEL records). Default
    /// `/sys/firmware/acpi/tables/data/CCEL`.
    pub ccel_path: PathBuf,
    /// The kernel file `hypervisor launch` extends RTMR3 through. Default
    /// `/sys/devices/virtual/misc/tdx_guest/measurements/rtmr3:sha384` (Linux 6.16 TSM-MR).
    pub rtmr3_extend_file: PathBuf,
}

/// The platform the simulated provider simulates: a TDX-like machine whose registers are
/// these (48 bytes each, hex; defaults: SHA-384 of `wasm-hypervisor simulated MRTD` and so
/// on), with an RTMR3 event log that holds a dstack-like boot sequence naming
/// `compose_hash` (when set) and the launcher's host-binary event (when `host_event`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatedPlatform {
    /// MRTD (hex, 48 bytes).
    pub mrtd: Option<String>,
    /// RTMR0 (hex, 48 bytes).
    pub rtmr0: Option<String>,
    /// RTMR1 (hex, 48 bytes).
    pub rtmr1: Option<String>,
    /// RTMR2 (hex, 48 bytes).
    pub rtmr2: Option<String>,
    /// A dstack-like `compose-hash` event (hex, 32 bytes).
    pub compose_hash: Option<String>,
    /// Leave out the launcher's `hypervisor-host-sha256` event (default: present).
    pub no_host_event: bool,
}

impl Default for AttestationConfig {
    fn default() -> Self {
        Self {
            provider: ProviderChoice::None,
            configfs_root: PathBuf::from(crate::attestation::configfs::DEFAULT_ROOT),
            key_rotation_seconds: 86_400,
            simulated_host_measurement: None,
            simulated_platform: SimulatedPlatform::default(),
            dstack_socket: None,
            runtime_event_log: PathBuf::from(crate::attestation::configfs::DEFAULT_RUNTIME_LOG),
            ccel_path: PathBuf::from(crate::attestation::configfs::DEFAULT_CCEL),
            rtmr3_extend_file: PathBuf::from(crate::attestation::launcher::TSM_MR_RTMR3),
        }
    }
}

/// Log settings (`RUST_LOG` overrides the level).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Level filter, e.g. `info` or `hypervisor=debug`. Default `info`.
    pub level: String,
    /// Emit JSON lines instead of text. Default false.
    pub json: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            data_dir: PathBuf::from("./data"),
            cache_dir: None,
            plugin_cache_dir: None,
            precompiled_dir: None,
            http: HttpConfig::default(),
            tls: TlsConfig::default(),
            sessions: SessionConfig::default(),
            limits: LimitsConfig::default(),
            engine: EngineConfig::default(),
            riscv: RiscvConfig::default(),
            attestation: AttestationConfig::default(),
            policy: PolicyConfig::default(),
            python: PythonConfig::default(),
            javascript: JavascriptConfig::default(),
            payments: PaymentsConfig::default(),
            egress: EgressConfig::default(),
            a2a: A2aConfig::default(),
            storage: StorageConfig::default(),
            state: StateConfig::default(),
            cluster: ClusterConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ttl_seconds: 3600,
            max_sessions: 100_000,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            default_time_ms: 10_000,
            max_time_ms: 60_000,
            default_memory_bytes: 128 << 20,
            max_memory_bytes: 1 << 30,
            default_fuel: 10_000_000_000,
            max_fuel: 100_000_000_000,
            stdout_bytes: 1 << 20,
            stderr_bytes: 1 << 20,
            max_wasm_stack_bytes: 1 << 20,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            epoch_tick_ms: 10,
            max_concurrent_executions: 256,
            pooling_allocator: true,
            pool_keep_resident_bytes: 4 << 20,
            program_digest_memo_bytes: 32 << 20,
            fuel: false,
            memory_cache_entries: 128,
            memory_cache_bytes: 128 << 20,
            js_function_cache_bytes: 48 << 20,
            disk_cache: true,
            disk_cache_max_bytes: 4 << 30,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            json: false,
        }
    }
}

impl Config {
    /// Reads a TOML file; missing keys take their defaults.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Parse`].
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Parses TOML text.
    ///
    /// # Errors
    /// The TOML error, naming the offending key.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The effective configuration as TOML (for `hypervisor config`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// Where compiled components are cached.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("cache"))
    }

    /// Where compiled plug-in components are cached.
    pub fn plugin_cache_dir(&self) -> PathBuf {
        self.plugin_cache_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("plugins"))
    }

    /// Where plug-ins compiled ahead of time are looked for (`None`: nowhere).
    pub fn precompiled_dir(&self) -> Option<PathBuf> {
        match &self.precompiled_dir {
            Some(dir) if dir.as_os_str().is_empty() => None,
            Some(dir) => Some(dir.clone()),
            None => default_precompiled_dir(),
        }
    }

    /// Checks ranges and consistency.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let bad = |msg: &str| Err(ConfigError::Invalid(msg.to_string()));
        self.tls.validate().map_err(ConfigError::Invalid)?;
        if l.default_time_ms == 0 || l.default_time_ms > l.max_time_ms {
            return bad("limits.default_time_ms must be > 0 and <= limits.max_time_ms");
        }
        if l.default_memory_bytes == 0 || l.default_memory_bytes > l.max_memory_bytes {
            return bad("limits.default_memory_bytes must be > 0 and <= limits.max_memory_bytes");
        }
        if l.max_memory_bytes > 4 << 30 {
            return bad("limits.max_memory_bytes must be <= 4 GiB (32-bit WebAssembly memories)");
        }
        if l.default_fuel > l.max_fuel {
            return bad("limits.default_fuel must be <= limits.max_fuel");
        }
        if l.max_wasm_stack_bytes < 64 << 10 || l.max_wasm_stack_bytes > 64 << 20 {
            return bad("limits.max_wasm_stack_bytes must be between 64 KiB and 64 MiB");
        }
        if self.engine.epoch_tick_ms == 0 || self.engine.epoch_tick_ms > 1000 {
            return bad("engine.epoch_tick_ms must be between 1 and 1000");
        }
        if self.engine.max_concurrent_executions == 0 {
            return bad("engine.max_concurrent_executions must be > 0");
        }
        if self.engine.memory_cache_entries == 0 {
            return bad("engine.memory_cache_entries must be > 0");
        }
        if self.attestation.simulated_host_measurement.is_some()
            && self.attestation.provider != ProviderChoice::Simulated
        {
            return bad(
                "attestation.simulated_host_measurement needs attestation.provider = \"simulated\"",
            );
        }
        if let Some(m) = &self.attestation.simulated_host_measurement
            && hex::decode(m).map_or(true, |b| b.len() != 32)
        {
            return bad("attestation.simulated_host_measurement must be 64 hex digits");
        }
        if self.attestation.simulated_platform != SimulatedPlatform::default()
            && self.attestation.provider != ProviderChoice::Simulated
        {
            return bad(
                "attestation.simulated_platform needs attestation.provider = \"simulated\"",
            );
        }
        let sp = &self.attestation.simulated_platform;
        for (name, value, len) in [
            ("mrtd", &sp.mrtd, 48),
            ("rtmr0", &sp.rtmr0, 48),
            ("rtmr1", &sp.rtmr1, 48),
            ("rtmr2", &sp.rtmr2, 48),
            ("compose_hash", &sp.compose_hash, 32),
        ] {
            if let Some(v) = value
                && hex::decode(v).map_or(true, |b| b.len() != len)
            {
                return bad(&format!(
                    "attestation.simulated_platform.{name} must be {} hex digits",
                    len * 2
                ));
            }
        }
        if let Some(url) = &self.storage.database
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return bad("storage.database must be a postgres:// or postgresql:// URL");
        }
        if self.storage.pool_size == 0 || self.storage.connect_timeout_ms == 0 {
            return bad("storage.pool_size and storage.connect_timeout_ms must be > 0");
        }
        if self.state.max_keys == 0
            || self.state.max_bytes == 0
            || self.state.max_value_bytes == 0
            || self.state.max_key_bytes == 0
        {
            return bad("state.max_keys, max_bytes, max_value_bytes and max_key_bytes must be > 0");
        }
        if self.cluster.heartbeat_ms == 0
            || self.cluster.dead_after_ms < 3 * self.cluster.heartbeat_ms
        {
            return bad("cluster.dead_after_ms must be at least 3 × cluster.heartbeat_ms (> 0)");
        }
        if let Some(id) = &self.cluster.replica_id
            && (id.is_empty()
                || id.len() > 63
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            return bad("cluster.replica_id must be 1 to 63 of A-Z a-z 0-9 . - _");
        }
        if self.cluster.allowed_measurements.is_some() {
            return bad(
                "cluster.allowed_measurements is no longer accepted: a host binary's SHA-256 is \
                 a value the host writes about itself and proves nothing, so a replica claiming \
                 it could be any program in any TEE. Replace it with \
                 cluster.allowed_reference_values: reference value sets of platform-measured \
                 values (docs/PROTOCOL.md §12b, docs/DEPLOY.md)",
            );
        }
        if self.cluster.tdx_tcb_statuses.is_empty() {
            return bad(
                "cluster.tdx_tcb_statuses must name at least one TCB status (e.g. UpToDate)",
            );
        }
        if self.cluster.allowed_reference_values.len()
            > hypervisor_protocol::reference::MAX_REFERENCE_SETS
        {
            return bad("cluster.allowed_reference_values holds at most 32 sets");
        }
        for (i, set) in self.cluster.allowed_reference_values.iter().enumerate() {
            if let Err(e) = set.decode(i) {
                return bad(&format!("cluster.allowed_reference_values: {e}"));
            }
        }
        if self.sessions.max_sessions == 0 || self.sessions.ttl_seconds == 0 {
            return bad("sessions.max_sessions and sessions.ttl_seconds must be > 0");
        }
        if self.policy.instances == 0 || self.policy.instances > 64 {
            return bad("policy.instances must be between 1 and 64");
        }
        if self.policy.time_ms == 0 || self.policy.memory_bytes == 0 {
            return bad("policy.time_ms and policy.memory_bytes must be > 0");
        }
        if self.payments.enabled && self.payments.price.pay_to.is_empty() {
            return bad("payments.enabled needs payments.price.pay_to (the operator's address)");
        }
        let p = &self.payments;
        match (p.mode, &p.facilitator_url) {
            (SettlementMode::Facilitator, None) => {
                return bad("payments.mode = \"facilitator\" needs payments.facilitator_url");
            }
            (_, Some(url)) => {
                if let Err(e) = crate::net::Origin::parse(url) {
                    return Err(ConfigError::Invalid(format!(
                        "payments.facilitator_url: {e}"
                    )));
                }
            }
            (SettlementMode::VerifyOnly, None) => {}
        }
        if let Some(address) = &p.facilitator_address
            && !(address.len() == 42
                && address.starts_with("0x")
                && address[2..].bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return bad("payments.facilitator_address must be a 0x-prefixed 20-byte hex address");
        }
        if p.call_timeout_ms == 0 || p.call_timeout_ms > 600_000 {
            return bad("payments.call_timeout_ms must be between 1 and 600000");
        }
        if p.warm_instances > 64 {
            return bad("payments.warm_instances must be at most 64");
        }
        if let Some(up_to) = &p.settle_after_response_up_to
            && up_to.parse::<u128>().is_err()
        {
            return bad("payments.settle_after_response_up_to must be an amount in atomic units");
        }
        if p.deferred_settlements_max > 1_000_000 {
            return bad("payments.deferred_settlements_max must be at most 1000000");
        }
        {
            use hypervisor_protocol::routes::Route;
            let paid = [
                Route::ExecuteWasmPaid,
                Route::ExecuteWasmVerifiablePaid,
                Route::ExecutePythonPaid,
            ]
            .map(Route::path);
            if let Err(message) = p.payment_identifier.check(&paid) {
                return bad(&message);
            }
        }
        if self.http.max_body_bytes < 1024 {
            return bad("http.max_body_bytes must be at least 1024");
        }
        if self.a2a.max_tasks_per_caller == 0 || self.a2a.max_anonymous_tasks_per_agent == 0 {
            return bad(
                "a2a.max_tasks_per_caller and a2a.max_anonymous_tasks_per_agent must be at least 1",
            );
        }
        if self.a2a.max_task_bytes < 1 << 20 {
            return bad("a2a.max_task_bytes must be at least 1048576");
        }
        let h = &self.http;
        if h.max_upload_bytes < 1024 || h.max_upload_bytes > 4 << 30 {
            return bad("http.max_upload_bytes must be between 1024 and 4294967296 (4 GiB)");
        }
        if h.upload_timeout_ms == 0 || h.upload_timeout_ms > 3_600_000 {
            return bad("http.upload_timeout_ms must be between 1 and 3600000");
        }
        if h.max_arguments > hypervisor_protocol::bounded::MAX_ARGUMENTS {
            return bad("http.max_arguments must be at most 65536");
        }
        if h.operator_token
            .as_ref()
            .is_some_and(OperatorToken::too_short)
        {
            return bad("http.operator_token must be at least 16 characters");
        }
        if self
            .javascript
            .environments_token
            .as_ref()
            .is_some_and(OperatorToken::too_short)
        {
            return bad("javascript.environments_token must be at least 16 characters");
        }
        if let Err(message) = h.check_cors_origins() {
            return bad(&message);
        }
        if h.linger_ms > 60_000 {
            return bad("http.linger_ms must be at most 60000");
        }
        if h.linger_bytes > 1 << 30 {
            return bad("http.linger_bytes must be at most 1073741824");
        }
        if !(8 << 10..=1 << 20).contains(&h.max_head_bytes) {
            return bad("http.max_head_bytes must be between 8192 and 1048576");
        }
        if h.header_timeout_ms == 0 || h.header_timeout_ms > 600_000 {
            return bad("http.header_timeout_ms must be between 1 and 600000");
        }
        if h.idle_timeout_ms == 0 || h.idle_timeout_ms > 3_600_000 {
            return bad("http.idle_timeout_ms must be between 1 and 3600000");
        }
        if h.max_connections == 0 || h.max_connections > 1_000_000 {
            return bad("http.max_connections must be between 1 and 1000000");
        }
        Ok(())
    }
}

/// `hypervisor-precompiled/` beside the running executable.
pub fn default_precompiled_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join("hypervisor-precompiled"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_toml_is_the_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.listen, Config::default().listen);
        c.validate().unwrap();
    }

    #[test]
    fn original_design_keys_are_aliases() {
        let c = Config::from_toml(
            "listening = \"0.0.0.0:8080\"\napp_path = \"/var/lib/hv\"\nexecutor_path = \"/var/cache/hv\"\n",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/hv"));
        assert_eq!(c.cache_dir(), PathBuf::from("/var/cache/hv"));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = Config::from_toml("[limits]\ndefault_tme_ms = 5\n").unwrap_err();
        assert!(err.to_string().contains("default_tme_ms"), "{err}");
    }

    #[test]
    fn inconsistent_limits_are_rejected() {
        let c = Config::from_toml("[limits]\ndefault_time_ms = 90000\n").unwrap();
        assert!(c.validate().is_err());
    }

    #[test]
    fn the_shipped_example_is_valid_and_equals_the_defaults() {
        let c = Config::from_toml(include_str!("../../../hypervisor.example.toml")).unwrap();
        c.validate().unwrap();
        assert_eq!(c.to_toml(), Config::default().to_toml());
    }

    #[test]
    fn tls_settings_are_checked_together() {
        let check = |t: &str| {
            Config::from_toml(&format!("[tls]\n{t}"))
                .unwrap()
                .validate()
        };
        assert!(check("listen = \"127.0.0.1:3443\"").is_ok());
        assert!(
            check("certificate = \"c.pem\"").is_err(),
            "a certificate without its key"
        );
        assert!(
            check("key = \"k.pem\"").is_err(),
            "a key without its certificate"
        );
        assert!(check("plain = false").is_err(), "no listener at all");
        assert!(check("listen = \"127.0.0.1:3443\"\nplain = false\nnames = []").is_err());
        assert!(check("listen = \"127.0.0.1:3443\"\nplain = false").is_ok());
    }

    #[test]
    fn facilitator_mode_needs_an_http_origin() {
        let c = |t: &str| {
            Config::from_toml(&format!("[payments]\n{t}"))
                .unwrap()
                .validate()
        };
        assert!(c("mode = \"facilitator\"").is_err());
        assert!(c("mode = \"facilitator\"\nfacilitator_url = \"ftp://x\"").is_err());
        c("mode = \"facilitator\"\nfacilitator_url = \"https://x402.org/facilitator\"").unwrap();
        assert!(c("call_timeout_ms = 0").is_err());
    }

    #[test]
    fn connection_limits_are_checked() {
        let c = |t: &str| {
            Config::from_toml(&format!("[http]\n{t}"))
                .unwrap()
                .validate()
        };
        c("header_timeout_ms = 1000\nidle_timeout_ms = 2000\nmax_connections = 64").unwrap();
        assert!(c("header_timeout_ms = 0").is_err());
        assert!(c("idle_timeout_ms = 0").is_err());
        assert!(c("max_connections = 0").is_err());
        assert!(c("max_connections = 2000000").is_err());
    }

    #[test]
    fn rendered_config_parses_back() {
        let c = Config::default();
        let back = Config::from_toml(&c.to_toml()).unwrap();
        assert_eq!(back.limits.max_time_ms, c.limits.max_time_ms);
    }
}
