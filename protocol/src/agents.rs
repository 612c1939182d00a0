//! Agents on the wire: deployment, search, invocation (`docs/PROTOCOL.md` §17). The owner's
//! signatures that prove deployments and every other owner operation are in [`crate::owner`]
//! (re-exported here).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::owner::{
    MAX_OWNER_SEQUENCE, OWNER_KEY_HEADER, OWNER_SEQUENCE_HEADER, OWNER_SIGNATURE_HEADER,
    OWNER_SIGNATURE_WINDOW_SECONDS, OWNER_SIGNED_AT_HEADER, OwnerAction, OwnerStatement,
};
use crate::wire::Limits;

/// When a paid agent's run is charged. On the wire: `"success"` or `"always"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChargeRule {
    /// Only a run that succeeded, as the x402 server middlewares charge: an HTTP agent's
    /// response with a status below 400; an invocation whose handler returned a value, or
    /// whose command exited with code 0. Otherwise the payment is released and may pay for
    /// another request.
    #[default]
    Success,
    /// Every run that gave an answer, failures included.
    Always,
}

impl ChargeRule {
    /// `success` or `always`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Always => "always",
        }
    }

    /// Whether a run is charged under this rule, given whether it succeeded.
    pub fn charges(self, succeeded: bool) -> bool {
        self == Self::Always || succeeded
    }

    /// What a payment challenge says about it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Success => "charged only if the run succeeds",
            Self::Always => "charged for every run, failures included",
        }
    }
}

impl std::str::FromStr for ChargeRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "success" => Ok(Self::Success),
            "always" => Ok(Self::Always),
            other => Err(format!("unknown charge rule {other:?}")),
        }
    }
}

/// What a deployed agent is, read from its component's exports at deployment (`handler` is
/// preferred over `http`, `http` over `cli` when a component exports several). On the wire:
/// `"cli"`, `"http"` or `"handler"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    /// Exports `wasi:cli/run`: invoked with arguments and stdin.
    Cli,
    /// Exports `wasi:http/incoming-handler` (the `wasi:http/proxy` world): serves the requests
    /// under `/agents/{name}/`.
    Http,
    /// Exports `hypervisor:host/handler` (the `handler-agent` world): invoked with an event.
    Handler,
}

/// The contract a RISC-V program is recognised by, where a component names its WIT world
/// (an agent's `world`): a CLI agent on PolkaVM with the host-call ABI of
/// `docs/PROTOCOL.md` §6d.
pub const RISCV_WORLD: &str = "hypervisor:riscv/command";

impl AgentKind {
    /// `cli`, `http` or `handler`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Http => "http",
            Self::Handler => "handler",
        }
    }

    /// The WIT world the component was recognised by.
    pub fn world(self) -> &'static str {
        match self {
            Self::Cli => "wasi:cli/command",
            Self::Http => "wasi:http/proxy",
            Self::Handler => "hypervisor:host/handler-agent",
        }
    }
}

impl std::str::FromStr for AgentKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cli" => Ok(Self::Cli),
            "http" => Ok(Self::Http),
            "handler" => Ok(Self::Handler),
            other => Err(format!("unknown agent kind {other:?}")),
        }
    }
}

