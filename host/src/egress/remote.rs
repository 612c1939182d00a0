//! Calls to agents on other hypervisors (`docs/PROTOCOL.md` §18, "Remote hypervisors"): the
//! host acts as a client of the remote host with the ordinary session protocol. Before anything
//! of the caller's is sent it opens a verifiable session and checks the remote's attestation
//! (the evidence chain, the attested key's signature over the session, and its platform
//! measurements against the grant's reference value sets, with the event log replayed;
//! simulated evidence only where the grant allows it; a grant in the old form, naming only
//! host-binary measurements, is refused with `remote_grant_outdated` before anything is sent);
//! then it seals the event to that session, sends the invocation, and checks the signed
//! receipt and the commitment of what comes back. A remote that fails any check gets nothing
//! more: no event, no payment.
//!
//! The guest sends `POST <origin>/agents/NAME/invoke` with `{"event": …}` in the clear, as to
//! a local agent; it gets back `{"agent", "ok", "result" | "error", "receipt", "attested",
//! "settlement"}`. A priced remote agent's 402 is paid from the calling agent's wallet exactly
//! as a local one's ([`super::pay::authorize`]).
//! The client library (`hypervisor-client`, blocking HTTP) does the protocol work, on a
//! blocking thread.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use std::sync::Arc;

use hypervisor_client::verify::Policy;
use hypervisor_client::x402::{Offer, PaymentRefusal};
use hypervisor_client::{Client, ClientError};
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::valid_name;
use hypervisor_protocol::grants::HypervisorGrant;
use serde_json::{Value, json};
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use super::Shared;
use super::pay::{Decision, authorize};
use super::response::{full, internal, refusal};
use crate::error::ApiError;
use crate::pipeline::call::RunContext;
use crate::storage::wallets::Wallets;

/// The largest event sent to a remote agent.
const MAX_EVENT_BYTES: usize = 1 << 20;

/// The agent name of a remote invocation path (`/agents/NAME/invoke`).
fn remote_agent(path: &str) -> Option<&str> {
    let name = path.strip_prefix("/agents/")?.strip_suffix("/invoke")?;
    valid_name(name).then_some(name)
}

