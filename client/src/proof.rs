//! Proof bundles: everything a third party needs to check, offline, that a given plaintext
//! result came from a given program and inputs on attested hardware. Written by
//! `hypervisor-client exec --verifiable --save-proof FILE`, checked by `hypervisor-client verify`.

use base64::Engine as _;
use hypervisor_protocol::wire::{Receipt, SessionQuote, decode_hex};
use hypervisor_protocol::{EncodedPublicKey, InputDigests, result_commitment};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::verify::{self, Policy, VerifiedKey, VerifyError};

/// A self-contained proof of one verifiable execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    /// Format version, 1.
    pub version: u32,
    /// The session id.
    pub session_id: Uuid,
    /// The host's session public key, hex.
    pub session_pubkey: String,
    /// The client's public key, hex.
    pub client_pubkey: String,
    /// The session quote (evidence chain + session signature).
    pub quote: SessionQuote,
    /// The signed receipt.
    pub receipt: Receipt,
    /// The plaintext result document (standard base64), revealed by the client.
    pub result: String,
}

impl Proof {
    /// Checks the whole chain: evidence → key → session statement → receipt → commitment of
    /// the revealed result under the receipt's input hashes.
    ///
    /// # Errors
    /// The first [`VerifyError`].
    pub fn verify(&self, policy: &Policy) -> Result<VerifiedKey, VerifyError> {
        let bad = |what: &str| VerifyError::Malformed(what.to_string());
        let session_pub = EncodedPublicKey::from_hex("session_pubkey", &self.session_pubkey)
            .map_err(|_| bad("session_pubkey"))?;
        let client_pub = EncodedPublicKey::from_hex("client_pubkey", &self.client_pubkey)
            .map_err(|_| bad("client_pubkey"))?;
        let key = verify::verify_session(
            &self.quote,
            &self.session_id,
            &session_pub,
            &client_pub,
            policy,
        )?;
        let result = base64::engine::general_purpose::STANDARD
            .decode(&self.result)
            .map_err(|_| bad("result"))?;
        let h = |name: &str, v: &str| -> Result<[u8; 32], VerifyError> {
            decode_hex(name, v)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad(name))
        };
        let digests = InputDigests {
            program: h("program_sha256", &self.receipt.program_sha256)?,
            arguments: self
                .receipt
                .argument_sha256
                .iter()
                .map(|a| h("argument_sha256", a))
                .collect::<Result<_, _>>()?,
            stdin: h("stdin_sha256", &self.receipt.stdin_sha256)?,
        };
        let commitment = result_commitment(&self.session_id, &digests, &result);
        verify::verify_receipt(&self.receipt, &key, &self.session_id, &commitment)?;
        Ok(key)
    }
}
