//! Talking to an x402 facilitator (`POST /verify`, `POST /settle`): the request bodies and the
//! reading of its answers. The transport is [`crate::http`] (wasm only); everything here is
//! plain data and unit-tested natively.
//!
//! Both endpoints take `{"x402Version", "paymentPayload", "paymentRequirements"}`: the payload
//! is the client's decoded header, unchanged; the requirements are exactly what this server
//! advertised for the version. Answers are read whatever their HTTP status (facilitators answer
//! refusals with 400 and a JSON body); extra fields are ignored.

use serde_json::{Value, json};

use crate::Refusal;
use crate::protocol::{self, Resource, Terms, Version};

/// Reason for a facilitator that could not be asked (unreachable, not JSON, a 5xx without an
/// answer): the payment was not judged, so the host answers 503, not 402.
pub const VERIFY_UNAVAILABLE: &str = "unexpected_verify_error";
/// As [`VERIFY_UNAVAILABLE`], for settlement.
pub const SETTLE_UNAVAILABLE: &str = "unexpected_settle_error";

/// Where the facilitator is: `https://host[:port][/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https` (else `http`).
    pub https: bool,
    /// `host[:port]`.
    pub authority: String,
    /// Path before `/verify` and `/settle`, without a trailing slash (may be empty).
    pub path_prefix: String,
}

impl Endpoint {
    /// Parses the facilitator's base URL.
    ///
    /// # Errors
    /// A message naming the problem.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!(
                "facilitator_url {url:?} must start with http:// or https://"
            ));
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() || authority.contains('@') || path.contains(['?', '#']) {
            return Err(format!(
                "facilitator_url {url:?} needs a host, and no user info, query or fragment"
            ));
        }
        Ok(Self {
            https,
            authority: authority.to_string(),
            path_prefix: path.trim_end_matches('/').to_string(),
        })
    }
}

/// The body of `/verify` and `/settle` for a payment header.
///
/// # Errors
/// The refusal of [`protocol::decode`] for a header that does not decode, or
/// `invalid_payment_requirements` for v1 on a network without a v1 name.
pub fn request_body(
    version: Version,
    header: &str,
    terms: &Terms,
    resource: &Resource,
) -> Result<Vec<u8>, Refusal> {
    let payload = protocol::decode(header)?;
    let (number, requirements) = match version {
        Version::V1 => (
            1,
            terms.v1_requirements(resource).ok_or_else(|| {
                Refusal::new(
                    "invalid_payment_requirements",
                    "this network has no x402 v1 name",
                )
            })?,
        ),
        Version::V2 => (2, terms.v2_requirements()),
    };
    Ok(json!({
        "x402Version": number,
        "paymentPayload": payload,
        "paymentRequirements": requirements,
    })
    .to_string()
    .into_bytes())
}

/// The body of `/verify` and `/settle` for a metered (upto, v2) payment: the client's payload
/// unchanged and `requirements` (the maximum's for `/verify`, the charge's for `/settle`).
///
/// # Errors
/// The refusal of [`protocol::decode`].
pub fn upto_body(header: &str, requirements: Value) -> Result<Vec<u8>, Refusal> {
    Ok(json!({
        "x402Version": 2,
        "paymentPayload": protocol::decode(header)?,
        "paymentRequirements": requirements,
    })
    .to_string()
    .into_bytes())
}

fn answer(status: u16, body: &[u8], unavailable: &str) -> Result<Value, Refusal> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(Refusal::new(
            unavailable,
            format!(
                "the facilitator answered HTTP {status} without a JSON object: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ),
        )),
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Reads a `/verify` answer: `Ok(())` when `isValid`, else the facilitator's reason.
///
/// # Errors
/// The facilitator's `invalidReason` (and message), or [`VERIFY_UNAVAILABLE`] for an answer
/// that is not one.
pub fn verify_answer(status: u16, body: &[u8]) -> Result<(), Refusal> {
    let v = answer(status, body, VERIFY_UNAVAILABLE)?;
    match v.get("isValid").and_then(Value::as_bool) {
        Some(true) => Ok(()),
        Some(false) => {
            let reason = text(&v, "invalidReason").unwrap_or("invalid_payload");
            let message = text(&v, "invalidMessage")
                .or_else(|| text(&v, "errorMessage"))
                .unwrap_or("the facilitator refused the payment");
            Err(Refusal::new(reason, format!("facilitator: {message}")))
        }
        None => Err(Refusal::new(
            VERIFY_UNAVAILABLE,
            format!("the facilitator answered HTTP {status} without `isValid`"),
        )),
    }
}

/// A `/settle` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Whether the transfer happened.
    pub success: bool,
    /// Transaction hash (empty when none).
    pub transaction: String,
    /// Why it failed.
    pub error_reason: Option<String>,
    /// The facilitator's explanation, when it gave one.
    pub message: Option<String>,
}

