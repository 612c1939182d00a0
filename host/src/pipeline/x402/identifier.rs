//! x402's `payment-identifier` extension (x402 `specs/extensions/payment_identifier.md`): a
//! client-chosen idempotency key in a v2 payment's `extensions`, so that a paid request can be
//! retried safely. The challenge offers it; a payment that carries one is recorded with it in
//! the ledger (unique there, from any replica), and the answer to its request is kept, sealed,
//! beside the payment:
//!
//! | the identifier, on a later request | answer |
//! |---|---|
//! | new | the request runs as any paid request |
//! | seen, with the same payment on the same route, answered | that answer again (nothing runs, nothing is charged) |
//! | seen, with the same payment, not answered yet | `409 payment_identifier_in_progress`, `Retry-After: 1` |
//! | seen, with another payment or on another route | `409 payment_identifier_conflict` |
//! | seen, its answer no longer kept | `409 payment_identifier_answer_gone` |
//! | missing where the route requires one | `400 payment_identifier_required` |
//!
//! "The same payment" is the same payment document: SHA-256 over the route and the payment's
//! RFC 8785 canonical JSON (a retry sends the same `PAYMENT-SIGNATURE` again). Only fronts whose
//! answers are whole documents keep them (the paid code routes and handler and CLI agents'
//! `/invoke`, through [`keeping`]); elsewhere (HTTP agents, whose answers stream; JSON-RPC
//! fronts) identifiers are neither offered nor read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::IdentifierMode;
use crate::error::{ApiError, ReplayedAnswer};
use crate::plugins::payments::{PaymentHeader, ProtocolVersion};
use crate::storage::payments::{Identified, KeptAnswer};

/// The extension's key in `extensions`.
pub const EXTENSION: &str = "payment-identifier";

/// How long after an identified payment's last change (its settlement) an answer that was
/// never kept is waited for, seconds; then its retries are told it is gone.
pub const UNANSWERED_GRACE_SECONDS: u64 = 600;

/// Standard base64, padded or not (x402 headers), padded when written.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The identifier a payment carries, with the fingerprint of that payment on its route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentIdentifier {
    /// The client's identifier.
    pub id: String,
    /// SHA-256 over the route and the payment's canonical JSON.
    pub fingerprint: [u8; 32],
}

/// Whether `id` is an identifier: 16–128 of `A–Z a–z 0–9 _ -`.
pub fn valid_id(id: &str) -> bool {
    (16..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The identifier `header` carries, paid for `route`: `Ok(None)` for none (and for a header
/// that does not decode: the payments component refuses that one with its own reason).
///
/// # Errors
/// [`ApiError::InvalidPaymentIdentifier`] for an extension that is not an object with an `info`
/// object, or an `id` that is not a valid identifier.
pub fn of_header(
    header: &PaymentHeader,
    route: &str,
) -> Result<Option<PaymentIdentifier>, ApiError> {
    if header.version != ProtocolVersion::V2 {
        return Ok(None);
    }
    let Some(payload) = B64
        .decode(header.value.trim())
        .ok()
        .and_then(|json| serde_json::from_slice::<Value>(&json).ok())
    else {
        return Ok(None);
    };
    let Some(extension) = payload.get("extensions").and_then(|e| e.get(EXTENSION)) else {
        return Ok(None);
    };
    let invalid = |why: &str| {
        Err(ApiError::InvalidPaymentIdentifier(format!(
            "the payment's extensions[\"{EXTENSION}\"] {why}"
        )))
    };
    let Some(info) = extension.get("info").filter(|i| i.is_object()) else {
        return invalid("has no info object");
    };
    let id = match info.get("id") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(id)) if valid_id(id) => id.clone(),
        Some(_) => {
            return invalid("has an id that is not 16 to 128 of A-Z a-z 0-9 _ -");
        }
    };
    let canonical = serde_json_canonicalizer::to_vec(&payload).map_err(|e| {
        ApiError::InvalidPaymentIdentifier(format!("the payment is not canonical JSON: {e}"))
    })?;
    let mut hash = Sha256::new();
    hash.update(b"wasm-hypervisor/v1/payment-identifier\0");
    hash.update(route.as_bytes());
    hash.update([0]);
    hash.update(&canonical);
    Ok(Some(PaymentIdentifier {
        id,
        fingerprint: hash.finalize().into(),
    }))
}

/// The extension as a challenge declares it (`info.required`, and the schema of `info`).
pub fn declaration(required: bool) -> Value {
    json!({
        "info": { "required": required },
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "required": { "type": "boolean" },
                "id": { "type": "string", "minLength": 16, "maxLength": 128 }
            },
            "required": ["required"]
        }
    })
}

