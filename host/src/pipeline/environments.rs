//! Assist TEE's environments (`docs/PROTOCOL.md` §25) translated into JavaScript agents: the
//! adapter behind `/environments/*`. It is a client of the agent pipeline, nothing more:
//!
//! - an environment is the private JavaScript agent `env-<id>`, deployed
//!   ([`Pipeline::deploy_agent`], §24) with its modules, its TTL as the agent's (the agent
//!   reaper removes it) and Deno's `allowNet` hosts as its origin grants;
//! - its owner is the **environments key**, a P-256 key derived from the host's at-rest key (so
//!   every replica and every restart has it, and nobody outside the host does): the adapter
//!   signs each deployment and deletion with it like any owner, and runs the agents it owns in
//!   the clear ([`Pipeline::invoke_own_agent`]); the agents stay private, so nobody else
//!   invokes them in the clear;
//! - an execution is an invocation with the event `{data, env}`, its limits the agent's
//!   (`timeoutMs`, `memoryMb`), recorded like any (`GET /executions/{id}`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hypervisor_protocol::EncodedPublicKey;
use hypervisor_protocol::agents::{
    AgentKind, DeployRequest, InvokeRequest, InvokeResponse, JsSource, OwnerAction, deploy_detail,
};
use hypervisor_protocol::environments::{
    DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_MS, DEFAULT_TTL_SECONDS, EXIT_MEMORY, EXIT_TIMEOUT,
    Environment, EnvironmentMetadata, ExecuteRequest, ExecuteResponse, SetupRequest,
    TIMEOUT_MESSAGE, agent_name,
};
use hypervisor_protocol::grants::Grants;
use hypervisor_protocol::owner::OwnerStatement;
use hypervisor_protocol::wire::{ExitStatus, Limits};
use p256::ecdsa::SigningKey;
use serde_json::Value;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::Pipeline;
use super::agents::invoke::Invoked;
use super::agents::owner::Proof;
use crate::clock::{unix_micros, unix_seconds};
use crate::error::ApiError;
use crate::storage::agents::AgentRecord;

/// The runtime named in environments.
const RUNTIME: &str = "boa";
/// The derivation label of the environments key.
const OWNER_KEY_LABEL: &[u8] = b"wasm-hypervisor/environments-owner-key/v1";

/// Why an environments request failed, in Assist's terms.
#[derive(Debug, thiserror::Error)]
pub enum EnvironmentError {
    /// A field is missing or wrong (`validation_error`).
    #[error("{0}")]
    Validation(String),
    /// The modules were refused at setup: a syntax error, an import outside the map, no
    /// `handler` (`setup_failed`, the deployer's fault).
    #[error("{0}")]
    SetupRefused(String),
    /// The id is not a UUID (`invalid_id`).
    #[error("invalid environment ID")]
    InvalidId,
    /// No such environment (`environment_not_found`).
    #[error("environment not found")]
    NotFound,
    /// The pipeline refused or failed otherwise.
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// Executions of one environment seen by this replica.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    count: u64,
    last_ms: u64,
}

/// The adapter (see the module's doc).
pub struct Environments {
    owner: SigningKey,
    owner_key: EncodedPublicKey,
    usage: Mutex<HashMap<String, Usage>>,
    sequence: AtomicU64,
}

impl Environments {
    /// The adapter over `pipeline`, with the environments key derived from its at-rest key.
    ///
    /// # Errors
    /// [`ApiError::Internal`] in the (2^-128) case that the derived bytes are no P-256 key.
    pub fn new(pipeline: &Pipeline) -> Result<Self, ApiError> {
        let seed = zeroize::Zeroizing::new(pipeline.sealing.derive_name(OWNER_KEY_LABEL, b""));
        let owner = SigningKey::from_slice(seed.as_slice())
            .map_err(|_| ApiError::Internal("the environments key cannot be derived".into()))?;
        let point = owner.verifying_key().to_sec1_point(true);
        let owner_key = EncodedPublicKey::from_hex("environments key", &hex::encode(point))?;
        Ok(Self {
            owner,
            owner_key,
            usage: Mutex::new(HashMap::new()),
            sequence: AtomicU64::new(0),
        })
    }

