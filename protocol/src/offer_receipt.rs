//! x402's offer-and-receipt extension (x402 `specs/extensions/extension-offer-and-receipt.md`,
//! a draft): offers and receipts signed by the host's attested key, in the extension's JWS
//! format (`docs/PROTOCOL.md` §6b, "Signed offers and receipts"; vectors in
//! `docs/test-vectors.json`, `offer_receipt`).
//!
//! - The key is named by `kid = did:key:z…#z…`: the `did:key` of the P-256 key (multicodec
//!   `p256-pub`, 0x1200, over the compressed point; base58btc), which x402's verifiers resolve.
//! - The protected header is `{"alg":"ES256","kid":…,"typ":…}`, `typ` being
//!   `x402-offer+jws` or `x402-receipt+jws`: a signature for one kind never passes as the
//!   other, nor as an agent card's (`typ` `JOSE`) or a statement (which never starts `eyJ`).
//! - The payload is the RFC 8785 form of the payload object; the signature ES256 (P-256,
//!   SHA-256), 64 bytes `r || s`, low-s.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::sec1::ToSec1Point as _;
use serde_json::{Value, json};

use crate::{EncodedPublicKey, ProtocolError};

/// The extension's key in `extensions`.
pub const EXTENSION: &str = "offer-receipt";

/// Which artifact a signature is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact {
    /// A signed offer (in a 402's `extensions["offer-receipt"].info.offers`).
    Offer,
    /// A receipt (in a settlement's `extensions["offer-receipt"].info.receipt`).
    Receipt,
}

impl Artifact {
    /// The header's `typ`.
    pub fn typ(self) -> &'static str {
        match self {
            Self::Offer => "x402-offer+jws",
            Self::Receipt => "x402-receipt+jws",
        }
    }
}

/// The `did:key` of a P-256 key: `did:key:z` + base58btc(0x80 0x24 || compressed point).
pub fn did_key(key: &EncodedPublicKey) -> Result<String, ProtocolError> {
    let point = p256::PublicKey::from_sec1_bytes(key.as_bytes())
        .map_err(|_| ProtocolError::BadSignature)?
        .to_sec1_point(true);
    let mut bytes = vec![0x80, 0x24];
    bytes.extend_from_slice(point.as_bytes());
    Ok(format!("did:key:z{}", bs58::encode(bytes).into_string()))
}

/// The `kid` of the key's signatures: its `did:key` and, as fragment, its multibase key.
pub fn kid(key: &EncodedPublicKey) -> Result<String, ProtocolError> {
    let did = did_key(key)?;
    let fragment = did.trim_start_matches("did:key:").to_string();
    Ok(format!("{did}#{fragment}"))
}

/// What a signature is made over: `base64url(header) "." base64url(JCS(payload))`. Only
/// [`signing_input`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningInput(String);

impl SigningInput {
    /// The bytes to sign.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The compact JWS of this input and `signature` (64 bytes `r || s`).
    pub fn compact(&self, signature: &[u8; 64]) -> String {
        format!("{}.{}", self.0, B64URL.encode(signature))
    }
}

/// The signing input of `artifact` with `payload`, by `key`.
///
/// # Errors
/// [`ProtocolError::BadSignature`] for a key that is not a P-256 point, or a payload RFC 8785
/// cannot represent.
pub fn signing_input(
    artifact: Artifact,
    key: &EncodedPublicKey,
    payload: &Value,
) -> Result<SigningInput, ProtocolError> {
    let header = json!({ "alg": "ES256", "kid": kid(key)?, "typ": artifact.typ() });
    let header =
        serde_json_canonicalizer::to_vec(&header).map_err(|_| ProtocolError::BadSignature)?;
    let payload =
        serde_json_canonicalizer::to_vec(payload).map_err(|_| ProtocolError::BadSignature)?;
    Ok(SigningInput(format!(
        "{}.{}",
        B64URL.encode(header),
        B64URL.encode(payload)
    )))
}