impl std::fmt::Display for AgentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The detail of a deployment's owner signature: the component's SHA-256 (lowercase hex, of
/// the plaintext for a sealed component) and the settings of `req` as sent, one per line:
///
/// ```text
/// <component_sha256_hex>
/// public=<true|false|->
/// price=<price|->
/// ttl_seconds=<decimal|->
/// limits=<time_ms|->,<memory_bytes|->,<fuel|->
/// charge=<success|always>        (only when `charge` is sent)
/// tariff=<fixed>,<per_million_fuel>,<per_ms>,<per_kib_out>
///                                (only when `tariff` is sent: [`crate::tariff::Tariff::detail`])
/// agents=… origins=… search=… callers=…   (four lines, only when `grants` is sent:
///                                         [`crate::grants::Grants::detail`])
/// schemas=<hex>                  (only when `schemas` is sent: [`ToolSchemas::digest`])
/// ```
///
/// `-` stands for a field absent from the request (`limits=-,-,-` when `limits` is absent);
/// numbers are in decimal without leading zeros, `price` is the string sent (the host refuses a
/// price that is not decimal digits before it checks the signature). `description` and `tags`
/// are not covered (`docs/PROTOCOL.md` §17).
pub fn deploy_detail(component_sha256_hex: &str, req: &DeployRequest) -> String {
    fn or_dash<T: std::fmt::Display>(v: Option<T>) -> String {
        v.map_or_else(|| "-".to_string(), |v| v.to_string())
    }
    let limits = req.limits.unwrap_or_default();
    let mut detail = format!(
        "{component_sha256_hex}\npublic={}\nprice={}\nttl_seconds={}\nlimits={},{},{}",
        or_dash(req.public),
        or_dash(req.price.as_deref()),
        or_dash(req.ttl_seconds),
        or_dash(limits.time_ms),
        or_dash(limits.memory_bytes),
        or_dash(limits.fuel),
    );
    // Only when sent: deployments signed before `charge` existed keep their detail.
    if let Some(charge) = req.charge {
        detail.push_str("\ncharge=");
        detail.push_str(charge.as_str());
    }
    // Only when sent: a metered agent's rates (its maximum is `price`).
    if let Some(tariff) = &req.tariff {
        detail.push_str("\ntariff=");
        detail.push_str(&tariff.detail());
    }
    // Only when sent: the four lines of `Grants::detail`.
    if let Some(grants) = &req.grants {
        detail.push('\n');
        detail.push_str(&grants.detail());
    }
    // Only when sent, after everything else: the schemas' digest (a request whose schemas
    // cannot be canonicalised is refused before its signature is checked).
    if let Some(schemas) = &req.schemas {
        detail.push_str("\nschemas=");
        detail.push_str(&schemas.digest().unwrap_or_default());
    }
    detail
}

/// The largest schema a deployment may declare ([`ToolSchemas`]), bytes of canonical JSON.
pub const MAX_SCHEMA_BYTES: usize = 64 << 10;

/// What a handler agent takes and gives, as JSON Schemas: the event (its MCP tool's
/// `inputSchema`) and the result (`outputSchema`). Each must be an object schema
/// (`"type": "object"`), as MCP requires of both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSchemas {
    /// The event's schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
    /// The result's schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
}

impl ToolSchemas {
    /// The RFC 8785 (JCS) canonical JSON of the schemas, as signed.
    ///
    /// # Errors
    /// A value JCS cannot represent.
    pub fn canonical(&self) -> Result<Vec<u8>, String> {
        serde_json_canonicalizer::to_vec(self).map_err(|e| e.to_string())
    }

    /// What the owner signs for them (the `schemas=` line of [`deploy_detail`]): the SHA-256
    /// (lowercase hex) of [`Self::canonical`].
    ///
    /// # Errors
    /// As [`Self::canonical`].
    pub fn digest(&self) -> Result<String, String> {
        Ok(hex::encode(crate::sha256(&self.canonical()?)))
    }

    /// Checks each schema: a JSON object whose `type` is `"object"`, the two together at most
    /// [`MAX_SCHEMA_BYTES`] of canonical JSON.
    ///
    /// # Errors
    /// What is wrong, for a `400 invalid_request`.
    pub fn check(&self) -> Result<(), String> {
        for (what, schema) in [("input", &self.input), ("output", &self.output)] {
            let Some(schema) = schema else { continue };
            if schema.get("type").and_then(|t| t.as_str()) != Some("object") {
                return Err(format!(
                    "schemas.{what} must be a JSON Schema object with \"type\": \"object\" \
                     (MCP's inputSchema and outputSchema are object schemas)"
                ));
            }
        }
        let size = self.canonical()?.len();
        if size > MAX_SCHEMA_BYTES {
            return Err(format!(
                "schemas are {size} bytes of canonical JSON, more than {MAX_SCHEMA_BYTES}"
            ));
        }
        Ok(())
    }
}

/// The most modules a JavaScript agent may have.
pub const MAX_JS_MODULES: usize = 64;

/// A JavaScript or TypeScript agent's source: the modules map and the module to run first
/// (whose exported `handler` is called). Module names are `/`-separated paths (`main.ts`,
/// `lib/util.js`); `.ts` modules are stripped of their types by the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsSource {
    /// The module evaluated first; it exports `handler`.
    pub main: String,
    /// Every module by name.
    pub modules: std::collections::BTreeMap<String, String>,
    /// The engine that sets the modules up and runs them (absent: [`JsEngine::Boa`]).
    #[serde(default, skip_serializing_if = "JsEngine::is_default")]
    pub engine: JsEngine,
}