    /// An owner proof of `action` on `name` with `detail`, by the environments key.
    fn sign(&self, audience: &str, action: OwnerAction, name: &str, detail: &str) -> Proof {
        // Unix microseconds, kept increasing within this process.
        let floor = unix_micros().saturating_sub(1);
        let next = |last: u64| last.max(floor) + 1;
        let last = self
            .sequence
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| Some(next(l)))
            .unwrap_or_else(|l| l);
        let sequence = next(last);
        let signed_at = unix_seconds();
        let message = OwnerStatement {
            audience,
            action,
            name,
            signed_at,
            sequence,
            detail,
        }
        .message();
        Proof {
            key: None,
            signature: hypervisor_protocol::owner::owner_signature_hex(&self.owner, &message),
            signed_at,
            sequence,
        }
    }

    /// `POST /environments/setup`: the modules deployed as a JavaScript agent.
    ///
    /// # Errors
    /// [`EnvironmentError::Validation`], [`EnvironmentError::SetupRefused`], the pipeline's.
    pub async fn setup(
        &self,
        pipeline: &Pipeline,
        req: SetupRequest,
    ) -> Result<Environment, EnvironmentError> {
        let invalid = |m: &str| Err(EnvironmentError::Validation(m.to_string()));
        if req.main_module.is_empty() {
            return invalid("mainModule is required");
        }
        if req.modules.is_empty() {
            return invalid("modules cannot be empty");
        }
        if !req.modules.contains_key(&req.main_module) {
            // Assist's message, then which module and what the map has.
            let mut names: Vec<&str> = req.modules.keys().map(String::as_str).collect();
            names.sort_unstable();
            let shown = names
                .iter()
                .take(10)
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            let more = if names.len() > 10 { ", …" } else { "" };
            return invalid(&format!(
                "mainModule must exist in modules map: {:?} is not among its {} modules ({shown}{more})",
                req.main_module,
                names.len(),
            ));
        }
        if req.dependencies.as_ref().is_some_and(has_dependencies) {
            return invalid(
                "dependencies are not downloaded on this host: bundle them into modules",
            );
        }
        let ttl = req
            .ttl_seconds
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_TTL_SECONDS);
        let grants = net_grants(req.permissions.as_ref())?;
        let id = Uuid::new_v4();
        let name = agent_name(&id);
        let module_count = req.modules.len();
        let js = JsSource {
            engine: Default::default(),
            main: req.main_module.clone(),
            modules: req.modules,
        };
        let mut deploy = DeployRequest {
            name: name.clone(),
            description: serde_json::json!({
                "environment": {"mainModule": req.main_module, "moduleCount": module_count},
                "permissions": req.permissions,
            })
            .to_string(),
            tags: vec!["environment".into()],
            public_key: self.owner_key.to_hex(),
            component: None,
            encrypted_component: None,
            program_kind: None,
            js: Some(js.clone()),
            encrypted_js: None,
            session_id: None,
            public: Some(false),
            limits: None,
            price: None,
            ttl_seconds: Some(ttl),
            charge: None,
            tariff: None,
            content_type: None,
            grants,
            schemas: None,
            signature: None,
            signed_at: None,
            sequence: None,
        };
        let proof = self.sign(
            pipeline.audience(),
            OwnerAction::Deploy,
            &name,
            &deploy_detail(&hex::encode(js.sha256()), &deploy),
        );
        deploy.signature = Some(proof.signature);
        deploy.signed_at = Some(proof.signed_at);
        deploy.sequence = Some(proof.sequence);
        let detail = pipeline
            .deploy_agent(deploy, None)
            .await
            .map_err(|e| match e {
                // The runtime's refusals ("js: <code>: …"): the modules' fault.
                ApiError::InvalidRequest(m) | ApiError::AgentFailed(m) if m.starts_with("js: ") => {
                    EnvironmentError::SetupRefused(m)
                }
                ApiError::InvalidRequest(m) => EnvironmentError::Validation(m),
                other => EnvironmentError::Api(other),
            })?;
        Ok(self
            .describe(&detail.agent)
            .unwrap_or_else(|| unreachable_environment(&detail.agent)))
    }

    /// The environment agent `env-<id>`, if `id` names one of this adapter's.
    fn find(
        &self,
        pipeline: &Pipeline,
        id: &str,
    ) -> Result<(String, AgentRecord), EnvironmentError> {
        let id = Uuid::try_parse(id).map_err(|_| EnvironmentError::InvalidId)?;
        let name = agent_name(&id);
        match pipeline.find_agent(&name) {
            Ok(agent)
                if agent
                    .owner_key
                    .eq_ignore_ascii_case(&self.owner_key.to_hex()) =>
            {
                Ok((name, agent))
            }
            Ok(_) | Err(ApiError::AgentNotFound(_)) => Err(EnvironmentError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// `POST /environments/{id}/execute`.
    ///
    /// # Errors
    /// [`EnvironmentError::InvalidId`], [`EnvironmentError::NotFound`],
    /// [`EnvironmentError::Validation`] for limits above the host's, the pipeline's.
    pub async fn execute(
        &self,
        pipeline: &Pipeline,
        id: &str,
        req: ExecuteRequest,
    ) -> Result<ExecuteResponse, EnvironmentError> {
        let (name, _) = self.find(pipeline, id)?;
        let asked = req.limits.unwrap_or_default();
        let timeout_ms = asked
            .timeout_ms
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_TIMEOUT_MS);
        let memory_mb = asked
            .memory_mb
            .filter(|m| *m > 0)
            .unwrap_or(DEFAULT_MEMORY_MB);
        let event = event_text(req.data.as_deref(), req.env.as_deref())?;
        let event = RawValue::from_string(event).map_err(|e| ApiError::Internal(e.to_string()))?;
        let invoke = InvokeRequest {
            event: Some(event),
            limits: Some(Limits {
                time_ms: Some(timeout_ms),
                memory_bytes: Some(memory_mb.saturating_mul(1 << 20)),
                fuel: None,
            }),
            ..InvokeRequest::default()
        };
        let invoked = pipeline
            .invoke_own_agent(&name, &self.owner_key, invoke)
            .await
            .map_err(|e| match e {
                ApiError::LimitExceedsMaximum(m) => EnvironmentError::Validation(m),
                ApiError::AgentNotFound(_) => EnvironmentError::NotFound,
                other => EnvironmentError::Api(other),
            })?;
        let Invoked::Clear { response, .. } = invoked else {
            return Err(
                ApiError::Internal("an environment's execution came back sealed".into()).into(),
            );
        };
        {
            let mut usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
            let u = usage.entry(name).or_default();
            u.count += 1;
            u.last_ms = crate::clock::unix_millis();
        }
        Ok(execution(&response))
    }

    /// `GET /environments`: every environment, newest first.
    ///
    /// # Errors
    /// The pipeline's.
    pub fn list(&self, pipeline: &Pipeline) -> Result<Vec<Environment>, EnvironmentError> {
        let ours = self.owner_key.to_hex();
        let mut agents: Vec<AgentRecord> = pipeline
            .all_agents()?
            .into_iter()
            .filter(|a| a.owner_key.eq_ignore_ascii_case(&ours))
            .collect();
        agents.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.name.cmp(&a.name)));
        // Usage of environments gone otherwise (expired, or deleted on another replica) is
        // forgotten here, where every live one is known.
        self.usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|name, _| agents.iter().any(|a| &a.name == name));
        Ok(agents.iter().filter_map(|a| self.describe(a)).collect())
    }

    /// `DELETE /environments/{id}`.
    ///
    /// # Errors
    /// [`EnvironmentError::InvalidId`], [`EnvironmentError::NotFound`], the pipeline's.
    pub fn delete(&self, pipeline: &Pipeline, id: &str) -> Result<(), EnvironmentError> {
        let (name, _) = self.find(pipeline, id)?;
        let proof = self.sign(pipeline.audience(), OwnerAction::Delete, &name, "");
        match pipeline.delete_agent(&name, &proof) {
            Ok(()) => {}
            Err(ApiError::AgentNotFound(_)) => return Err(EnvironmentError::NotFound),
            Err(e) => return Err(e.into()),
        }
        self.usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&name);
        Ok(())
    }

    /// The environment an agent of this adapter is.
    fn describe(&self, agent: &AgentRecord) -> Option<Environment> {
        let id = agent.name.strip_prefix("env-")?.to_string();
        if agent.latest.kind != AgentKind::Handler {
            return None;
        }
        let meta: Value = serde_json::from_str(&agent.description).unwrap_or(Value::Null);
        let main_module = meta["environment"]["mainModule"].as_str()?.to_string();
        let module_count = meta["environment"]["moduleCount"].as_u64().unwrap_or(0) as usize;
        let usage = self
            .usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&agent.name)
            .copied()
            .unwrap_or_default();
        Some(Environment {
            volume_name: agent.name.clone(),
            id,
            main_module,
            runtime: RUNTIME.into(),
            created_at: rfc3339(agent.created_at * 1000),
            last_executed_at: (usage.count > 0).then(|| rfc3339(usage.last_ms)),
            execution_count: usage.count,
            status: "ready".into(),
            metadata: EnvironmentMetadata {
                permissions: meta["permissions"].clone(),
                module_count,
                dependency_count: 0,
                has_dependencies: false,
                runtime: RUNTIME.into(),
            },
            ttl_seconds: agent
                .expires_at
                .map_or(0, |e| e.saturating_sub(agent.created_at)),
        })
    }
}