/// Calls the remote hypervisor of `grant` with the guest's `request` (buffered), or refuses.
pub(super) async fn call(
    shared: &Shared,
    run: &RunContext,
    grant: &HypervisorGrant,
    request: Request<Bytes>,
) -> Result<Response<WasiBody>, HttpError> {
    let Some(name) = remote_agent(request.uri().path()).map(str::to_string) else {
        return Ok(refusal(ApiError::InvalidRequest(
            "a remote hypervisor is called at POST /agents/NAME/invoke".into(),
        )));
    };
    if request.method() != http::Method::POST || request.body().len() > MAX_EVENT_BYTES {
        return Ok(refusal(ApiError::InvalidRequest(
            "a remote invocation is a POST with a JSON body of at most 1 MiB".into(),
        )));
    }
    let event = match serde_json::from_slice::<Value>(request.body()) {
        Ok(body) => body.get("event").cloned().unwrap_or(Value::Null),
        Err(e) => return Ok(refusal(ApiError::MalformedJson(e.to_string()))),
    };
    let grant = grant.clone();
    // Where the remote's evidence is checked against: the host's verification sources.
    let sources = (
        shared.config.pccs_url.clone(),
        shared.config.snp_kds_url.clone(),
    );
    let payer = Payer {
        wallets: shared.agents.wallets.clone(),
        agent: run.agent.name.clone(),
        execution: run.execution_id.clone(),
        spend: None,
    };
    let answer = tokio::task::spawn_blocking(move || invoke(&grant, sources, &name, &event, payer))
        .await
        .map_err(internal)?;
    let (status, body) = match answer {
        Ok(body) => (StatusCode::OK, body),
        Err(refused) => return Ok(refusal(refused)),
    };
    let mut response = Response::new(full(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Pays a priced remote agent from the calling agent's wallet (`super::pay::authorize`).
struct Payer {
    wallets: Arc<Wallets>,
    agent: String,
    execution: String,
    spend: Option<i64>,
}

impl Payer {
    fn pay(&mut self, callee: &str, offer: &Offer) -> Result<(&'static str, String), ClientError> {
        let refused = |why: String| ClientError::PaymentRefused(PaymentRefusal::NotAllowed(why));
        match authorize(&self.wallets, &self.agent, &self.execution, callee, offer) {
            Ok(Decision::Signed { header, spend }) => {
                self.spend = Some(spend);
                Ok(header)
            }
            Ok(Decision::NoWallet) => Err(refused("the agent has no wallet".into())),
            Ok(Decision::Refused(why)) => Err(refused(why)),
            Err(e) => Err(ClientError::BadResponse(e.to_string())),
        }
    }
}

/// The blocking protocol work: attest, then invoke sealed (paying from the wallet if the agent
/// is priced), then check.
fn invoke(
    grant: &HypervisorGrant,
    (pccs_url, snp_kds_url): (Option<String>, Option<String>),
    name: &str,
    event: &Value,
    mut payer: Payer,
) -> Result<Value, ApiError> {
    let failed = |why: String| ApiError::RemoteNotAttested(format!("{}: {why}", grant.origin));
    if grant.reference_values.is_empty() {
        return Err(ApiError::RemoteGrantOutdated(format!(
            "the grant of {} names only host-binary measurements, which the remote writes \
             itself and which prove nothing about what it runs; nothing was sent. Its owner \
             must name reference value sets (`reference_values`, docs/PROTOCOL.md §12b) with \
             PUT /agents/NAME/grants",
            grant.origin
        )));
    }
    let key = ClientSecret::generate().map_err(|e| ApiError::Internal(e.to_string()))?;
    // The grant names the platforms accepted: the evidence must match one of its sets.
    let policy = Policy {
        allow_simulated: grant.allow_simulated,
        reference_values: grant.reference_values.clone(),
        pccs_url,
        snp_kds_url,
        ..Policy::default()
    };
    // An https origin: every connection is bound to the remote's attested key before anything
    // is sent on it (a proxy terminating TLS in front of the remote fails it); the network is
    // not trusted. Plain http (loopback, `egress.allow_loopback_http`) has no channel to bind.
    let client = Client::with_channel_binding(&grant.origin, policy.clone());
    // Only our fresh public key leaves before the remote is verified.
    let session = client
        .create_verifiable_session(&key, &policy)
        .map_err(|e| failed(e.to_string()))?;
    let verified = session
        .verified
        .as_ref()
        .map(|(_, k)| k.clone())
        .ok_or_else(|| failed("no verified key".into()))?;
    let measurement = hex::encode(verified.host_measurement);
    let agent = client
        .get_json(&format!("/agents/{name}"))
        .map_err(|e| ApiError::AgentFailed(format!("remote agent {name}: {e}")))?;
    let code_hash = agent["latest"]["code_hash"]
        .as_str()
        .ok_or_else(|| ApiError::AgentFailed(format!("remote agent {name} has no code hash")))?;
    let event = serde_json::to_vec(event).map_err(|e| ApiError::Internal(e.to_string()))?;
    // The client checks the receipt's signature by the attested key, that it names this
    // session and these inputs, and the commitment of the decrypted result.
    let callee = format!("{}/agents/{name}", grant.origin);
    let run = client.invoke_sealed_paying(&session, name, code_hash, &event, &mut |offer| {
        payer.pay(&callee, offer)
    });
    if let Some(spend) = payer.spend {
        let tx = run
            .as_ref()
            .ok()
            .and_then(|r| r.settlement.as_ref())
            .and_then(|s| s["transaction"].as_str());
        let state = if tx.is_some() { "settled" } else { "unsettled" };
        if let Err(e) = payer.wallets.update(spend, state, None, tx) {
            tracing::error!(error = %e, "cannot record a spend's outcome");
        }
    }
    let run = run.map_err(|e| match e {
        ClientError::PaymentRefused(why) => ApiError::SpendingRefused(why.to_string()),
        e => ApiError::AgentFailed(format!("remote agent {name}: {e}")),
    })?;
    let stdout = run
        .stdout()
        .map_err(|e| ApiError::AgentFailed(e.to_string()))?;
    let mut answer = json!({
        "agent": name,
        "settlement": run.settlement,
        "ok": run.result.exception.is_none() && run.stopped.is_none(),
        "receipt": run.receipt,
        "attested": {
            "tee": verified.tee,
            "simulated": verified.simulated,
            "host_measurement": measurement,
            "reference": verified.reference,
        },
    });
    match &run.result.exception {
        Some(e) => answer["error"] = json!({"code": e.kind, "message": e.message}),
        None => {
            answer["result"] = serde_json::from_slice(&stdout)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&stdout).into_owned()));
        }
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_invocation_path_reaches_a_remote_agent() {
        assert_eq!(remote_agent("/agents/seller/invoke"), Some("seller"));
        assert_eq!(remote_agent("/agents/seller/other"), None);
        assert_eq!(remote_agent("/agents/Bad/invoke"), None);
        assert_eq!(remote_agent("/encrypt/create_keypair"), None);
    }
}
