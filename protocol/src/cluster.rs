//! The replicas' key exchange (`docs/PROTOCOL.md` §22): how a running replica hands the
//! cluster key to a joining one whose attestation it verified, through the shared database.
//!
//! ```text
//! joiner:    exchange key J (fresh P-256), request = {attestation, J, run, replica,
//!            signature of CLUSTER_JOIN [run, replica, J] by the joiner's attested key}
//! responder: verifies the attestation (evidence, host measurement allowed) and the signature;
//!            exchange key R (fresh P-256);
//!            k      = HKDF-SHA256(ikm = ECDH(R, J).x, salt = GRANT_LABEL,
//!                                 info = GRANT_LABEL || run || J || R, L = 32)
//!            sealed = nonce (12) || AES-256-GCM-SIV(k, nonce, cluster key, aad = run)
//!            answer = {attestation, R, sealed,
//!                      signature of CLUSTER_GRANT [run, J, R, sealed] by its attested key}
//! joiner:    verifies the responder's attestation and signature, opens `sealed`, and checks
//!            the key against the cluster's check value: HKDF-SHA256(ikm = key, salt = none,
//!            info = CHECK_LABEL, L = 32).
//! ```

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::aead::Aead;
use crate::{ClientSecret, EncodedPublicKey, ProtocolError};

/// HKDF salt and info prefix of the grant's wrapping key.
pub const GRANT_LABEL: &[u8] = b"wasm-hypervisor/v1/cluster-key-grant";

/// HKDF info of the key's check value.
pub const CHECK_LABEL: &[u8] = b"wasm-hypervisor/v1/cluster-key-check";

/// The check value of `key`: tells a replica that the key it holds is the cluster's, without
/// revealing anything of the key.
pub fn key_check(key: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(None, key)
        .expand(CHECK_LABEL, &mut out)
        .unwrap_or_else(|_| unreachable!("HKDF output length 32 is always valid"));
    out
}

/// The wrapping key of a grant to `joiner` by `responder` for `run`.
fn wrapping_key(
    shared_x: &[u8; 32],
    run: &str,
    joiner: &EncodedPublicKey,
    responder: &EncodedPublicKey,
) -> Zeroizing<[u8; 32]> {
    let mut info = GRANT_LABEL.to_vec();
    info.extend_from_slice(run.as_bytes());
    info.extend_from_slice(joiner.as_bytes());
    info.extend_from_slice(responder.as_bytes());
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(GRANT_LABEL), shared_x)
        .expand(&info, key.as_mut())
        .unwrap_or_else(|_| unreachable!("HKDF output length 32 is always valid"));
    key
}

/// Seals `cluster_key` to `joiner` (the responder's side), under `nonce` (fresh random for
/// every grant; fixed only for test vectors).
///
/// # Errors
/// [`ProtocolError::Encrypt`].
pub fn wrap_key_with_nonce(
    responder: &ClientSecret,
    joiner: &EncodedPublicKey,
    run: &str,
    cluster_key: &[u8; 32],
    nonce: &[u8; 12],
) -> Result<Vec<u8>, ProtocolError> {
    let shared = responder.diffie_hellman(joiner);
    let key = wrapping_key(&shared, run, joiner, &responder.public_key());
    let ct = Aead::new(&key)
        .seal(nonce, run.as_bytes(), cluster_key)
        .map_err(|_| ProtocolError::Encrypt)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

/// [`wrap_key_with_nonce`] under a fresh random nonce.
///
/// # Errors
/// [`ProtocolError::Random`], [`ProtocolError::Encrypt`].
pub fn wrap_key(
    responder: &ClientSecret,
    joiner: &EncodedPublicKey,
    run: &str,
    cluster_key: &[u8; 32],
) -> Result<Vec<u8>, ProtocolError> {
    let mut nonce = [0u8; 12];
    crate::fill_random(&mut nonce)?;
    wrap_key_with_nonce(responder, joiner, run, cluster_key, &nonce)
}

/// Opens a grant (the joiner's side).
///
/// # Errors
/// [`ProtocolError::Decrypt`] if it does not open.
pub fn unwrap_key(
    joiner: &ClientSecret,
    responder: &EncodedPublicKey,
    run: &str,
    sealed: &[u8],
) -> Result<Zeroizing<[u8; 32]>, ProtocolError> {
    let failed = || ProtocolError::Decrypt {
        role: "cluster key grant".into(),
    };
    if sealed.len() != 12 + 32 + 16 {
        return Err(failed());
    }
    let (nonce, ct) = sealed.split_at(12);
    let mut n = [0u8; 12];
    n.copy_from_slice(nonce);
    let shared = joiner.diffie_hellman(responder);
    let key = wrapping_key(&shared, run, &joiner.public_key(), responder);
    let plain = Zeroizing::new(
        Aead::new(&key)
            .open(&n, run.as_bytes(), ct)
            .map_err(|_| failed())?,
    );
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&plain);
    Ok(out)
}

/// The signed fields of a join request ([`crate::attest::StatementKind::ClusterJoin`]).
pub fn join_fields<'a>(
    run: &'a str,
    replica: &'a str,
    exchange_key: &'a EncodedPublicKey,
) -> [&'a [u8]; 3] {
    [run.as_bytes(), replica.as_bytes(), exchange_key.as_bytes()]
}

/// The signed fields of a grant ([`crate::attest::StatementKind::ClusterGrant`]).
pub fn grant_fields<'a>(
    run: &'a str,
    joiner: &'a EncodedPublicKey,
    responder: &'a EncodedPublicKey,
    sealed: &'a [u8],
) -> [&'a [u8]; 4] {
    [
        run.as_bytes(),
        joiner.as_bytes(),
        responder.as_bytes(),
        sealed,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_opens_for_its_joiner_and_run_only() {
        let joiner = ClientSecret::generate().unwrap();
        let responder = ClientSecret::generate().unwrap();
        let other = ClientSecret::generate().unwrap();
        let key = [7u8; 32];
        let sealed = wrap_key(&responder, &joiner.public_key(), "run-1", &key).unwrap();
        let opened = unwrap_key(&joiner, &responder.public_key(), "run-1", &sealed).unwrap();
        assert_eq!(*opened, key);
        assert!(unwrap_key(&joiner, &responder.public_key(), "run-2", &sealed).is_err());
        assert!(unwrap_key(&other, &responder.public_key(), "run-1", &sealed).is_err());
        assert_ne!(key_check(&key), key_check(&[8u8; 32]));
    }
}