impl Settled {
    /// A success without a transaction: recorded for later settlement (verify-only mode), or
    /// nothing to move (a metered charge of 0).
    pub fn without_transaction() -> Self {
        Self {
            success: true,
            transaction: String::new(),
            error_reason: None,
            message: None,
        }
    }
}

/// Reads a `/settle` answer.
///
/// # Errors
/// [`SETTLE_UNAVAILABLE`] for an answer without `success`.
pub fn settle_answer(status: u16, body: &[u8]) -> Result<Settled, Refusal> {
    let v = answer(status, body, SETTLE_UNAVAILABLE)?;
    let success = v.get("success").and_then(Value::as_bool).ok_or_else(|| {
        Refusal::new(
            SETTLE_UNAVAILABLE,
            format!("the facilitator answered HTTP {status} without `success`"),
        )
    })?;
    let transaction = text(&v, "transaction").unwrap_or_default().to_string();
    if success && transaction.is_empty() {
        return Err(Refusal::new(
            SETTLE_UNAVAILABLE,
            "the facilitator reported success without a transaction",
        ));
    }
    Ok(Settled {
        success,
        transaction,
        error_reason: (!success).then(|| {
            text(&v, "errorReason")
                .unwrap_or(SETTLE_UNAVAILABLE)
                .to_string()
        }),
        message: text(&v, "errorMessage").map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e = Endpoint::parse("https://x402.org/facilitator/").unwrap();
        assert_eq!(
            e,
            Endpoint {
                https: true,
                authority: "x402.org".into(),
                path_prefix: "/facilitator".into()
            }
        );
        let e = Endpoint::parse("http://127.0.0.1:4021").unwrap();
        assert_eq!((e.https, e.path_prefix.as_str()), (false, ""));
        for bad in [
            "ftp://x",
            "http://",
            "http://u@h/",
            "http://h/?q=1",
            "x402.org",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_bodies_carry_the_payload_unchanged_and_the_advertised_requirements() {
        let terms = Terms::new(&protocol::Price {
            amount: "10000".into(),
            asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
            network: "eip155:84532".into(),
            pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into(),
            eip712_name: "USDC".into(),
            eip712_version: "2".into(),
            max_timeout_seconds: 60,
        })
        .unwrap();
        let resource = Resource {
            url: "http://127.0.0.1:3000/x402_execute/test/wasm".into(),
            description: "one request".into(),
            mime_type: "application/json".into(),
        };
        let header = include_str!("../tests/spec-v2-header.txt").trim();
        let body: Value =
            serde_json::from_slice(&request_body(Version::V2, header, &terms, &resource).unwrap())
                .unwrap();
        assert_eq!(body["x402Version"], 2);
        assert_eq!(body["paymentPayload"], protocol::decode(header).unwrap());
        assert_eq!(body["paymentRequirements"], terms.v2_requirements());
        let body: Value =
            serde_json::from_slice(&request_body(Version::V1, header, &terms, &resource).unwrap())
                .unwrap();
        assert_eq!(body["paymentRequirements"]["network"], "base-sepolia");
        assert_eq!(
            body["paymentRequirements"]["resource"],
            resource.url.as_str()
        );
        assert_eq!(
            request_body(Version::V2, "%%%", &terms, &resource)
                .unwrap_err()
                .reason,
            "invalid_payload"
        );
    }

    #[test]
    fn verify_answers() {
        assert!(verify_answer(200, br#"{"isValid":true,"payer":"0xabc"}"#).is_ok());
        let r = verify_answer(
            400,
            br#"{"isValid":false,"invalidReason":"insufficient_funds","invalidMessage":"balance 0","payer":"0xabc"}"#,
        )
        .unwrap_err();
        assert_eq!(r.reason, "insufficient_funds");
        assert!(r.message.contains("balance 0"));
        assert_eq!(
            verify_answer(502, b"Bad Gateway").unwrap_err().reason,
            VERIFY_UNAVAILABLE
        );
        assert_eq!(
            verify_answer(200, b"{}").unwrap_err().reason,
            VERIFY_UNAVAILABLE
        );
    }

    #[test]
    fn settle_answers() {
        let ok = settle_answer(
            200,
            br#"{"success":true,"transaction":"0x12","network":"eip155:84532","payer":"0xabc"}"#,
        )
        .unwrap();
        assert!(ok.success && ok.transaction == "0x12" && ok.error_reason.is_none());
        let failed = settle_answer(
            400,
            br#"{"success":false,"errorReason":"invalid_transaction_state","transaction":"","network":"eip155:84532"}"#,
        )
        .unwrap();
        assert_eq!(
            failed.error_reason.as_deref(),
            Some("invalid_transaction_state")
        );
        assert_eq!(
            settle_answer(200, br#"{"success":true}"#)
                .unwrap_err()
                .reason,
            SETTLE_UNAVAILABLE
        );
        assert_eq!(
            settle_answer(500, b"").unwrap_err().reason,
            SETTLE_UNAVAILABLE
        );
    }
}