/// Verifies the compact JWS `jws` of `artifact` as signed by `key` (its `kid`, `alg` and `typ`,
/// and a low-s ES256 signature), and returns its payload.
///
/// # Errors
/// [`ProtocolError::BadSignature`] for anything that does not verify.
pub fn verify(
    jws: &str,
    artifact: Artifact,
    key: &EncodedPublicKey,
) -> Result<Value, ProtocolError> {
    let bad = || ProtocolError::BadSignature;
    let mut parts = jws.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let header: Value = B64URL
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or_else(bad)?;
    if header["alg"] != "ES256" || header["typ"] != artifact.typ() || header["kid"] != kid(key)? {
        return Err(bad());
    }
    let signature = B64URL.decode(signature).map_err(|_| bad())?;
    let signature = Signature::from_slice(&signature).map_err(|_| bad())?;
    if signature.normalize_s() != signature {
        return Err(bad());
    }
    let vk = VerifyingKey::from_sec1_bytes(key.as_bytes()).map_err(|_| bad())?;
    let input = &jws[..jws.len() - jws.rsplit('.').next().map_or(0, str::len) - 1];
    vk.verify(input.as_bytes(), &signature).map_err(|_| bad())?;
    B64URL
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or_else(bad)
}

/// An offer's payload (spec §4.2).
pub fn offer_payload(
    resource_url: &str,
    scheme: &str,
    network: &str,
    asset: &str,
    pay_to: &str,
    amount: &str,
    valid_until: u64,
) -> Value {
    json!({
        "version": 1,
        "resourceUrl": resource_url,
        "scheme": scheme,
        "network": network,
        "asset": asset,
        "payTo": pay_to,
        "amount": amount,
        "validUntil": valid_until,
    })
}

/// What this host's receipts add to the extension's receipt payload, under `hypervisor`: the
/// run that was paid for, as its record and (on verifiable routes) its signed receipt state it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunBinding {
    /// The execution record's id.
    pub execution_id: String,
    /// The route run.
    pub route: String,
    /// The agent, for an agent's run.
    pub agent: Option<String>,
    /// SHA-256 of the code run, hex.
    pub code_hash: String,
    /// The result's commitment, hex (none for an HTTP agent).
    pub result_commitment: Option<String>,
    /// How it ended (`exited`, `time_limit_exceeded`, …).
    pub status: String,
    /// The amount charged, atomic units.
    pub amount: String,
    /// The attestation provider (`tdx`, `sev-snp`, `simulated`, …).
    pub tee: String,
    /// SHA-256 of the evidence the signing key stands on, hex (as this host's receipts bind
    /// it, §14).
    pub evidence_sha256: String,
    /// Where that evidence is served (`<public_url>/attestation`).
    pub attestation: String,
    /// A metered run's charge (x402 `upto`): what was measured, by which tariff, up to which
    /// maximum; `amount` is the charge.
    pub metered: Option<Metering>,
}

/// How a metered run's charge came about (§6b): the payer recomputes `amount` with
/// [`crate::tariff::Tariff::charge`] from these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metering {
    /// What the host measured.
    pub meter: crate::tariff::Meter,
    /// The signed tariff.
    pub tariff: crate::tariff::Tariff,
    /// The maximum the payer signed for (the agent's price).
    pub maximum: String,
}

/// A receipt's payload (spec §5.2, with `transaction` when there is one), and this host's run
/// binding under `hypervisor`, with `settled`: whether the transfer was executed (a
/// transaction is named) or only the authorization verified and recorded.
pub fn receipt_payload(
    network: &str,
    resource_url: &str,
    payer: &str,
    issued_at: u64,
    transaction: Option<&str>,
    run: &RunBinding,
) -> Value {
    let mut payload = json!({
        "version": 1,
        "network": network,
        "resourceUrl": resource_url,
        "payer": payer,
        "issuedAt": issued_at,
        "hypervisor": {
            "executionId": run.execution_id,
            "route": run.route,
            "codeHash": run.code_hash,
            "status": run.status,
            "amount": run.amount,
            "tee": run.tee,
            "evidenceSha256": run.evidence_sha256,
            "attestation": run.attestation,
        },
    });
    // Settled: the transfer was executed (its transaction is named). Not settled: the payer's
    // authorization was verified and recorded, and is settled later (verify-only mode, or a
    // settlement after the answer): no money had moved when this was signed.
    let settled = transaction.is_some_and(|t| !t.is_empty());
    payload["hypervisor"]["settled"] = json!(settled);
    if let Some(tx) = transaction.filter(|t| !t.is_empty()) {
        payload["transaction"] = json!(tx);
    }
    if let Some(agent) = &run.agent {
        payload["hypervisor"]["agent"] = json!(agent);
    }
    if let Some(c) = &run.result_commitment {
        payload["hypervisor"]["resultCommitment"] = json!(c);
    }
    if let Some(m) = &run.metered {
        payload["hypervisor"]["metered"] = json!({
            "fuel": m.meter.fuel,
            "ms": m.meter.ms,
            "outputBytes": m.meter.output_bytes,
            "tariff": m.tariff,
            "maximum": m.maximum,
        });
    }
    payload
}

