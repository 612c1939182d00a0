//! The x402 A2A extension (standalone flow) as metadata: the keys of
//! `hypervisor_protocol::a2a::x402` read from the client's message and written in the metadata
//! of the task's status message. The payment itself is verified, reserved and settled by the
//! pipeline, exactly as on `POST /agents/{name}/invoke` with a payment header.
//!
//! Requirements are sent in x402 v2 (`x402Version: 2`); a payload in either version is
//! accepted (its `x402Version` says which).

use hypervisor_protocol::a2a::model::Message;
use hypervisor_protocol::a2a::x402 as keys;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::http::x402_meta;
use crate::plugins::payments::{PaymentHeader, SettlementHeader};

/// What a client's message says about payment.
pub enum Submitted {
    /// A payment payload, as the header that would carry it.
    Payload(PaymentHeader),
    /// The client declines to pay (`payment-rejected`).
    Declined,
    /// Nothing.
    Nothing,
}

/// Reads the payment keys of `message`.
pub fn submitted(message: &Message) -> Submitted {
    if let Some(payload) = message.meta(keys::PAYLOAD) {
        return Submitted::Payload(x402_meta::payment_header(payload));
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

/// `payment-required` with the requirements.
pub fn required(requirements: Value) -> Map<String, Value> {
    let mut meta = status_only(keys::STATUS_REQUIRED);
    meta.insert(keys::REQUIRED.into(), requirements);
    meta
}

/// `payment-completed` with the settlement as the receipt.
pub fn completed(settlement: &SettlementHeader) -> Map<String, Value> {
    let mut meta = status_only(keys::STATUS_COMPLETED);
    meta.insert(
        keys::RECEIPTS.into(),
        json!([x402_meta::settlement(settlement)]),
    );
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
            (keys::ERROR_SETTLEMENT_FAILED, x402_meta::settlement(header))
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
