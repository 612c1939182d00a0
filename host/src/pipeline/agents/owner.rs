//! Owner signatures: ECDSA P-256 / SHA-256 over `hypervisor_protocol::agents::owner_message`,
//! made by the key that deployed the agent, with a signing time near the host's clock.

use hypervisor_protocol::agents::{OWNER_SIGNATURE_WINDOW_SECONDS, OwnerAction, owner_message};

use crate::clock::unix_seconds;
use crate::crypto::primitives::{p256_signature_is_low_s, verify_p256_sha256};
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
/// [`ApiError::NotOwner`] when the proof names another key than the owner's;
/// [`ApiError::OwnerSignature`] naming what is wrong (never which part of a valid-looking
/// signature failed beyond "does not verify"; a high-s signature is refused).
pub fn check(
    owner_key: &str,
    action: OwnerAction,
    name: &str,
    detail: &str,
    proof: &Proof,
) -> Result<(), ApiError> {
    let refuse = |why: &str| Err(ApiError::OwnerSignature(why.to_string()));
    // A caller that names its key (`x-agent-owner`) and is not the owner is told so, before
    // any signature is looked at.
    if proof
        .key
        .as_deref()
        .is_some_and(|k| !same_key(k, owner_key))
    {
        return Err(ApiError::NotOwner(name.to_string()));
    }
    if unix_seconds().abs_diff(proof.signed_at) > OWNER_SIGNATURE_WINDOW_SECONDS {
        return refuse("the signing time is more than 300 s from the host's clock");
    }
    let (Ok(key), Ok(signature)) = (hex::decode(owner_key), hex::decode(&proof.signature)) else {
        return refuse("the signature is not hex");
    };
    match p256_signature_is_low_s(&signature) {
        Ok(true) => {}
        Ok(false) => return refuse("the signature is high-s: send its low-s form (s <= n/2)"),
        Err(_) => return refuse("the signature is malformed"),
    }
    let message = owner_message(action, name, detail, proof.signed_at);
    match verify_p256_sha256(&key, &message, &signature) {
        Ok(true) => Ok(()),
        Ok(false) => refuse("the signature does not verify under the owner's key"),
        Err(_) => refuse("the signature is malformed"),
    }
}

/// Whether two hex SEC1 keys are the same P-256 key (compressed and uncompressed encodings of
/// one point are the same key).
fn same_key(a: &str, b: &str) -> bool {
    match (
        hypervisor_protocol::EncodedPublicKey::from_hex("key", a),
        hypervisor_protocol::EncodedPublicKey::from_hex("key", b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.eq_ignore_ascii_case(b),
    }
}

#[cfg(test)]
mod tests {
    use hypervisor_protocol::ClientSecret;
    use p256::ecdsa::signature::Signer;

    use super::*;

    /// Signs `deploy` of `name` now with `key`, returning the low-s signature.
    fn signed(key: &ClientSecret, name: &str) -> (String, p256::ecdsa::Signature, u64) {
        let now = unix_seconds();
        let sk = p256::ecdsa::SigningKey::from_slice(key.to_bytes().as_slice()).unwrap();
        let sig: p256::ecdsa::Signature =
            sk.sign(&owner_message(OwnerAction::Deploy, name, "d", now));
        (key.public_key().to_hex(), sig.normalize_s(), now)
    }

    #[test]
    fn only_the_low_s_form_of_a_signature_is_accepted() {
        let key = ClientSecret::generate().unwrap();
        let (owner, low, now) = signed(&key, "a");
        let proof = |sig: &[u8]| Proof {
            key: None,
            signature: hex::encode(sig),
            signed_at: now,
        };
        assert!(
            check(
                &owner,
                OwnerAction::Deploy,
                "a",
                "d",
                &proof(&low.to_bytes())
            )
            .is_ok()
        );
        // (r, n - s): the same signature's other valid form.
        let (r, s) = low.split_scalars();
        let high = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
        assert_ne!(high, low);
        let refused = check(
            &owner,
            OwnerAction::Deploy,
            "a",
            "d",
            &proof(&high.to_bytes()),
        );
        assert!(
            matches!(&refused, Err(ApiError::OwnerSignature(m)) if m.contains("high-s")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_proof_naming_another_key_is_not_the_owner() {
        let (owner, low, now) = signed(&ClientSecret::generate().unwrap(), "a");
        let stranger = ClientSecret::generate().unwrap().public_key().to_hex();
        let proof = Proof {
            key: Some(stranger),
            signature: hex::encode(low.to_bytes()),
            signed_at: now,
        };
        assert!(matches!(
            check(&owner, OwnerAction::Deploy, "a", "d", &proof),
            Err(ApiError::NotOwner(_))
        ));
    }
}
