//! The operator's policy: a component exporting `hypervisor:host/policy`, configured with the
//! operator's rules and asked on every request that would run code.
//!
//! A decision costs microseconds because it runs in a **warm** instance: the host keeps
//! `policy.instances` live instances, each configured once, and lends one to each decision.
//! That is safe because nothing but the operator's policy ever runs in them (client scripts get
//! a fresh instance of their own, see [`super::python`]) and because an instance that traps or
//! overruns its time is discarded, never reused. Every failure refuses the request: the host
//! fails closed.

mod cache;

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use sha2::Digest;

use self::cache::{DecisionCache, Key};
use super::instance::{Bound, outcome, plugin_world};
use super::{PluginError, chain};
use crate::config::PolicyConfig;
use crate::engine::{Capabilities, Engine, Role, RunLimits, Sandbox, is_deadline};

plugin_world!(
    world: "policy-component",
    bindings: PolicyComponent,
    pre: PolicyComponentPre,
    interface: "hypervisor:host/policy"
);

use bindings::PolicyComponent;
pub use bindings::exports::hypervisor::host::policy::{
    Decision, Denial, Limits, Payment, ProgramKind, RequestInfo, Verdict,
};

/// Fuel given to a policy call when the engine meters fuel (a decision is tiny; this only keeps
/// metering from trapping it).
const CALL_FUEL: u64 = 1_000_000_000;
/// Time allowed to instantiate and configure one instance.
const START_TIME: Duration = Duration::from_secs(10);

/// Why a decision could not be made. The request is refused in every case.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy did not answer in time.
    #[error("the policy did not decide within {0} ms")]
    Timeout(u64),
    /// The policy trapped or could not be instantiated.
    #[error("the policy component failed: {0}")]
    Failed(String),
}

/// A policy instance, configured and ready.
struct Warm {
    sandbox: Sandbox,
    bindings: PolicyComponent,
}

/// A loaded, configured policy with its warm instances.
pub struct Policy {
    plugin: Bound<PolicyComponent>,
    rules: String,
    rules_hash: [u8; 32],
    limits: RunLimits,
    idle: Mutex<Vec<Warm>>,
    permits: tokio::sync::Semaphore,
    reused: Option<DecisionCache>,
}

impl Policy {
    /// Loads the component named by `config`, reads the rules, and starts
    /// `config.instances` configured instances (so bad rules fail here, not on a request).
    ///
    /// # Errors
    /// [`PluginError`] naming the file and the reason.
    pub async fn load(engine: Arc<Engine>, config: &PolicyConfig) -> Result<Self, PluginError> {
        let capabilities = Capabilities::of(Role::Policy);
        let plugin = Bound::load(engine, capabilities, &config.component).await?;
        let rules = match &config.rules {
            Some(file) => read_rules(file)?,
            None => "{}".to_string(),
        };
        let rules_hash = sha2::Sha256::digest(rules.as_bytes()).into();
        let policy = Self {
            plugin,
            rules,
            rules_hash,
            limits: RunLimits {
                time: Duration::from_millis(config.time_ms),
                memory_bytes: config.memory_bytes,
                fuel: None,
            },
            idle: Mutex::new(Vec::with_capacity(config.instances)),
            permits: tokio::sync::Semaphore::new(config.instances),
            reused: DecisionCache::new(config.reuse_entries),
        };
        for _ in 0..config.instances {
            let warm = policy.start_instance().await?;
            policy.lock().push(warm);
        }
        Ok(policy)
    }

    /// SHA-256 of the policy component file.
    pub fn component_hash(&self) -> [u8; 32] {
        self.plugin.hash
    }

