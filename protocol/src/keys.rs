//! P-256 keys: parsing and canonical encoding of public keys, and a zeroizing secret key.

use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{PublicKey, SecretKey};
use zeroize::Zeroizing;

use crate::ProtocolError;

/// Length of an uncompressed SEC1 P-256 point (`0x04 || X || Y`).
pub const UNCOMPRESSED_LEN: usize = 65;

/// A validated P-256 public key in its canonical form: SEC1 uncompressed, 65 bytes.
///
/// Both compressed (33 bytes) and uncompressed (65 bytes) encodings are accepted on input;
/// every derivation and comparison uses the uncompressed form.
#[derive(Clone, Copy)]
pub struct EncodedPublicKey {
    bytes: [u8; UNCOMPRESSED_LEN],
    key: PublicKey,
}

impl PartialEq for EncodedPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for EncodedPublicKey {}

impl std::hash::Hash for EncodedPublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl std::fmt::Debug for EncodedPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncodedPublicKey({})", self.to_hex())
    }
}

impl EncodedPublicKey {
    /// Parses SEC1 bytes (compressed or uncompressed), rejecting the identity and points off
    /// the curve.
    ///
    /// # Errors
    /// [`ProtocolError::PublicKey`] with the reason.
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, ProtocolError> {
        match bytes.len() {
            33 | 65 => {}
            n => {
                return Err(ProtocolError::PublicKey(format!(
                    "expected 33 (compressed) or 65 (uncompressed) bytes, got {n}"
                )));
            }
        }
        let key = PublicKey::from_sec1_bytes(bytes)
            .map_err(|_| ProtocolError::PublicKey("not a point on P-256".into()))?;
        Ok(Self::from_key(&key))
    }

    /// Parses hex-encoded SEC1 bytes.
    ///
    /// # Errors
    /// [`ProtocolError::Hex`] or [`ProtocolError::PublicKey`].
    pub fn from_hex(field: &str, hex_str: &str) -> Result<Self, ProtocolError> {
        let bytes = crate::wire::decode_hex(field, hex_str)?;
        Self::from_sec1(&bytes)
    }

    /// Canonical encoding of a key.
    pub fn from_key(key: &PublicKey) -> Self {
        let point = key.to_sec1_point(false);
        let mut bytes = [0u8; UNCOMPRESSED_LEN];
        bytes.copy_from_slice(point.as_bytes());
        Self { bytes, key: *key }
    }

    /// The 65 bytes.
    pub fn as_bytes(&self) -> &[u8; UNCOMPRESSED_LEN] {
        &self.bytes
    }

    /// Lowercase hex of the 65 bytes.
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    /// The key as a curve point.
    pub fn to_key(&self) -> PublicKey {
        self.key
    }
}

/// A P-256 secret key (a client's long-term key, or a server session key before derivation).
/// Zeroized on drop by `p256`.
#[derive(Clone)]
pub struct ClientSecret(SecretKey);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(..)")
    }
}

impl ClientSecret {
    /// A fresh random key from the OS CSPRNG.
    ///
    /// # Errors
    /// [`ProtocolError::Random`] if the OS refuses randomness.
    pub fn generate() -> Result<Self, ProtocolError> {
        loop {
            let mut bytes = Zeroizing::new([0u8; 32]);
            crate::fill_random(bytes.as_mut())?;
            // A 256-bit string is a valid scalar unless it is zero or >= n (probability
            // about 2^-32); draw again in that case.
            if let Ok(key) = SecretKey::from_slice(bytes.as_ref()) {
                return Ok(Self(key));
            }
        }
    }

    /// From the 32-byte big-endian scalar.
    ///
    /// # Errors
    /// [`ProtocolError::SecretKey`] if it is zero or not below the group order.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        SecretKey::from_slice(bytes)
            .map(Self)
            .map_err(|_| ProtocolError::SecretKey)
    }

    /// The 32-byte big-endian scalar, in a zeroizing buffer.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes().into())
    }

    /// The public key, canonically encoded.
    pub fn public_key(&self) -> EncodedPublicKey {
        EncodedPublicKey::from_key(&self.0.public_key())
    }

    /// ECDH: the x-coordinate of `self * peer` (32 bytes), zeroized on drop.
    pub fn diffie_hellman(&self, peer: &EncodedPublicKey) -> Zeroizing<[u8; 32]> {
        let shared =
            p256::ecdh::diffie_hellman(self.0.to_nonzero_scalar(), peer.to_key().as_affine());
        Zeroizing::new((*shared.raw_secret_bytes()).into())
    }
}