/// An agent this adapter deployed that it cannot describe: a bug, shown rather than hidden.
fn unreachable_environment(agent: &AgentRecord) -> Environment {
    Environment {
        id: agent.name.trim_start_matches("env-").to_string(),
        volume_name: agent.name.clone(),
        main_module: String::new(),
        runtime: RUNTIME.into(),
        created_at: rfc3339(agent.created_at * 1000),
        last_executed_at: None,
        execution_count: 0,
        status: "ready".into(),
        metadata: EnvironmentMetadata {
            permissions: Value::Null,
            module_count: 0,
            dependency_count: 0,
            has_dependencies: false,
            runtime: RUNTIME.into(),
        },
        ttl_seconds: 0,
    }
}

/// Whether Assist's `dependencies` (`{npm: {...}, deno: {...}}`) names any.
fn has_dependencies(deps: &Value) -> bool {
    match deps {
        Value::Null => false,
        Value::Object(kinds) => kinds.values().any(|v| match v {
            Value::Object(m) => !m.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Null => false,
            _ => true,
        }),
        _ => true,
    }
}

/// Deno's `allowNet` as origin grants: each `host` or `host:port` as `https://…`.
fn net_grants(permissions: Option<&Value>) -> Result<Option<Grants>, EnvironmentError> {
    let invalid = |m: String| Err(EnvironmentError::Validation(m));
    let Some(net) = permissions.and_then(|p| p.get("allowNet")) else {
        return Ok(None);
    };
    let hosts = match net {
        Value::Bool(false) | Value::Null => return Ok(None),
        Value::Bool(true) => {
            return invalid(
                "permissions.allowNet: true (every host) is not granted here: list the hosts"
                    .into(),
            );
        }
        Value::Array(hosts) => hosts,
        _ => return invalid("permissions.allowNet must be a list of hosts".into()),
    };
    let mut origins = Vec::with_capacity(hosts.len());
    for h in hosts {
        let Some(h) = h.as_str() else {
            return invalid("permissions.allowNet must be a list of hosts".into());
        };
        let bare = h
            .strip_prefix("https://")
            .unwrap_or(h)
            .trim_end_matches('/');
        if bare.is_empty() || bare.contains(['/', '@', ' ', '?', '#']) {
            return invalid(format!(
                "permissions.allowNet: {h:?} is not a host or host:port"
            ));
        }
        origins.push(format!("https://{bare}"));
    }
    Ok(Some(Grants {
        origins,
        ..Grants::default()
    }))
}

