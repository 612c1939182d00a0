//! The x402 A2A extension (standalone flow) as metadata: the keys of
//! `hypervisor_protocol::a2a::x402` read from the client's message and written in the metadata
//! of the task's status message. The payment itself is verified, reserved and settled by the
//! pipeline, exactly as on `POST /agents/{name}/invoke` with a payment header.
//!
//! Requirements are sent in x402 v2 (`x402Version: 2`); a payload in either version is
//! accepted (its `x402Version` says which).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hypervisor_protocol::a2a::model::Message;
use hypervisor_protocol::a2a::x402 as keys;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::plugins::payments::SettlementHeader;
use crate::plugins::payments::{Challenge, PaymentHeader, ProtocolVersion};

/// What a client's message says about payment.
pub enum Submitted {
    /// A payment payload, as the header that would carry it.
    Payload(PaymentHeader),
    /// The client declines to pay (`payment-rejected`).
    Declined,
    /// Nothing.
    Nothing,
}

/// `value` with every integral number written as an integer: A2A 1.0 clients built on
/// protobuf carry metadata as a `Struct`, whose numbers are doubles (`"x402Version": 2.0`),
/// which x402 verifiers refuse.
fn integral(value: &Value) -> Value {
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => n
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            // In range and integral by the filter: the conversion is exact.
            .map_or_else(|| value.clone(), |f| json!(f as i64)),
        Value::Array(items) => Value::Array(items.iter().map(integral).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), integral(v))).collect())
        }
        other => other.clone(),
    }
}

/// Reads the payment keys of `message`.
pub fn submitted(message: &Message) -> Submitted {
    if let Some(payload) = message.meta(keys::PAYLOAD).map(integral) {
        let version = match payload.get("x402Version").and_then(Value::as_u64) {
            Some(1) => ProtocolVersion::V1,
            _ => ProtocolVersion::V2,
        };
        return Submitted::Payload(PaymentHeader {
            version,
            value: B64.encode(payload.to_string()),
        });
    }
    match message.meta(keys::STATUS).and_then(Value::as_str) {
        Some(keys::STATUS_REJECTED) => Submitted::Declined,
        _ => Submitted::Nothing,
    }
}

/// Metadata with only a payment status.
pub fn status_only(status: &str) -> Map<String, Value> {
    [(keys::STATUS.to_string(), json!(status))]
        .into_iter()
        .collect()
}

/// The requirements (x402 v2 PaymentRequired) of a challenge.
pub fn requirements_of(challenge: &Challenge) -> Option<Value> {
    B64.decode(&challenge.payment_required)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
}

/// `payment-required` with the requirements.
pub fn required(requirements: Value) -> Map<String, Value> {
    let mut meta = status_only(keys::STATUS_REQUIRED);
    meta.insert(keys::REQUIRED.into(), requirements);
    meta
}

/// The settlement response carried by a settlement header.
fn receipt(header: &SettlementHeader) -> Value {
    B64.decode(&header.value)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .unwrap_or(Value::Null)
}

/// `payment-completed` with the settlement as the receipt.
pub fn completed(settlement: &SettlementHeader) -> Map<String, Value> {
    let mut meta = status_only(keys::STATUS_COMPLETED);
    meta.insert(keys::RECEIPTS.into(), json!([receipt(settlement)]));
    meta
}

/// `payment-failed` with the extension's error code, for an error that is the payment's
/// (`None` for any other: the payment was released and nothing was charged).
pub fn failed(error: &ApiError) -> Option<Map<String, Value>> {
    let (code, receipt) = match error {
        ApiError::PaymentRequired { reason, .. } => (
            keys::error_code(reason),
            json!({"success": false, "errorReason": reason, "transaction": "", "network": ""}),
        ),
        ApiError::SettlementFailed { header, .. } => {
            (keys::ERROR_SETTLEMENT_FAILED, receipt(header))
        }
        ApiError::PaymentsFailed(_) | ApiError::PaymentsUnavailable => (
            keys::ERROR_SETTLEMENT_FAILED,
            json!({"success": false, "errorReason": "unexpected_verify_error", "transaction": "", "network": ""}),
        ),
        _ => return None,
    };
    let mut meta = status_only(keys::STATUS_FAILED);
    meta.insert(keys::ERROR.into(), json!(code));
    meta.insert(keys::RECEIPTS.into(), json!([receipt]));
    Some(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_doubles_become_integers() {
        let v = json!({"x402Version": 2.0, "a": [1.5, 3.0], "s": "2.0", "n": 7});
        assert_eq!(
            integral(&v).to_string(),
            r#"{"a":[1.5,3],"n":7,"s":"2.0","x402Version":2}"#
        );
    }
}
