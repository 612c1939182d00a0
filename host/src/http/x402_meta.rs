//! x402 carried in JSON metadata instead of HTTP headers (the x402 bindings of A2A and MCP):
//! a PaymentPayload document read as the header that would carry it, and the challenge and
//! settlement written as the documents those headers hold. The payment itself is verified,
//! reserved and settled by the pipeline, exactly as with the headers.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::plugins::payments::{Challenge, PaymentHeader, ProtocolVersion, SettlementHeader};

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

/// A PaymentPayload document as the header that would carry it (its `x402Version` says
/// which: 1 is `X-PAYMENT`, anything else `PAYMENT-SIGNATURE`).
pub fn payment_header(payload: &Value) -> PaymentHeader {
    let payload = integral(payload);
    let version = match payload.get("x402Version").and_then(Value::as_u64) {
        Some(1) => ProtocolVersion::V1,
        _ => ProtocolVersion::V2,
    };
    PaymentHeader {
        version,
        value: B64.encode(payload.to_string()),
    }
}

/// The PaymentRequired document (x402 v2) of a challenge.
pub fn requirements(challenge: &Challenge) -> Option<Value> {
    B64.decode(&challenge.payment_required)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
}

/// The settlement response a settlement header carries.
pub fn settlement(header: &SettlementHeader) -> Value {
    B64.decode(&header.value)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_doubles_become_integers() {
        let v = json!({"x402Version": 2.0, "a": [1.5, 3.0], "s": "2.0", "n": 7});
        let expected = json!({"x402Version": 2, "a": [1.5, 3], "s": "2.0", "n": 7});
        assert_eq!(integral(&v), expected);
        assert!(integral(&v)["x402Version"].is_u64());
    }

    #[test]
    fn the_version_picks_the_header() {
        assert!(matches!(
            payment_header(&json!({"x402Version": 1.0})).version,
            ProtocolVersion::V1
        ));
        assert!(matches!(
            payment_header(&json!({"x402Version": 2})).version,
            ProtocolVersion::V2
        ));
    }
}
