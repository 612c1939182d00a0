//! Agent cards (`GET /.well-known/agent-card.json`, `GET /agents/{name}/.well-known/agent-card.json`):
//! built from the agents' manifests, signed by the host's attested signing key
//! (`hypervisor_protocol::a2a::card`), with an extension saying where the evidence for that
//! key is, so a client can check from the card alone which host it is talking to.
//!
//! A deployed agent is an A2A skill when it is public and a handler or CLI agent; an HTTP
//! agent serves its own A2A paths, if it speaks A2A at all.

use hypervisor_protocol::a2a::{
    ATTESTATION_EXTENSION, X402_EXTENSION, X402_EXTENSION_LEGACY, card,
};
use hypervisor_protocol::agents::AgentKind;
use serde_json::{Map, Value, json};

use crate::attestation::signer::AttestedKey;
use crate::error::ApiError;
use crate::pipeline::Pipeline;
use crate::storage::agents::AgentRecord;

/// The media types agents take and give.
const MODES: [&str; 2] = ["application/json", "text/plain"];

/// Whether `agent` is an A2A skill.
pub fn is_skill(agent: &AgentRecord) -> bool {
    agent.public && matches!(agent.latest.kind, AgentKind::Handler | AgentKind::Cli)
}

/// The skill of an agent.
fn skill(agent: &AgentRecord) -> Value {
    let tags = if agent.tags.is_empty() {
        vec![agent.latest.kind.as_str().to_string()]
    } else {
        agent.tags.clone()
    };
    let input = match agent.latest.kind {
        AgentKind::Handler => {
            "a data part is the handler's event; a text part is the event {\"text\": …}"
        }
        _ => "the text parts are the command's standard input",
    };
    let mut description = format!("{} (input: {input}", agent.description);
    match (&agent.price, &agent.tariff) {
        (Some(price), Some(tariff)) => {
            description.push_str(&format!("; price: {}", tariff.describe(price)));
        }
        (Some(price), None) => description.push_str(&format!(
            "; price: {price} atomic units per run, paid with x402"
        )),
        (None, _) => {}
    }
    description.push(')');
    json!({
        "id": agent.name,
        "name": agent.name,
        "description": description,
        "tags": tags,
        "inputModes": MODES,
        "outputModes": MODES,
    })
}

