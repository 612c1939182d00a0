//! The agent card's signature (A2A `signatures`, a JWS with a detached payload): the payload is
//! the card's canonical JSON (RFC 8785) without `signatures` and with empty strings, arrays and
//! objects removed, recursively, as the A2A SDKs compute it before checking; the protected
//! header is `{"alg":"ES256","kid":<JWK thumbprint>,"typ":"JOSE"}`; the signature is ECDSA
//! P-256 / SHA-256 (`r || s`, base64url) by the host's attested signing key.
//!
//! The SDKs read the card through A2A 1.0's schema before canonicalising it, so a card signs
//! only 1.0 fields: the 0.3 fields a card also carries for 0.3 clients (`url`,
//! `protocolVersion`, `preferredTransport`) are added after signing and are not covered.
//!
//! A JWS signing input always begins with `eyJ` (base64url of `{"`), so it never reads as one
//! of the host's own statements (`wasm-hypervisor/v1/statement…`, [`crate::attest`]): the same
//! key can sign both.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::{Map, Value, json};

use crate::{EncodedPublicKey, ProtocolError, sha256};

/// The 0.3 fields of a card that its signature does not cover.
pub const UNSIGNED_V03_FIELDS: [&str; 3] = ["url", "protocolVersion", "preferredTransport"];

/// The bytes a card signature is made over: `base64url(protected) "." base64url(payload)`.
/// Only [`signing_input`] makes one, so it always starts with `eyJ`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningInput(String);

impl SigningInput {
    /// The bytes to sign.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The JWK of a P-256 public key: `{"crv":"P-256","kty":"EC","x":…,"y":…}`.
pub fn jwk(key: &EncodedPublicKey) -> Value {
    let b = key.as_bytes();
    json!({
        "crv": "P-256",
        "kty": "EC",
        "x": B64URL.encode(&b[1..33]),
        "y": B64URL.encode(&b[33..65]),
    })
}

/// The RFC 7638 thumbprint of the key's JWK (base64url SHA-256): the `kid` of its signatures.
pub fn key_id(key: &EncodedPublicKey) -> String {
    let jwk = jwk(key);
    // RFC 7638: the required members in lexicographic order, no whitespace.
    let text = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["x"].as_str().unwrap_or_default(),
        jwk["y"].as_str().unwrap_or_default()
    );
    B64URL.encode(sha256(text.as_bytes()))
}

/// The protected header of a signature by `key`, base64url.
pub fn protected_header(key: &EncodedPublicKey) -> String {
    let header = json!({"alg": "ES256", "kid": key_id(key), "typ": "JOSE"});
    B64URL.encode(header.to_string())
}

/// Removes empty strings, arrays and objects (and `null`s) recursively, as the SDKs do before
/// canonicalising. `None` when nothing is left.
fn clean(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::Array(items) => {
            let kept: Vec<Value> = items.iter().filter_map(clean).collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        Value::Object(map) => {
            let kept: Map<String, Value> = map
                .iter()
                .filter_map(|(k, v)| clean(v).map(|v| (k.clone(), v)))
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        other => Some(other.clone()),
    }
}

/// The payload of a card's signature: the canonical JSON (RFC 8785) of the card without
/// `signatures` and the unsigned 0.3 fields, emptiness removed.
///
/// # Errors
/// [`ProtocolError::BadSignature`] if the card is not an object.
pub fn payload(card: &Value) -> Result<String, ProtocolError> {
    let mut card = card.as_object().ok_or(ProtocolError::BadSignature)?.clone();
    card.remove("signatures");
    for field in UNSIGNED_V03_FIELDS {
        card.remove(field);
    }
    let cleaned = clean(&Value::Object(card)).unwrap_or_else(|| json!({}));
    serde_json_canonicalizer::to_string(&cleaned).map_err(|_| ProtocolError::BadSignature)
}

/// The signing input of `card` under `protected` (a protected header from
/// [`protected_header`]).
///
/// # Errors
/// As [`payload`].
pub fn signing_input(protected: &str, card: &Value) -> Result<SigningInput, ProtocolError> {
    let payload = payload(card)?;
    Ok(SigningInput(format!(
        "{protected}.{}",
        B64URL.encode(payload)
    )))
}

/// The `signatures` entry for a signature (64 bytes `r || s`) made under `protected`.
pub fn signature_entry(protected: &str, signature: &[u8; 64]) -> Value {
    json!({"protected": protected, "signature": B64URL.encode(signature)})
}

/// Checks that some entry of `card.signatures` is `key`'s ES256 signature of the card.
///
/// # Errors
/// [`ProtocolError::BadSignature`] when none is.
pub fn verify(card: &Value, key: &EncodedPublicKey) -> Result<(), ProtocolError> {
    let verifying =
        VerifyingKey::from_sec1_bytes(key.as_bytes()).map_err(|_| ProtocolError::BadSignature)?;
    let entries = card
        .get("signatures")
        .and_then(Value::as_array)
        .ok_or(ProtocolError::BadSignature)?;
    for entry in entries {
        let (Some(protected), Some(sig)) = (
            entry.get("protected").and_then(Value::as_str),
            entry.get("signature").and_then(Value::as_str),
        ) else {
            continue;
        };
        let header: Option<Value> = B64URL
            .decode(protected)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok());
        if header
            .as_ref()
            .and_then(|h| h.get("alg"))
            .and_then(Value::as_str)
            != Some("ES256")
        {
            continue;
        }
        let Some(signature) = B64URL
            .decode(sig)
            .ok()
            .and_then(|s| Signature::from_slice(&s).ok())
        else {
            continue;
        };
        let input = signing_input(protected, card)?;
        if verifying.verify(input.as_bytes(), &signature).is_ok() {
            return Ok(());
        }
    }
    Err(ProtocolError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::ClientSecret as SecretKey;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;

    #[test]
    fn the_payload_drops_signatures_emptiness_and_v03_fields() {
        let card = json!({
            "name": "n", "description": "", "skills": [], "url": "http://x",
            "capabilities": {"extensions": [{"uri": "u", "params": {}}]},
            "signatures": [{"protected": "p", "signature": "s"}], "b": true
        });
        assert_eq!(
            payload(&card).unwrap(),
            r#"{"b":true,"capabilities":{"extensions":[{"uri":"u"}]},"name":"n"}"#
        );
    }

    #[test]
    fn a_signed_card_verifies_and_a_changed_one_does_not() {
        let secret = SecretKey::generate().unwrap();
        let public = secret.public_key();
        let signing = SigningKey::from_slice(secret.to_bytes().as_ref()).unwrap();
        let mut card = json!({"name": "agent", "version": "1"});
        let protected = protected_header(&public);
        assert!(protected.starts_with("eyJ"));
        let input = signing_input(&protected, &card).unwrap();
        let sig: Signature = signing.sign(input.as_bytes());
        card["signatures"] = json!([signature_entry(&protected, &sig.to_bytes().into())]);
        card["url"] = json!("http://unsigned");
        verify(&card, &public).unwrap();
        card["version"] = json!("2");
        assert!(verify(&card, &public).is_err());
    }

    #[test]
    fn the_key_id_is_the_rfc7638_thumbprint() {
        // RFC 7638 §3.1's example is an RSA key; this checks the construction on a fixed EC key
        // against the canonical JSON of its JWK.
        let secret = SecretKey::from_bytes(&[7u8; 32]).unwrap();
        let public = secret.public_key();
        let canonical = serde_json_canonicalizer::to_string(&jwk(&public)).unwrap();
        assert_eq!(key_id(&public), B64URL.encode(sha256(canonical.as_bytes())));
    }
}