/// The v2 challenge `payment_required` (base64 of the `PaymentRequired` document) with the
/// extension declared for `mode`; unchanged for [`IdentifierMode::Off`].
pub fn declare(payment_required: &str, mode: IdentifierMode) -> String {
    if mode == IdentifierMode::Off {
        return payment_required.to_string();
    }
    extend(
        payment_required,
        EXTENSION,
        declaration(mode == IdentifierMode::Required),
    )
}

/// The v2 challenge `payment_required` with `extensions[name] = value` (unchanged for a
/// document that is not a JSON object, which the payments component never makes).
pub(super) fn extend(payment_required: &str, name: &str, value: Value) -> String {
    let Some(mut doc) = B64
        .decode(payment_required)
        .ok()
        .and_then(|json| serde_json::from_slice::<Value>(&json).ok())
        .filter(Value::is_object)
    else {
        return payment_required.to_string();
    };
    if !doc["extensions"].is_object() {
        doc["extensions"] = json!({});
    }
    doc["extensions"][name] = value;
    B64.encode(doc.to_string())
}

/// Where a front that keeps answers learns that its request reserved an identified payment,
/// and whether that reservation was released since (its work gave no result, or is not
/// charged: then the answer is not kept, and a retry runs again).
#[derive(Debug, Default)]
pub struct KeepSlot {
    reserved: OnceLock<Reserved>,
    released: AtomicBool,
}

/// An identified payment a request reserved.
#[derive(Debug, Clone)]
pub struct Reserved {
    /// Its replay key.
    pub replay_key: String,
    /// Its identifier and fingerprint.
    pub identifier: PaymentIdentifier,
}

impl KeepSlot {
    /// The identified payment this request reserved and still holds, if any.
    pub fn reserved(&self) -> Option<&Reserved> {
        if self.released.load(Ordering::Acquire) {
            return None;
        }
        self.reserved.get()
    }

    /// Records that this request reserved the identified payment `replay_key`.
    pub(super) fn set(&self, replay_key: &str, identifier: &PaymentIdentifier) {
        let _ = self.reserved.set(Reserved {
            replay_key: replay_key.to_string(),
            identifier: identifier.clone(),
        });
    }

    /// Records that the reservation was released.
    pub(super) fn release(&self) {
        self.released.store(true, Ordering::Release);
    }
}

tokio::task_local! {
    /// The slot of the request being served, on the fronts that keep answers.
    static KEEP: Arc<KeepSlot>;
}

/// Runs `request` (a front's handler) with `slot`: payments it verifies honour identifiers,
/// and the one it reserves is recorded in `slot`.
pub async fn keeping<F: std::future::Future>(slot: Arc<KeepSlot>, request: F) -> F::Output {
    KEEP.scope(slot, request).await
}

/// The slot of the request being served, if its front keeps answers.
pub(super) fn current_slot() -> Option<Arc<KeepSlot>> {
    KEEP.try_with(Arc::clone).ok()
}

/// The ledger's entry for an identifier, judged against `fingerprint`: the error that answers
/// the request (the kept answer itself, opened with `open`, for a retry of the same payment).
pub(super) fn judge(
    found: Identified,
    identifier: &PaymentIdentifier,
    open: impl FnOnce(&str, &PaymentIdentifier, &[u8]) -> Result<ReplayedAnswer, ApiError>,
) -> ApiError {
    use subtle::ConstantTimeEq;
    let same = found.fingerprint.len() == 32
        && bool::from(found.fingerprint.ct_eq(&identifier.fingerprint));
    if !same {
        return ApiError::PaymentIdentifierConflict(identifier.id.clone());
    }
    match found.answer {
        KeptAnswer::Pending => ApiError::PaymentIdentifierInProgress(identifier.id.clone()),
        KeptAnswer::Gone => ApiError::PaymentIdentifierAnswerGone(identifier.id.clone()),
        KeptAnswer::Kept(sealed) => match open(&found.replay_key, identifier, &sealed) {
            Ok(answer) => ApiError::AnswerReplayed(Box::new(answer)),
            Err(e) => e,
        },
    }
}

