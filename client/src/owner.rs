//! Owner signatures from the client side: the statement of `docs/PROTOCOL.md` §17 for the
//! host's audience, numbered by [`next_sequence`], low-s.

use hypervisor_protocol::agents::{DeployRequest, OwnerAction, OwnerStatement, deploy_detail};
use hypervisor_protocol::{ClientSecret, sha256};

use crate::ClientError;

/// The sequence number of a new owner operation: the Unix time in microseconds, but always
/// greater than the last one this process used, so that operations signed in the same
/// microsecond (or across a clock set back) are still ordered. The host refuses an operation
/// that changes an agent unless its sequence is greater than the last one it accepted for the
/// name (`docs/PROTOCOL.md` §17); two processes signing for one agent in the same microsecond
/// would see the second refused, with the last accepted sequence in the error.
fn next_sequence() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .min(hypervisor_protocol::agents::MAX_OWNER_SEQUENCE);
    let previous = LAST
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some(now.max(last.saturating_add(1)))
        })
        .unwrap_or(now);
    now.max(previous.saturating_add(1))
}

/// An owner's signature of one operation, with what the host needs to check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerSignature {
    /// The signature, hex (64 bytes `r || s`, low-s).
    pub signature: String,
    /// The signing time, Unix seconds.
    pub signed_at: u64,
    /// The sequence number.
    pub sequence: u64,
}

/// Signs an owner action for the host whose audience is `audience` ([`Client::audience`]),
/// now, with the next sequence number.
///
/// # Errors
/// [`ClientError::BadResponse`] if the key is unusable.
pub fn owner_signature(
    owner: &ClientSecret,
    audience: &str,
    action: OwnerAction,
    name: &str,
    detail: &str,
) -> Result<OwnerSignature, ClientError> {
    let signed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let sequence = next_sequence();
    let key = p256::ecdsa::SigningKey::from_slice(owner.to_bytes().as_slice())
        .map_err(|_| ClientError::BadResponse("the owner key cannot sign".into()))?;
    let message = OwnerStatement {
        audience,
        action,
        name,
        signed_at,
        sequence,
        detail,
    }
    .message();
    Ok(OwnerSignature {
        signature: hypervisor_protocol::owner::owner_signature_hex(&key, &message),
        signed_at,
        sequence,
    })
}

/// Signs `req` as a deployment of `component` by `owner` for the host of `audience`: sets
/// `signature`, `signed_at` and `sequence` over the name, the component's SHA-256 (of its
/// plaintext, also when `req` carries it sealed) and the settings `req` carries (`public`,
/// `price`, `ttl_seconds`, `limits`, `charge`, `grants`; see [`deploy_detail`]). Call it once
/// those are final: changing any of them afterwards makes the host refuse the signature.
/// `description` and `tags` are not signed.
///
/// # Errors
/// [`ClientError::BadResponse`] if the key is unusable.
pub fn sign_deploy_request(
    owner: &ClientSecret,
    audience: &str,
    req: &mut DeployRequest,
    component: &[u8],
) -> Result<(), ClientError> {
    sign_deploy_of(owner, audience, req, &sha256(component))
}

/// [`sign_deploy_request`] over `content_sha256`: a component's SHA-256, or a JavaScript
/// source's ([`hypervisor_protocol::agents::JsSource::sha256`]).
///
/// # Errors
/// [`ClientError::BadResponse`] if the key is unusable.
pub fn sign_deploy_of(
    owner: &ClientSecret,
    audience: &str,
    req: &mut DeployRequest,
    content_sha256: &[u8; 32],
) -> Result<(), ClientError> {
    let detail = deploy_detail(&hex::encode(content_sha256), req);
    let signed = owner_signature(owner, audience, OwnerAction::Deploy, &req.name, &detail)?;
    req.signature = Some(signed.signature);
    req.signed_at = Some(signed.signed_at);
    req.sequence = Some(signed.sequence);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_only_increase() {
        let sequences: Vec<u64> = (0..1000).map(|_| next_sequence()).collect();
        assert!(sequences.windows(2).all(|w| w[0] < w[1]));
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros();
        // Microseconds of the clock, pushed ahead only by as many as were drawn.
        assert!(u128::from(sequences[999]) <= now_us + 1000);
    }
}