    /// SHA-256 of the rules document as given to `configure`.
    pub fn rules_hash(&self) -> [u8; 32] {
        self.rules_hash
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Warm>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a warm instance. A start that failed on the kernel's transient `EBUSY` when
    /// wasmtime seals the memfd of a memory image ("cannot add seals to the memfd", seen under
    /// heavy load) is tried again in a fresh store, twice at most: otherwise that transient
    /// would stop the host at start-up.
    async fn start_instance(&self) -> Result<Warm, PluginError> {
        let mut attempt = 0u64;
        loop {
            match self.start_instance_once().await {
                Err(PluginError::Start { detail, .. })
                    if attempt < 2 && detail.contains("cannot add seals to the memfd") =>
                {
                    attempt += 1;
                    tracing::warn!(attempt, %detail, "policy instance start failed transiently; trying again");
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn start_instance_once(&self) -> Result<Warm, PluginError> {
        let start_error = |detail: String| PluginError::Start {
            path: self.plugin.path.clone(),
            detail,
        };
        // Starting (instantiate and configure) gets START_TIME; each decision then gets
        // `limits.time`, see `ask`.
        let limits = RunLimits {
            time: START_TIME,
            ..self.limits
        };
        let mut sandbox = self
            .plugin
            .sandbox(Default::default(), limits)
            .map_err(|e| start_error(e.to_string()))?;
        self.refuel(&mut sandbox)
            .map_err(|e| start_error(e.to_string()))?;
        let (started, _) = self
            .plugin
            .call(&mut sandbox, async |bindings, store| {
                let configured = bindings
                    .hypervisor_host_policy()
                    .call_configure(&mut *store, &self.rules)
                    .await?;
                Ok((bindings, configured))
            })
            .await;
        match outcome(started).map_err(start_error)? {
            (_, Err(reason)) => Err(PluginError::RulesRejected(reason)),
            (bindings, Ok(())) => Ok(Warm { sandbox, bindings }),
        }
    }

    fn refuel(&self, sandbox: &mut Sandbox) -> wasmtime::Result<()> {
        if self.plugin.engine.fuel_enabled() {
            sandbox.store().set_fuel(CALL_FUEL)?;
        }
        Ok(())
    }

    /// Decisions reused from earlier identical requests so far (see `verdict.reuse-ms`).
    pub fn reused_decisions(&self) -> u64 {
        self.reused.as_ref().map_or(0, DecisionCache::hits)
    }

    /// The decision for one request: a decision the policy allowed to be reused for identical
    /// metadata, or else a fresh one from a warm instance (see [`Self::ask`]).
    ///
    /// # Errors
    /// [`PolicyError`]: the caller must refuse the request.
    pub async fn evaluate(&self, request: &RequestInfo) -> Result<Decision, PolicyError> {
        let Some(reused) = &self.reused else {
            return Ok(self.ask(request).await?.decision);
        };
        let key = Key::of(request);
        if let Some(decision) = reused.get(&key, Instant::now()) {
            return Ok(decision);
        }
        let verdict = self.ask(request).await?;
        let reuse = Duration::from_millis(u64::from(verdict.reuse_ms));
        reused.put(key, &verdict.decision, reuse, Instant::now());
        Ok(verdict.decision)
    }

    /// Asks the policy about one request, in a warm instance (waiting for one if all are
    /// busy). An instance that fails is dropped and a new one started on the next call.
    ///
    /// # Errors
    /// [`PolicyError`]: the caller must refuse the request.
    pub async fn ask(&self, request: &RequestInfo) -> Result<Verdict, PolicyError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PolicyError::Failed("policy closed".into()))?;
        let idle = self.lock().pop();
        let mut warm = match idle {
            Some(warm) => warm,
            None => {
                tracing::info!("starting a replacement policy instance");
                self.start_instance()
                    .await
                    .map_err(|e| PolicyError::Failed(e.to_string()))?
            }
        };
        self.refuel(&mut warm.sandbox)
            .map_err(|e| PolicyError::Failed(e.to_string()))?;
        let Warm { sandbox, bindings } = &mut warm;
        let answer = self
            .plugin
            .engine
            .call_with_deadline(sandbox.store(), self.limits.time, async |store| {
                bindings
                    .hypervisor_host_policy()
                    .call_evaluate(store, request)
                    .await
            })
            .await;
        let time_ms = u64::try_from(self.limits.time.as_millis()).unwrap_or(u64::MAX);
        match answer {
            Some(Ok(verdict)) => {
                self.lock().push(warm);
                Ok(verdict)
            }
            // The instance is dropped: after a trap or an abandoned call it is unusable.
            Some(Err(e)) if is_deadline(&e) => Err(PolicyError::Timeout(time_ms)),
            Some(Err(e)) => {
                tracing::warn!(error = %chain(&e), "policy instance trapped; discarded");
                Err(PolicyError::Failed("the policy trapped".into()))
            }
            None => Err(PolicyError::Timeout(time_ms)),
        }
    }
}

/// Reads a rules file (TOML or JSON, by extension) into the JSON text given to `configure`.
fn read_rules(path: &Path) -> Result<String, PluginError> {
    let err = |detail: String| PluginError::RulesFile {
        path: path.to_owned(),
        detail,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let value: serde_json::Value = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => serde_json::from_str(&text).map_err(|e| err(e.to_string()))?,
        Some("toml") => toml::from_str(&text).map_err(|e| err(e.to_string()))?,
        _ => return Err(err("the file name must end in .toml or .json".into())),
    };
    serde_json::to_string(&value).map_err(|e| err(e.to_string()))
}

/// The policy in force, swappable at run time ([`PolicySlot::replace`] on reload).
pub struct PolicySlot {
    current: RwLock<Option<Arc<Policy>>>,
}

impl PolicySlot {
    /// A slot holding `policy` (`None`: no policy configured; every request is admitted).
    pub fn new(policy: Option<Policy>) -> Self {
        Self {
            current: RwLock::new(policy.map(Arc::new)),
        }
    }

    /// The policy in force.
    pub fn get(&self) -> Option<Arc<Policy>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts `policy` in force; requests already deciding finish with the old one.
    pub fn replace(&self, policy: Option<Arc<Policy>>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = policy;
    }
}