/// `{"data": …, "env": …}`, the handler's event, with the client's own JSON text for both (the
/// handler's `JSON.parse` sees it as written). `env` must be an object.
fn event_text(data: Option<&RawValue>, env: Option<&RawValue>) -> Result<String, EnvironmentError> {
    let env = env.map_or("{}", RawValue::get);
    if !env.trim_start().starts_with('{') {
        return Err(EnvironmentError::Validation(
            "env must be an object of names and values".into(),
        ));
    }
    let data = data.map_or("null", RawValue::get);
    Ok(format!("{{\"data\":{data},\"env\":{env}}}"))
}

/// An invocation's answer as Assist's execution.
fn execution(r: &InvokeResponse) -> ExecuteResponse {
    let (exit_code, stdout, stderr) = match r.status {
        ExitStatus::TimeLimitExceeded => (EXIT_TIMEOUT, String::new(), TIMEOUT_MESSAGE.into()),
        ExitStatus::MemoryLimitExceeded => {
            (EXIT_MEMORY, String::new(), "Memory limit exceeded".into())
        }
        _ if r.ok => (
            0,
            r.result
                .as_ref()
                .map_or_else(|| "null".into(), |v| v.get().to_string()),
            String::new(),
        ),
        _ => (
            1,
            String::new(),
            r.error.as_ref().map_or_else(
                || {
                    if r.stderr.is_empty() {
                        format!("execution failed ({:?})", r.status)
                    } else {
                        r.stderr.clone()
                    }
                },
                |e| e.message.clone(),
            ),
        ),
    };
    ExecuteResponse {
        id: r.execution_id.clone(),
        exit_code,
        stdout,
        stderr,
        duration_ms: r.duration_us / 1000,
    }
}

/// Unix milliseconds as RFC 3339 (UTC, milliseconds).
fn rfc3339(ms: u64) -> String {
    let at = time::OffsetDateTime::UNIX_EPOCH
        + time::Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX));
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_net_becomes_origin_grants() {
        let p = serde_json::json!({"allowNet": ["api.example.com", "x.test:8443"]});
        let g = net_grants(Some(&p)).unwrap().unwrap();
        assert_eq!(
            g.origins,
            ["https://api.example.com", "https://x.test:8443"]
        );
        assert!(net_grants(Some(&serde_json::json!({"allowNet": true}))).is_err());
        assert!(net_grants(Some(&serde_json::json!({"allowNet": ["a/b"]}))).is_err());
        assert!(
            net_grants(Some(&serde_json::json!({"allowEnv": true})))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn dependencies_count_only_when_named() {
        assert!(!has_dependencies(
            &serde_json::json!({"npm": {}, "deno": {}})
        ));
        assert!(has_dependencies(
            &serde_json::json!({"npm": {"date-fns": "3"}})
        ));
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