/// The JavaScript engine of a JavaScript agent (docs/JAVASCRIPT.md, "Engines").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JsEngine {
    /// The host's own runtime (`components/js-runtime`, Boa): the web platform of
    /// docs/JAVASCRIPT.md, small snapshots, slower on CPU-bound code.
    #[default]
    Boa,
    /// StarlingMonkey (SpiderMonkey), set up inside the host from the same source: about an
    /// order of magnitude faster on CPU-bound code, larger agents, its own web platform.
    StarlingMonkey,
}

impl JsEngine {
    /// Whether this is the default engine (left out of the JSON).
    pub fn is_default(&self) -> bool {
        *self == Self::Boa
    }

    /// Its name in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Boa => "boa",
            Self::StarlingMonkey => "starlingmonkey",
        }
    }
}

impl JsSource {
    /// What the owner signs in place of a component's SHA-256 (the first line of
    /// [`deploy_detail`]): the SHA-256 of `label || 0x00 || u32be(len main) || main ||
    /// u32be(number of modules) || for each module in byte order of its name: u32be(len name)
    /// || name || u64be(len source) || source` (UTF-8), where `label` is
    /// `"wasm-hypervisor/v1/js-source"`, or `"wasm-hypervisor/v1/js-source/starlingmonkey"`
    /// for [`JsEngine::StarlingMonkey`]: the engine is signed with the source.
    pub fn sha256(&self) -> [u8; 32] {
        let mut data = Vec::new();
        data.extend_from_slice(match self.engine {
            JsEngine::Boa => b"wasm-hypervisor/v1/js-source\0".as_slice(),
            JsEngine::StarlingMonkey => b"wasm-hypervisor/v1/js-source/starlingmonkey\0",
        });
        let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes();
        data.extend_from_slice(&len32(self.main.len()));
        data.extend_from_slice(self.main.as_bytes());
        data.extend_from_slice(&len32(self.modules.len()));
        for (name, source) in &self.modules {
            data.extend_from_slice(&len32(name.len()));
            data.extend_from_slice(name.as_bytes());
            data.extend_from_slice(&(source.len() as u64).to_be_bytes());
            data.extend_from_slice(source.as_bytes());
        }
        crate::sha256(&data)
    }
}

/// The most tags a deployment may have.
pub const MAX_TAGS: usize = 32;

/// A handler's event when none is given: the JSON `null` (PROTOCOL §17). A clear invocation
/// without `event` and a sealed one whose event plaintext is empty both give the handler
/// this, and a sealed invocation's commitment binds its SHA-256.
pub const NO_EVENT: &[u8] = b"null";

/// The event a handler gets for a sealed event's `plaintext`: [`NO_EVENT`] when it is empty.
pub fn handler_event(plaintext: &[u8]) -> &[u8] {
    if plaintext.is_empty() {
        NO_EVENT
    } else {
        plaintext
    }
}

/// The largest amount an x402 `exact` EVM payment can carry (an EIP-3009 `value`, uint256),
/// in decimal: 2^256 - 1.
pub const MAX_PRICE: &str =
    "115792089237316195423570985008687907853269984665640564039457584007913129639935";

/// Whether `price` is a valid agent price: a positive decimal integer of atomic units, without
/// sign or leading zeros, at most [`MAX_PRICE`].
pub fn valid_price(price: &str) -> bool {
    !price.is_empty()
        && price.bytes().all(|b| b.is_ascii_digit())
        && !price.starts_with('0')
        && (price.len() < MAX_PRICE.len() || (price.len() == MAX_PRICE.len() && price <= MAX_PRICE))
}

/// Whether `name` is a valid agent name: 1–64 characters of `a-z`, `0-9` and `-`, starting
/// with a letter or digit.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

