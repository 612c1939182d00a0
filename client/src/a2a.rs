//! The host's A2A front (`docs/PROTOCOL.md` §21) from the client, in A2A 1.0: cards (with
//! their signature checked against the host's verified signing key), messages (paid with the
//! x402 extension when the agent asks), tasks, and the receipt a task carries.

use hypervisor_protocol::a2a::{X402_EXTENSION, card, x402 as keys};
use hypervisor_protocol::{sha256, wire::Receipt};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::verify::{VerifiedKey, VerifyError, verify_receipt};
use crate::x402::{Offer, Payer};
use crate::{Client, ClientError};

/// Who the client is to the A2A front: a bearer secret (tasks are visible only to the secret
/// that created them), or anonymous.
#[derive(Debug, Clone, Default)]
pub struct Caller(pub Option<String>);

/// What a message carries.
#[derive(Debug, Clone)]
pub enum Content {
    /// A text part (a handler's event `{"text": …}`, a CLI agent's stdin).
    Text(String),
    /// A data part (a handler's event).
    Data(Value),
}

fn endpoint(agent: &str) -> String {
    format!("/agents/{agent}/a2a")
}

impl Client {
    /// An agent's card (`/agents/{agent}/.well-known/agent-card.json`), or the host's.
    ///
    /// # Errors
    /// Transport errors, or a status other than 200.
    pub fn a2a_card(&self, agent: Option<&str>) -> Result<Value, ClientError> {
        let path = match agent {
            Some(a) => format!("/agents/{a}/.well-known/agent-card.json"),
            None => "/.well-known/agent-card.json".into(),
        };
        self.get_json(&path)
    }

    /// One A2A 1.0 JSON-RPC call: its `result`.
    fn a2a(
        &self,
        agent: &str,
        caller: &Caller,
        method: &str,
        params: Value,
        extensions: bool,
    ) -> Result<Value, ClientError> {
        let mut headers = vec![("a2a-version", "1.0".to_owned())];
        if let Some(secret) = &caller.0 {
            headers.push(("authorization", format!("Bearer {secret}")));
        }
        if extensions {
            headers.push(("a2a-extensions", X402_EXTENSION.to_owned()));
        }
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let (status, _, answer) = self.post_json_with(&endpoint(agent), &request, &headers)?;
        crate::mcp::rpc_result(method, status, answer)
    }

    /// `SendMessage`: runs `agent` on `content` and returns the task when it ends. A priced
    /// agent's task waits for payment: with `payer`, the client pays it (within the payer's
    /// limit) on the same task; without, the task is returned as it waits.
    ///
    /// # Errors
    /// Transport errors, A2A errors, a payment outside the limit ([`ClientError::PaymentRefused`]).
    pub fn a2a_send(
        &self,
        agent: &str,
        caller: &Caller,
        content: &Content,
        payer: Option<&Payer<'_>>,
    ) -> Result<Value, ClientError> {
        let part = match content {
            Content::Text(t) => json!({ "text": t }),
            Content::Data(d) => json!({ "data": d }),
        };
        let message = |task: Option<&str>, metadata: Option<Value>| {
            let mut m = json!({"messageId": Uuid::now_v7().to_string(), "role": "ROLE_USER", "parts": [part]});
            if let Some(t) = task {
                m["taskId"] = json!(t);
            }
            if let Some(md) = metadata {
                m["metadata"] = md;
            }
            json!({ "message": m })
        };
        let paying = payer.is_some();
        let task = self.a2a(agent, caller, "SendMessage", message(None, None), paying)?;
        let task = task.get("task").cloned().unwrap_or(task);
        let status = &task["status"];
        let required = &status["message"]["metadata"][keys::REQUIRED];
        let (Some(payer), "TASK_STATE_INPUT_REQUIRED") =
            (payer, status["state"].as_str().unwrap_or_default())
        else {
            return Ok(task);
        };
        if required.is_null() {
            return Ok(task);
        }
        let payload = payer.payload(&Offer::from_document(required)?)?;
        let metadata = json!({keys::STATUS: keys::STATUS_SUBMITTED, keys::PAYLOAD: payload});
        let id = task["id"].as_str().unwrap_or_default();
        let paid = self.a2a(
            agent,
            caller,
            "SendMessage",
            message(Some(id), Some(metadata)),
            true,
        )?;
        Ok(paid.get("task").cloned().unwrap_or(paid))
    }