/// A kept answer as it is sealed (JSON; the body in base64).
#[derive(Serialize, Deserialize)]
struct Stored {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// The sealing purpose of the answer to the identified payment `replay_key`: bound to the
/// row, its identifier and its fingerprint, so that an answer opens only for the payment,
/// identifier and route it was made for (whatever the ledger's other columns say).
pub(super) fn purpose(replay_key: &str, id: &str, fingerprint: &[u8]) -> Vec<u8> {
    [
        b"wasm-hypervisor/v1/payment-answer\0".as_slice(),
        replay_key.as_bytes(),
        b"\0",
        id.as_bytes(),
        b"\0",
        fingerprint,
    ]
    .concat()
}

/// `answer` as the bytes that are sealed.
pub(super) fn encode(answer: &ReplayedAnswer) -> Vec<u8> {
    let stored = Stored {
        status: answer.status,
        headers: answer.headers.clone(),
        body: B64.encode(&answer.body),
    };
    serde_json::to_vec(&stored).unwrap_or_default()
}

/// The answer of bytes made by [`encode`].
pub(super) fn decode(bytes: &[u8]) -> Result<ReplayedAnswer, ApiError> {
    let stored: Stored = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Internal(format!("a kept answer does not parse: {e}")))?;
    Ok(ReplayedAnswer {
        status: stored.status,
        headers: stored.headers,
        body: B64
            .decode(stored.body)
            .map_err(|e| ApiError::Internal(format!("a kept answer does not parse: {e}")))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(payload: &Value) -> PaymentHeader {
        PaymentHeader {
            version: ProtocolVersion::V2,
            value: B64.encode(payload.to_string()),
        }
    }

    fn payload(id: Value) -> Value {
        json!({
            "x402Version": 2,
            "accepted": {"scheme": "exact", "amount": "10"},
            "payload": {"signature": "0x01"},
            "extensions": {EXTENSION: {"info": {"required": false, "id": id}}}
        })
    }

    #[test]
    fn identifiers_are_read_checked_and_fingerprinted_with_their_payment_and_route() {
        let id = "pay_7d5d747be160e280504c099d984bcfe0";
        let got = of_header(&header(&payload(json!(id))), "/r")
            .unwrap()
            .unwrap();
        assert_eq!(got.id, id);
        // Key order and padding do not change the fingerprint; the route and the payment do.
        let reordered = B64
            .encode(r#"{"payload":{"signature":"0x01"},"extensions":{"payment-identifier":{"info":{"id":"pay_7d5d747be160e280504c099d984bcfe0","required":false}}},"accepted":{"amount":"10","scheme":"exact"},"x402Version":2}"#)
            .trim_end_matches('=')
            .to_string();
        let same = PaymentHeader {
            version: ProtocolVersion::V2,
            value: reordered,
        };
        assert_eq!(of_header(&same, "/r").unwrap().unwrap(), got);
        assert_ne!(
            of_header(&header(&payload(json!(id))), "/s")
                .unwrap()
                .unwrap()
                .fingerprint,
            got.fingerprint
        );
        let mut other = payload(json!(id));
        other["payload"]["signature"] = json!("0x02");
        assert_ne!(
            of_header(&header(&other), "/r")
                .unwrap()
                .unwrap()
                .fingerprint,
            got.fingerprint
        );
        // No extension, no id, v1, undecodable: none.
        assert_eq!(
            of_header(&header(&json!({"x402Version": 2})), "/r").unwrap(),
            None
        );
        assert_eq!(
            of_header(&header(&payload(Value::Null)), "/r").unwrap(),
            None
        );
        let v1 = PaymentHeader {
            version: ProtocolVersion::V1,
            value: header(&payload(json!(id))).value,
        };
        assert_eq!(of_header(&v1, "/r").unwrap(), None);
        let garbage = PaymentHeader {
            version: ProtocolVersion::V2,
            value: "%%%".into(),
        };
        assert_eq!(of_header(&garbage, "/r").unwrap(), None);
        // Ids that are not ones.
        for bad in [
            json!("short"),
            json!("x".repeat(129)),
            json!("pay_7d5d747be160e2/80504"),
            json!(17),
        ] {
            assert!(
                matches!(
                    of_header(&header(&payload(bad.clone())), "/r"),
                    Err(ApiError::InvalidPaymentIdentifier(_))
                ),
                "{bad}"
            );
        }
        let no_info = json!({"x402Version": 2, "extensions": {EXTENSION: {"id": id}}});
        assert!(matches!(
            of_header(&header(&no_info), "/r"),
            Err(ApiError::InvalidPaymentIdentifier(_))
        ));
    }

    #[test]
    fn challenges_declare_the_extension_for_their_mode() {
        let challenge = B64.encode(r#"{"x402Version":2,"accepts":[],"extensions":{"bazaar":{}}}"#);
        assert_eq!(declare(&challenge, IdentifierMode::Off), challenge);
        for (mode, required) in [
            (IdentifierMode::Optional, false),
            (IdentifierMode::Required, true),
        ] {
            let doc: Value =
                serde_json::from_slice(&B64.decode(declare(&challenge, mode)).unwrap()).unwrap();
            assert_eq!(
                doc["extensions"][EXTENSION]["info"]["required"],
                json!(required)
            );
            assert_eq!(
                doc["extensions"][EXTENSION]["schema"]["properties"]["id"]["maxLength"],
                128
            );
            assert_eq!(doc["extensions"]["bazaar"], json!({}));
            assert_eq!(doc["accepts"], json!([]));
        }
    }

    #[test]
    fn kept_answers_round_trip() {
        let answer = ReplayedAnswer {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"{\"ok\":true}".to_vec(),
        };
        assert_eq!(decode(&encode(&answer)).unwrap(), answer);
        assert!(decode(b"nope").is_err());
    }
}