/// `POST /agent/deploy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// Agent name (see [`valid_name`]); redeploying a name makes a new version.
    pub name: String,
    /// What it does (searched; not covered by the owner signature).
    #[serde(default)]
    pub description: String,
    /// Tags (searched; not covered by the owner signature): at most [`MAX_TAGS`].
    #[serde(default, deserialize_with = "crate::bounded::vec::<_, _, MAX_TAGS>")]
    pub tags: Vec<String>,
    /// The owner's P-256 public key (SEC1, hex). For an encrypted deployment, also the key of
    /// the session the component is sealed to.
    pub public_key: String,
    /// The component in the clear, standard base64 (public agents). Exactly one of this and
    /// `encrypted_component` is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The component sealed to a session (envelope, role agent-component, hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_component: Option<String>,
    /// The kind of `component` or `encrypted_component`, if the owner says (absent: recognised
    /// by its first bytes). A RISC-V ELF file deploys as a CLI agent. Not signed: a check only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_kind: Option<crate::wire::ProgramKind>,
    /// A JavaScript or TypeScript agent's source instead of a component: its modules, run by
    /// the host's JavaScript runtime (`docs/PROTOCOL.md` §24). Exactly one of this,
    /// `component` and `encrypted_component`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub js: Option<JsSource>,
    /// `js` sealed to the owner's session (hex envelope, role agent-js: the JSON of the
    /// [`JsSource`]): a private JavaScript agent whose source nobody on the way reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_js: Option<String>,
    /// The session of `encrypted_component` or `encrypted_js` (default: the newest of
    /// `public_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    /// Whether anyone may invoke it in the clear. Default: true for a clear deployment, false
    /// for an encrypted one (then invocations must be encrypted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    /// Default limits of its invocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Price per invocation in the payment asset's atomic units (x402), if paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// Remove the agent this long after this deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// When a paid agent's run is charged (signed, see [`deploy_detail`]): by default
    /// ([`ChargeRule::Success`]) only a run that succeeded, as the x402 server middlewares do;
    /// [`ChargeRule::Always`] charges every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge: Option<ChargeRule>,
    /// A metered agent's tariff (x402 `upto`, signed: [`deploy_detail`]): a run is charged by
    /// what the host measured of it, at most `price`, which a tariff requires. Handler and CLI
    /// agents only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tariff: Option<crate::tariff::Tariff>,
    /// The media type an HTTP agent answers with, declared in its payment challenges
    /// (`mimeType`); not signed. Default: `application/octet-stream` for HTTP agents (handler
    /// and CLI agents answer JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// What the agent may reach and who may call it (signed: [`deploy_detail`]). Absent: no
    /// egress at all, and any agent granted this one may call it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<crate::grants::Grants>,
    /// A handler agent's input and output as JSON Schemas (its MCP tool's `inputSchema` and
    /// `outputSchema`), signed ([`deploy_detail`]). Absent: the tool takes any object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schemas: Option<ToolSchemas>,
    /// Owner signature over `(deploy, name, deploy_detail)` ([`deploy_detail`]: the SHA-256 of
    /// the component's plaintext and `public`, `price`, `ttl_seconds`, `limits` as sent),
    /// required for every deployment, clear or encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Its signing time, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<u64>,
    /// Its sequence number ([`OwnerStatement::sequence`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
}

/// A field whose value is any JSON, kept as sent: present means `Some`, `null` included (the
/// value null, not an absent field).
fn any_json<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Box<serde_json::value::RawValue>>, D::Error> {
    <Box<serde_json::value::RawValue> as Deserialize>::deserialize(d).map(Some)
}

/// `POST /search`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Free text; words are matched against name, description and tags. Also accepted as
    /// `description` ("search for agents by description"); sending both is an error.
    #[serde(alias = "description")]
    pub query: String,
    /// Most results (default 10, at most 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `POST /agents/{name}/invoke` (handler and CLI agents).
///
/// Clear (public agents): `event` for handlers, `args` / `stdin` for CLI agents. Encrypted:
/// `encrypted_event` (handler; envelope role event) or `encrypted_arguments` /
/// `encrypted_stdin` (CLI), with `public_key` and optionally `session_id`; the answer is then an
/// encrypted result as for executions, its commitment binding the agent's code hash as the
/// program.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokeRequest {
    /// Handler event in the clear (any JSON), kept as the text sent: the handler receives it
    /// as is, and parsing a large event costs no more memory than its text.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "any_json"
    )]
    pub event: Option<Box<serde_json::value::RawValue>>,
    /// CLI arguments in the clear (`argv[0]` is the agent's name).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::bounded::option_vec::<_, _, { crate::bounded::MAX_ARGUMENTS }>"
    )]
    pub args: Option<Vec<String>>,
    /// CLI standard input in the clear (UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// Handler event sealed to a session (role event, hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_event: Option<String>,
    /// CLI arguments sealed to a session (role argument i, hex).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::bounded::option_vec::<_, _, { crate::bounded::MAX_ARGUMENTS }>"
    )]
    pub encrypted_arguments: Option<Vec<String>>,
    /// CLI standard input sealed to a session (role stdin, hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_stdin: Option<String>,
    /// The caller's key (hex): required for encrypted invocations, optional otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The session (default: the newest of `public_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    /// Limits asked for (default: the agent's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

