//! Owner signatures: ECDSA P-256 / SHA-256 over `hypervisor_protocol::agents::owner_message`,
//! made by the key that deployed the agent, with a signing time near the host's clock.

use hypervisor_protocol::agents::{OWNER_SIGNATURE_WINDOW_SECONDS, OwnerAction, owner_message};

use crate::clock::unix_seconds;
use crate::crypto::primitives::verify_p256_sha256;
use crate::error::ApiError;

/// A signature presented by a caller claiming to be an agent's owner.
#[derive(Debug, Clone)]
pub struct Proof {
    /// The claimed owner key (hex SEC1), if sent; must equal the agent's owner.
    pub key: Option<String>,
    /// The signature, hex (64 bytes `r || s`, or DER).
    pub signature: String,
    /// The signing time, Unix seconds.
    pub signed_at: u64,
}

/// Checks that `proof` is `owner_key`'s signature of `action` on `name` (with `detail`).
///
/// # Errors
/// [`ApiError::OwnerSignature`] naming what is wrong (never which part of a valid-looking
/// signature failed beyond "does not verify").
pub fn check(
    owner_key: &str,
    action: OwnerAction,
    name: &str,
    detail: &str,
    proof: &Proof,
) -> Result<(), ApiError> {
    let refuse = |why: &str| Err(ApiError::OwnerSignature(why.to_string()));
    if proof
        .key
        .as_deref()
        .is_some_and(|k| !k.eq_ignore_ascii_case(owner_key))
    {
        return refuse("the key is not this agent's owner");
    }
    if unix_seconds().abs_diff(proof.signed_at) > OWNER_SIGNATURE_WINDOW_SECONDS {
        return refuse("the signing time is more than 300 s from the host's clock");
    }
    let (Ok(key), Ok(signature)) = (hex::decode(owner_key), hex::decode(&proof.signature)) else {
        return refuse("the signature is not hex");
    };
    let message = owner_message(action, name, detail, proof.signed_at);
    match verify_p256_sha256(&key, &message, &signature) {
        Ok(true) => Ok(()),
        Ok(false) => refuse("the signature does not verify under the owner's key"),
        Err(_) => refuse("the signature is malformed"),
    }
}