    /// `GetTask`.
    ///
    /// # Errors
    /// Transport errors, A2A errors (-32001 for a task that is not the caller's).
    pub fn a2a_get(&self, agent: &str, caller: &Caller, id: &str) -> Result<Value, ClientError> {
        self.a2a(agent, caller, "GetTask", json!({ "id": id }), false)
    }

    /// `CancelTask`.
    ///
    /// # Errors
    /// Transport errors, A2A errors (-32002 for a finished task).
    pub fn a2a_cancel(&self, agent: &str, caller: &Caller, id: &str) -> Result<Value, ClientError> {
        self.a2a(agent, caller, "CancelTask", json!({ "id": id }), false)
    }
}

/// Checks a card's signature against the host's verified signing key.
///
/// # Errors
/// [`VerifyError::Signature`] when no signature of the card is by that key.
pub fn verify_card(card_json: &Value, key: &VerifiedKey) -> Result<(), VerifyError> {
    card::verify(card_json, &key.signing_key).map_err(|_| VerifyError::Signature("agent card"))
}

/// Checks a task's receipt: signed by the verified key, naming the task, committing to the
/// invocation document and the input carried beside it, whose result is the task's artifact.
/// Returns the receipt.
///
/// # Errors
/// The first [`VerifyError`] found ([`VerifyError::Malformed`] for a task without one).
pub fn verify_task_receipt(task: &Value, key: &VerifiedKey) -> Result<Receipt, VerifyError> {
    let meta = &task["metadata"];
    let receipt: Receipt = serde_json::from_value(meta["wasm-hypervisor/receipt"].clone())
        .map_err(|e| VerifyError::Malformed(format!("the task has no receipt: {e}")))?;
    let id = task["id"]
        .as_str()
        .and_then(|i| Uuid::parse_str(i).ok())
        .ok_or_else(|| VerifyError::Malformed("task id".into()))?;
    let document = meta["wasm-hypervisor/invocation"]
        .as_str()
        .ok_or_else(|| VerifyError::Malformed("the task has no invocation document".into()))?;
    verify_receipt(&receipt, key, &id, &sha256(document.as_bytes()))?;
    let input = meta["wasm-hypervisor/input"].as_str().unwrap_or_default();
    if receipt.stdin_sha256 != hex::encode(sha256(input.as_bytes())) {
        return Err(VerifyError::Mismatch("receipt input"));
    }
    let document: Value = serde_json::from_str(document)
        .map_err(|e| VerifyError::Malformed(format!("invocation document: {e}")))?;
    // What the run returned, as the host shows it: JSON as a data part, text as a text part.
    let expected = match (document.get("result"), document.get("stdout")) {
        (Some(Value::String(s)), _) => json!({ "text": s }),
        (Some(result), _) => json!({ "data": result }),
        (None, Some(Value::String(out))) => match serde_json::from_str::<Value>(out) {
            Ok(v) if v.is_object() || v.is_array() => json!({ "data": v }),
            _ => json!({ "text": out }),
        },
        (None, _) => Value::Null,
    };
    let part = &task["artifacts"][0]["parts"][0];
    let shown = ["text", "data"]
        .iter()
        .find_map(|k| part.get(*k).map(|v| json!({ *k: v })));
    if shown.is_some_and(|shown| shown != expected) {
        return Err(VerifyError::Mismatch("task artifact and receipt"));
    }
    Ok(receipt)
}