/// The schema of `info` with offers (the extension's own).
pub fn offers_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "offers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "format": { "type": "string" },
                        "acceptIndex": { "type": "integer" },
                        "payload": { "type": "object" },
                        "signature": { "type": "string" }
                    },
                    "required": ["format", "signature"]
                }
            }
        },
        "required": ["offers"]
    })
}

/// The schema of `info` with a receipt (the extension's own).
pub fn receipt_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "receipt": {
                "type": "object",
                "properties": {
                    "format": { "type": "string" },
                    "payload": { "type": "object" },
                    "signature": { "type": "string" }
                },
                "required": ["format", "signature"]
            }
        },
        "required": ["receipt"]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer as _;

    fn key() -> (SigningKey, EncodedPublicKey) {
        let sk = SigningKey::from_slice(&[0x11; 32]).unwrap();
        let pk = EncodedPublicKey::from_sec1(sk.verifying_key().to_sec1_point(false).as_bytes())
            .unwrap();
        (sk, pk)
    }

    fn sign(sk: &SigningKey, input: &SigningInput) -> [u8; 64] {
        let sig: Signature = sk.sign(input.as_bytes());
        sig.normalize_s().to_bytes().into()
    }

    #[test]
    fn did_keys_are_p256_multicodec_in_base58btc() {
        let (_, pk) = key();
        let did = did_key(&pk).unwrap();
        // P-256 did:keys begin with zDn (0x80 0x24 then 0x02/0x03).
        assert!(did.starts_with("did:key:zDn"), "{did}");
        let decoded = bs58::decode(&did["did:key:z".len()..]).into_vec().unwrap();
        assert_eq!(&decoded[..2], &[0x80, 0x24]);
        assert_eq!(decoded.len(), 35);
        assert_eq!(
            kid(&pk).unwrap(),
            format!("{did}#{}", &did["did:key:".len()..])
        );
    }

    #[test]
    fn signed_artifacts_verify_and_nothing_else_does() {
        let (sk, pk) = key();
        let payload = offer_payload(
            "https://h/x",
            "exact",
            "eip155:84532",
            "0xA",
            "0xB",
            "10",
            99,
        );
        let input = signing_input(Artifact::Offer, &pk, &payload).unwrap();
        assert!(input.as_bytes().starts_with(b"eyJ"));
        let jws = input.compact(&sign(&sk, &input));
        assert_eq!(verify(&jws, Artifact::Offer, &pk).unwrap(), payload);
        // Not as a receipt, not by another key, not altered, not high-s.
        assert!(verify(&jws, Artifact::Receipt, &pk).is_err());
        let other = EncodedPublicKey::from_sec1(
            SigningKey::from_slice(&[0x22; 32])
                .unwrap()
                .verifying_key()
                .to_sec1_point(false)
                .as_bytes(),
        )
        .unwrap();
        assert!(verify(&jws, Artifact::Offer, &other).is_err());
        let mut parts: Vec<String> = jws.split('.').map(str::to_string).collect();
        let mut changed = payload.clone();
        changed["amount"] = json!("1");
        parts[1] = B64URL.encode(serde_json_canonicalizer::to_vec(&changed).unwrap());
        assert!(verify(&parts.join("."), Artifact::Offer, &pk).is_err());
        let sig = Signature::from_slice(&B64URL.decode(jws.rsplit('.').next().unwrap()).unwrap())
            .unwrap();
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(r, -*s).unwrap();
        let high = format!(
            "{}.{}",
            String::from_utf8_lossy(input.as_bytes()),
            B64URL.encode(high.to_bytes())
        );
        assert!(verify(&high, Artifact::Offer, &pk).is_err());
    }
}