/// The answer to a clear invocation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvokeResponse {
    /// The execution's id (`GET /executions/{id}`).
    pub execution_id: String,
    /// Agent name.
    pub agent: String,
    /// Agent version that ran.
    pub version: u32,
    /// How it ended (`exited`, `time_limit_exceeded`, …).
    pub status: crate::wire::ExitStatus,
    /// Whether the handler returned a result (not an error) or the command exited 0.
    pub ok: bool,
    /// Handler: the result, as JSON when it parses as JSON (the text the handler returned,
    /// kept as is), else as a string. [`InvokeResponse::result_json`] parses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<serde_json::value::RawValue>>,
    /// Handler: the error it returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<HandlerFailure>,
    /// CLI: the exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// CLI: standard output (UTF-8, lossy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// Standard error (UTF-8, lossy).
    pub stderr: String,
    /// Instantiation plus run, microseconds.
    pub duration_us: u64,
    /// A key-value write the host refused while the agent ran (a quota), whatever the agent
    /// made of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_error: Option<crate::state::StateRefusal>,
}

impl InvokeResponse {
    /// The handler's result, parsed (`None` without one).
    pub fn result_json(&self) -> Option<serde_json::Value> {
        self.result
            .as_ref()
            .and_then(|r| serde_json::from_str(r.get()).ok())
    }
}

