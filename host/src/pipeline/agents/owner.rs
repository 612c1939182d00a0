//! Owner signatures: ECDSA P-256 / SHA-256 over a `hypervisor_protocol::agents::OwnerStatement`
//! for this host's audience, made by the key that deployed the agent, with a signing time near
//! the host's clock. (The order of operations that change an agent, by sequence number, is
//! the catalog's: `storage::agents`.)

use hypervisor_protocol::agents::{
    MAX_OWNER_SEQUENCE, OWNER_SIGNATURE_WINDOW_SECONDS, OwnerAction, OwnerStatement,
};

use crate::clock::unix_seconds;
use crate::crypto::primitives::{p256_signature_is_low_s, verify_p256_sha256};
use crate::error::ApiError;
use crate::storage::agents::OwnerOrder;

/// A signature presented by a caller claiming to be an agent's owner.
#[derive(Debug, Clone)]
pub struct Proof {
    /// The claimed owner key (hex SEC1), if sent; must equal the agent's owner.
    pub key: Option<String>,
    /// The signature, hex (64 bytes `r || s`, or DER).
    pub signature: String,
    /// The signing time, Unix seconds.
    pub signed_at: u64,
    /// The sequence number.
    pub sequence: u64,
}

impl Proof {
    /// Where the operation stands in the agent's order.
    pub fn order(&self) -> OwnerOrder {
        OwnerOrder {
            signed_at: self.signed_at,
            sequence: self.sequence,
        }
    }
}

/// Checks that `proof` is `owner_key`'s signature of `action` on `name` (with `detail`) for
/// this host (`audience`).
///
/// # Errors
/// [`ApiError::NotOwner`] when the proof names another key than the owner's;
/// [`ApiError::OwnerSignature`] naming what is wrong (never which part of a valid-looking
/// signature failed beyond "does not verify": another host's audience, another action or a
/// changed detail all read the same; a high-s signature is refused).
pub fn check(
    audience: &str,
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
    if proof.sequence > MAX_OWNER_SEQUENCE {
        return refuse("the sequence is above 2^63 - 1");
    }
    let (Ok(key), Ok(signature)) = (
        hypervisor_protocol::wire::decode_hex("owner_key", owner_key),
        hypervisor_protocol::wire::decode_hex("signature", &proof.signature),
    ) else {
        return refuse("the signature is not hex");
    };
    match p256_signature_is_low_s(&signature) {
        Ok(true) => {}
        Ok(false) => return refuse("the signature is high-s: send its low-s form (s <= n/2)"),
        Err(_) => return refuse("the signature is malformed"),
    }
    let message = OwnerStatement {
        audience,
        action,
        name,
        signed_at: proof.signed_at,
        sequence: proof.sequence,
        detail,
    }
    .message();
    match verify_p256_sha256(&key, &message, &signature) {
        Ok(true) => Ok(()),
        Ok(false) => refuse(
            "the signature does not verify under the owner's key for this host's audience \
             (GET /host)",
        ),
        Err(_) => refuse("the signature is malformed"),
    }
}

/// Whether two hex SEC1 keys are the same P-256 key (compressed and uncompressed encodings of
/// one point are the same key).
pub(super) fn same_key(a: &str, b: &str) -> bool {
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

    const HERE: &str = "0123456789abcdef0123456789abcdef";

    /// Signs `deploy` of `name` now with `key` for `audience`, returning the low-s signature.
    fn signed(
        key: &ClientSecret,
        audience: &str,
        name: &str,
    ) -> (String, p256::ecdsa::Signature, u64) {
        let now = unix_seconds();
        let sk = p256::ecdsa::SigningKey::from_slice(key.to_bytes().as_slice()).unwrap();
        let message = OwnerStatement {
            audience,
            action: OwnerAction::Deploy,
            name,
            signed_at: now,
            sequence: 1,
            detail: "d",
        }
        .message();
        let sig: p256::ecdsa::Signature = sk.sign(&message);
        (key.public_key().to_hex(), sig.normalize_s(), now)
    }

    fn proof(sig: &[u8], now: u64) -> Proof {
        Proof {
            key: None,
            signature: hex::encode(sig),
            signed_at: now,
            sequence: 1,
        }
    }

    #[test]
    fn only_the_low_s_form_of_a_signature_is_accepted() {
        let key = ClientSecret::generate().unwrap();
        let (owner, low, now) = signed(&key, HERE, "a");
        let check_sig = |sig: &[u8]| {
            check(
                HERE,
                &owner,
                OwnerAction::Deploy,
                "a",
                "d",
                &proof(sig, now),
            )
        };
        assert!(check_sig(&low.to_bytes()).is_ok());
        // (r, n - s): the same signature's other valid form.
        let (r, s) = low.split_scalars();
        let high = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
        assert_ne!(high, low);
        let refused = check_sig(&high.to_bytes());
        assert!(
            matches!(&refused, Err(ApiError::OwnerSignature(m)) if m.contains("high-s")),
            "{refused:?}"
        );
    }

    /// A deployment signed for another host is refused here: signatures cannot be replayed
    /// across hosts.
    #[test]
    fn a_signature_for_another_audience_is_refused() {
        let key = ClientSecret::generate().unwrap();
        let (owner, sig, now) = signed(&key, "ffffffffffffffffffffffffffffffff", "a");
        let refused = check(
            HERE,
            &owner,
            OwnerAction::Deploy,
            "a",
            "d",
            &proof(&sig.to_bytes(), now),
        );
        assert!(
            matches!(&refused, Err(ApiError::OwnerSignature(m)) if m.contains("audience")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_proof_naming_another_key_is_not_the_owner() {
        let (owner, low, now) = signed(&ClientSecret::generate().unwrap(), HERE, "a");
        let stranger = ClientSecret::generate().unwrap().public_key().to_hex();
        let proof = Proof {
            key: Some(stranger),
            ..proof(&low.to_bytes(), now)
        };
        assert!(matches!(
            check(HERE, &owner, OwnerAction::Deploy, "a", "d", &proof),
            Err(ApiError::NotOwner(_))
        ));
    }
}