/// The `JSONRPC` interfaces at `url`: 1.0 first (preferred), then 0.3.
fn interfaces(url: &str) -> Value {
    json!([
        {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
        {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
    ])
}

/// The extensions: x402 (required when something is priced) and the attested key's evidence.
fn extensions(pipeline: &Pipeline, priced: bool) -> Value {
    let mut list = Vec::new();
    if let Some(key) = pipeline.attestor().current() {
        list.push(evidence(&key, pipeline.public_base()));
    }
    if priced {
        for uri in [X402_EXTENSION, X402_EXTENSION_LEGACY] {
            list.push(json!({
                "uri": uri,
                "description": "Priced skills are paid with x402 (standalone flow): the task \
                    asks for payment in input-required; the payment comes in the metadata of \
                    the next message on the task.",
                "required": true,
            }));
        }
    }
    Value::Array(list)
}

/// The extension naming the signing key and where its evidence is.
fn evidence(key: &AttestedKey, base: &str) -> Value {
    let attestation = key.attestation();
    let mut evidence = Map::new();
    evidence.insert("attestation".into(), json!(format!("{base}/attestation")));
    evidence.insert("keyId".into(), json!(card::key_id(&key.public)));
    evidence.insert("signingKey".into(), json!(key.public.to_hex()));
    evidence.insert("jwk".into(), card::jwk(&key.public));
    evidence.insert("tee".into(), json!(attestation.tee));
    evidence.insert(
        "evidenceSha256".into(),
        json!(hex::encode(key.evidence_sha256)),
    );
    let mut description = "The card is signed (ES256) by the host's attested signing key; \
        GET the attestation URL for the evidence binding that key to the TEE and the host's \
        measurement."
        .to_string();
    if attestation.simulated {
        evidence.insert("simulated".into(), json!(true));
        description.insert_str(
            0,
            "SIMULATED attestation: not evidence of any TEE, for development only. ",
        );
    }
    json!({
        "uri": ATTESTATION_EXTENSION,
        "description": description,
        "params": evidence,
    })
}

/// The fields every card shares.
fn base_card(
    pipeline: &Pipeline,
    name: &str,
    description: String,
    version: String,
    url: &str,
    skills: Vec<Value>,
    priced: bool,
) -> Result<Value, ApiError> {
    let base = pipeline.public_base();
    Ok(json!({
        "name": name,
        "description": description,
        "supportedInterfaces": interfaces(url),
        "provider": {"organization": "WASM Hypervisor", "url": base},
        "version": version,
        "capabilities": {
            "streaming": true,
            "extensions": extensions(pipeline, priced),
        },
        "securitySchemes": {
            "bearer": {"httpAuthSecurityScheme": {
                "scheme": "Bearer",
                "description": "Optional. Any secret the caller chooses: tasks are visible \
                    only to the credential that created them, and ListTasks needs one.",
            }},
        },
        "defaultInputModes": MODES,
        "defaultOutputModes": MODES,
        "skills": skills,
    }))
}

/// Signs `card` (when the host has an attested key) and adds the unsigned 0.3 fields.
fn signed(pipeline: &Pipeline, mut card: Value, url: &str) -> Result<Value, ApiError> {
    if let Some(key) = pipeline.attestor().current() {
        sign(&key, &mut card)?;
    }
    card["url"] = json!(url);
    card["protocolVersion"] = json!("0.3.0");
    card["preferredTransport"] = json!("JSONRPC");
    Ok(card)
}

fn sign(key: &AttestedKey, card: &mut Value) -> Result<(), ApiError> {
    let protected = card::protected_header(&key.public);
    let input = card::signing_input(&protected, card)
        .map_err(|e| ApiError::Internal(format!("agent card: {e}")))?;
    let signature = key
        .sign_card(&input)
        .map_err(|e| ApiError::Internal(format!("agent card: {e}")))?;
    card["signatures"] = json!([card::signature_entry(&protected, &signature)]);
    Ok(())
}

/// The card of one agent (a skill).
///
/// # Errors
/// [`ApiError::Internal`] if signing fails.
pub fn agent_card(pipeline: &Pipeline, agent: &AgentRecord) -> Result<Value, ApiError> {
    let url = format!("{}/agents/{}/a2a", pipeline.public_base(), agent.name);
    let card = base_card(
        pipeline,
        &agent.name,
        agent.description.clone(),
        agent.latest.version.to_string(),
        &url,
        vec![skill(agent)],
        agent.price.is_some(),
    )?;
    signed(pipeline, card, &url)
}

/// The host's card: every skill.
///
/// # Errors
/// [`ApiError::Internal`] if signing fails.
pub fn host_card(pipeline: &Pipeline, agents: &[AgentRecord]) -> Result<Value, ApiError> {
    let url = format!("{}/a2a", pipeline.public_base());
    let skills: Vec<&AgentRecord> = agents.iter().filter(|a| is_skill(a)).collect();
    let card = base_card(
        pipeline,
        "WASM Hypervisor",
        "Agents deployed on a WASM Hypervisor host: WebAssembly components, each run in a \
         fresh sandbox inside a confidential VM. Name the skill in the message's metadata \
         (\"skill\": its id) at this interface, or use the skill's own card at \
         /agents/{id}/.well-known/agent-card.json."
            .into(),
        env!("CARGO_PKG_VERSION").into(),
        &url,
        skills.iter().map(|a| skill(a)).collect(),
        skills.iter().any(|a| a.price.is_some()),
    )?;
    signed(pipeline, card, &url)
}