/// A handler's error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HandlerFailure {
    /// The handler's code.
    pub code: String,
    /// Its message.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_messages() {
        assert!(valid_name("arxiv") && valid_name("text-stats-2") && valid_name("0x"));
        assert!(!valid_name("") && !valid_name("-x") && !valid_name("Upper") && !valid_name("a/b"));
        assert!(!valid_name(&"a".repeat(65)));
        let delete = OwnerStatement {
            audience: "00ff",
            action: OwnerAction::Delete,
            name: "arxiv",
            signed_at: 1_700_000_000,
            sequence: 1_700_000_000_000_001,
            detail: "",
        };
        assert_eq!(
            delete.message(),
            b"wasm-hypervisor/v2/agent-owner\n00ff\ndelete\narxiv\n1700000000\n\
              1700000000000001\n"
                .to_vec()
        );
    }

    #[test]
    fn prices_are_positive_canonical_and_fit_in_uint256() {
        for ok in ["1", "10000", MAX_PRICE] {
            assert!(valid_price(ok), "{ok}");
        }
        let above =
            "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        for bad in ["", "0", "007", "-1", "1.5", " 1", above, &"9".repeat(79)] {
            assert!(!valid_price(bad), "{bad:?}");
        }
    }

    fn sample() -> DeployRequest {
        DeployRequest {
            name: "text-stats".into(),
            description: "word counts".into(),
            tags: vec!["text".into()],
            public_key: "04ab".into(),
            component: None,
            encrypted_component: Some("00".into()),
            program_kind: None,
            js: None,
            encrypted_js: None,
            session_id: None,
            public: Some(false),
            limits: Some(Limits {
                time_ms: Some(2000),
                memory_bytes: None,
                fuel: Some(1_000_000),
            }),
            price: Some("10000".into()),
            ttl_seconds: Some(3600),
            charge: None,
            tariff: None,
            content_type: None,
            grants: None,
            schemas: None,
            signature: None,
            signed_at: None,
            sequence: None,
        }
    }

    #[test]
    fn deploy_detail_is_the_settings_as_sent() {
        let code = "723cee09a5bb017ecef93a8884b32f20afde645eda304121002de0b9ffb32c69";
        assert_eq!(
            deploy_detail(code, &sample()),
            "723cee09a5bb017ecef93a8884b32f20afde645eda304121002de0b9ffb32c69\n\
             public=false\nprice=10000\nttl_seconds=3600\nlimits=2000,-,1000000"
        );
        // `charge` adds a line only when sent; `content_type` is not signed.
        let always = DeployRequest {
            charge: Some(ChargeRule::Always),
            tariff: None,
            content_type: Some("text/plain".into()),
            ..sample()
        };
        assert_eq!(
            deploy_detail("ab", &always),
            "ab\npublic=false\nprice=10000\nttl_seconds=3600\nlimits=2000,-,1000000\ncharge=always"
        );
        // `tariff` adds its line after `charge`, only when sent.
        let metered = DeployRequest {
            tariff: Some(crate::tariff::Tariff {
                fixed: "100".into(),
                per_million_fuel: "7".into(),
                per_ms: "0".into(),
                per_kib_out: "3".into(),
            }),
            ..always
        };
        assert_eq!(
            deploy_detail("ab", &metered),
            "ab\npublic=false\nprice=10000\nttl_seconds=3600\nlimits=2000,-,1000000\n\
             charge=always\ntariff=100,7,0,3"
        );
        assert_eq!(
            serde_json::from_str::<DeployRequest>(
                r#"{"name":"a","public_key":"04","charge":"success"}"#
            )
            .unwrap()
            .charge,
            Some(ChargeRule::Success)
        );
        let detail = deploy_detail("ab", &sample());
        let deploy = OwnerStatement {
            audience: "00ff",
            action: OwnerAction::Deploy,
            name: "text-stats",
            signed_at: 1_700_000_000,
            sequence: 7,
            detail: &detail,
        };
        assert_eq!(
            deploy.message(),
            b"wasm-hypervisor/v2/agent-owner\n00ff\ndeploy\ntext-stats\n1700000000\n7\n\
              ab\npublic=false\nprice=10000\nttl_seconds=3600\nlimits=2000,-,1000000"
                .to_vec()
        );
        // Nothing set: every setting absent.
        let bare = DeployRequest {
            public: None,
            limits: None,
            price: None,
            ttl_seconds: None,
            ..sample()
        };
        assert_eq!(
            deploy_detail("ab", &bare),
            "ab\npublic=-\nprice=-\nttl_seconds=-\nlimits=-,-,-"
        );
        // The request as JSON gives the same text (absent fields are `-`).
        let parsed: DeployRequest = serde_json::from_str(
            r#"{"name": "text-stats", "public_key": "04ab", "public": true,
                "limits": {"memory_bytes": 65536}, "price": "7"}"#,
        )
        .unwrap();
        assert_eq!(
            deploy_detail("ab", &parsed),
            "ab\npublic=true\nprice=7\nttl_seconds=-\nlimits=-,65536,-"
        );
    }

    #[test]
    fn every_covered_setting_changes_the_deploy_detail() {
        let base = sample();
        let detail = deploy_detail("ab", &base);
        let limits = base.limits.unwrap();
        let changed: Vec<DeployRequest> = vec![
            DeployRequest {
                public: Some(true),
                ..sample()
            },
            DeployRequest {
                public: None,
                ..sample()
            },
            DeployRequest {
                price: Some("10001".into()),
                ..sample()
            },
            DeployRequest {
                price: None,
                ..sample()
            },
            DeployRequest {
                ttl_seconds: Some(3601),
                ..sample()
            },
            DeployRequest {
                ttl_seconds: None,
                ..sample()
            },
            DeployRequest {
                limits: None,
                ..sample()
            },
            DeployRequest {
                limits: Some(Limits {
                    time_ms: Some(2001),
                    ..limits
                }),
                ..sample()
            },
            DeployRequest {
                limits: Some(Limits {
                    memory_bytes: Some(1 << 20),
                    ..limits
                }),
                ..sample()
            },
            DeployRequest {
                limits: Some(Limits {
                    fuel: None,
                    ..limits
                }),
                ..sample()
            },
        ];
        for other in &changed {
            assert_ne!(deploy_detail("ab", other), detail, "{other:?}");
        }
        assert_ne!(deploy_detail("cd", &base), detail);
        // Search metadata and transport fields are not covered.
        let metadata = DeployRequest {
            description: "other".into(),
            tags: Vec::new(),
            signature: Some("00".into()),
            signed_at: Some(1),
            sequence: Some(1),
            ..sample()
        };
        assert_eq!(deploy_detail("ab", &metadata), detail);
    }
}
