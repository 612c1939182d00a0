//! Primitives offered to components through `hypervisor:host/crypto`.

use hmac::{KeyInit, Mac};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Why a verification could not be attempted.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PrimitiveError {
    /// Not a SEC1 P-256 point.
    #[error("invalid public key: {0}")]
    PublicKey(String),
    /// Not a 64-byte or DER signature; or, for recovery, no key recovers.
    #[error("invalid signature: {0}")]
    Signature(String),
    /// An input has the wrong length.
    #[error("invalid length: {0}")]
    Length(String),
}

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SHA-256 of everything `reader` gives, read 1 MiB at a time (a file of any size).
///
/// # Errors
/// The reader's.
pub fn sha256_reader(mut reader: impl std::io::Read) -> std::io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buf[..n]);
    }
}

/// SHA-512.
pub fn sha512(data: &[u8]) -> [u8; 64] {
    Sha512::digest(data).into()
}

/// HMAC-SHA256 with any key length.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of every length (long keys are hashed), so this cannot fail.
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Constant-time equality (lengths are public).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// ECDSA P-256 / SHA-256 verification. `Ok(false)` for a well-formed signature that does not
/// verify; `Err` for malformed inputs.
///
/// # Errors
/// [`PrimitiveError`] for a malformed key or signature.
pub fn verify_p256_sha256(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<bool, PrimitiveError> {
    let key = VerifyingKey::from_sec1_bytes(public_key)
        .map_err(|_| PrimitiveError::PublicKey("not a SEC1 point on P-256".into()))?;
    let sig = if signature.len() == 64 {
        Signature::from_slice(signature)
    } else {
        Signature::from_der(signature)
    }
    .map_err(|_| PrimitiveError::Signature("expected 64 bytes r||s or ASN.1 DER".into()))?;
    Ok(key.verify(message, &sig).is_ok())
}

/// Whether a P-256 signature (64 bytes `r || s`, or DER) is in low-s form (`s <= n/2`). Both
/// `(r, s)` and `(r, n - s)` verify; owner and caller signatures must use the low one, so
/// that a signature has exactly one accepted encoding.
///
/// # Errors
/// [`PrimitiveError::Signature`] for a malformed signature.
pub fn p256_signature_is_low_s(signature: &[u8]) -> Result<bool, PrimitiveError> {
    let sig = if signature.len() == 64 {
        Signature::from_slice(signature)
    } else {
        Signature::from_der(signature)
    }
    .map_err(|_| PrimitiveError::Signature("expected 64 bytes r||s or ASN.1 DER".into()))?;
    Ok(sig.normalize_s() == sig)
}

/// secp256k1 public-key recovery (Ethereum's `ecrecover`) from a 32-byte digest and a 65-byte
/// `r || s || v` signature; the uncompressed SEC1 key.
///
/// # Errors
/// [`PrimitiveError::Length`] for wrong-sized inputs; [`PrimitiveError::Signature`] for a bad
/// `v`, out-of-range `r`/`s`, or a signature from which no key recovers.
pub fn recover_secp256k1(digest: &[u8], signature: &[u8]) -> Result<[u8; 65], PrimitiveError> {
    use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
    static CONTEXT: std::sync::LazyLock<secp256k1::Secp256k1<secp256k1::VerifyOnly>> =
        std::sync::LazyLock::new(secp256k1::Secp256k1::verification_only);
    let digest: [u8; 32] = digest
        .try_into()
        .map_err(|_| PrimitiveError::Length(format!("digest is {} bytes, not 32", digest.len())))?;
    if signature.len() != 65 {
        return Err(PrimitiveError::Length(format!(
            "signature is {} bytes, not 65 (r || s || v)",
            signature.len()
        )));
    }
    let v = match signature[64] {
        v @ (0 | 1) => v,
        v @ (27 | 28) => v - 27,
        _ => return Err(PrimitiveError::Signature("v must be 0, 1, 27 or 28".into())),
    };
    let id = RecoveryId::try_from(i32::from(v))
        .map_err(|_| PrimitiveError::Signature("bad recovery id".into()))?;
    let sig = RecoverableSignature::from_compact(&signature[..64], id)
        .map_err(|_| PrimitiveError::Signature("r or s out of range".into()))?;
    let key = CONTEXT
        .recover_ecdsa(secp256k1::Message::from_digest(digest), &sig)
        .map_err(|_| PrimitiveError::Signature("no public key recovers".into()))?;
    Ok(key.serialize_uncompressed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;

    #[test]
    fn known_digests() {
        assert_eq!(
            hex::encode(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn p256_verification() {
        let sk = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let pk = sk.verifying_key().to_sec1_bytes();
        let sig: Signature = sk.sign(b"message");
        assert_eq!(
            verify_p256_sha256(&pk, b"message", &sig.to_bytes()),
            Ok(true)
        );
        assert_eq!(
            verify_p256_sha256(&pk, b"message", sig.to_der().as_bytes()),
            Ok(true)
        );
        assert_eq!(
            verify_p256_sha256(&pk, b"other", &sig.to_bytes()),
            Ok(false)
        );
        assert!(verify_p256_sha256(&pk[1..], b"message", &sig.to_bytes()).is_err());
        assert!(verify_p256_sha256(&pk, b"message", &[1, 2, 3]).is_err());
        assert!(constant_time_eq(b"ab", b"ab") && !constant_time_eq(b"ab", b"ac"));
    }

    #[test]
    fn secp256k1_recovery_finds_the_signer() {
        // Signed here with an independent implementation (RustCrypto's k256).
        let sk = k256::ecdsa::SigningKey::from_slice(&[5u8; 32]).unwrap();
        let digest = sha256(b"an EIP-712 signing hash stands here");
        let (sig, id) = sk.sign_prehash_recoverable(&digest).unwrap();
        let mut rsv = sig.to_bytes().to_vec();
        rsv.push(27 + id.to_byte());
        let want = sk.verifying_key().to_encoded_point(false);
        assert_eq!(
            recover_secp256k1(&digest, &rsv).unwrap().as_slice(),
            want.as_bytes()
        );
        rsv[64] -= 27;
        assert_eq!(
            recover_secp256k1(&digest, &rsv).unwrap().as_slice(),
            want.as_bytes()
        );
        // Another digest recovers another key; malformed inputs are errors.
        assert_ne!(
            recover_secp256k1(&sha256(b"x"), &rsv)
                .ok()
                .as_ref()
                .map(|k| &k[..]),
            Some(want.as_bytes())
        );
        rsv[64] = 29;
        assert!(matches!(
            recover_secp256k1(&digest, &rsv),
            Err(PrimitiveError::Signature(_))
        ));
        assert!(matches!(
            recover_secp256k1(&digest[..31], &rsv),
            Err(PrimitiveError::Length(_))
        ));
        assert!(matches!(
            recover_secp256k1(&digest, &rsv[..64]),
            Err(PrimitiveError::Length(_))
        ));
        assert!(recover_secp256k1(&digest, &[0u8; 65]).is_err(), "r = s = 0");
    }
}
