//! AES-256-GCM-SIV (RFC 8452), the one AEAD of every sealed structure of the system: session
//! envelopes ([`crate::envelope`]), cluster-key grants ([`crate::cluster`]), and the host's own
//! files at rest and upload spools.
//!
//! Non-generic wrappers around the `aes-gcm-siv` crate, so that the cipher's generic code is
//! instantiated in this crate, once, and every user runs it at this crate's optimisation level.
//! The workspace builds this crate optimised in its development profile too (`Cargo.toml`):
//! instantiated in the host crate instead, unoptimised test builds spent ~80 % of every test
//! server's start-up opening the sealed plug-in cache with debug-checked AES.
//!
//! No function here is `#[inline]`: inlined into a caller, the generic code would be compiled
//! there again, at the caller's optimisation level.

use aes_gcm_siv::aead::{Aead as _, AeadInOut, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce, Tag};

/// Bytes of a nonce.
pub const NONCE_LEN: usize = 12;
/// Bytes of a tag.
pub const TAG_LEN: usize = 16;

/// Sealing or opening failed: for opening, a wrong key, nonce or associated data, or tampering;
/// for sealing, a message longer than the cipher allows (2^36 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("AES-256-GCM-SIV failed (wrong key, tampered data, or a message too long)")]
pub struct AeadError;

/// An AES-256-GCM-SIV key, expanded. Its key schedule is wiped on drop (the workspace enables
/// the `zeroize` features of `aes` and `aes-gcm-siv`), each clone's too.
#[derive(Clone)]
pub struct Aead {
    cipher: Aes256GcmSiv,
}

impl std::fmt::Debug for Aead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Aead(..)")
    }
}

impl Aead {
    /// Expands `key`.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256GcmSiv::new(key.into()),
        }
    }

    /// `msg` sealed under `nonce` with `aad`: ciphertext followed by the 16-byte tag.
    ///
    /// # Errors
    /// [`AeadError`] for a message too long.
    pub fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        msg: &[u8],
    ) -> Result<Vec<u8>, AeadError> {
        self.cipher
            .encrypt(&Nonce::from(*nonce), Payload { msg, aad })
            .map_err(|_| AeadError)
    }

    /// The plaintext of `sealed` (ciphertext and tag, as [`Self::seal`] gives it).
    ///
    /// # Errors
    /// [`AeadError`] unless key, nonce and `aad` are those it was sealed with and it is intact.
    pub fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, AeadError> {
        self.cipher
            .decrypt(&Nonce::from(*nonce), Payload { msg: sealed, aad })
            .map_err(|_| AeadError)
    }

    /// Seals `buf` in place; returns the tag.
    ///
    /// # Errors
    /// [`AeadError`] for a message too long.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], AeadError> {
        self.cipher
            .encrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into())
            .map(Into::into)
            .map_err(|_| AeadError)
    }

    /// Opens `buf`, sealed in place with `tag`, in place.
    ///
    /// # Errors
    /// [`AeadError`] as [`Self::open`]; `buf` is then left as it was.
    pub fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        self.cipher
            .decrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into(), &Tag::from(*tag))
            .map_err(|_| AeadError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8452, appendix C.2 (AEAD_AES_256_GCM_SIV), the first vector with a plaintext: an
    /// 8-byte message, no associated data.
    #[test]
    fn rfc_8452_vector() {
        let mut key = [0u8; 32];
        key[0] = 1;
        let mut nonce = [0u8; NONCE_LEN];
        nonce[0] = 3;
        let msg = [1, 0, 0, 0, 0, 0, 0, 0];
        let aead = Aead::new(&key);
        let sealed = aead.seal(&nonce, b"", &msg).unwrap();
        assert_eq!(
            hex::encode(&sealed),
            "c2ef328e5c71c83b843122130f7364b761e0b97427e3df28"
        );
        assert_eq!(aead.open(&nonce, b"", &sealed).unwrap(), msg);

        let mut buf = msg;
        let tag = aead.seal_in_place(&nonce, b"", &mut buf).unwrap();
        assert_eq!([&buf[..], &tag[..]].concat(), sealed);
        aead.open_in_place(&nonce, b"", &mut buf, &tag).unwrap();
        assert_eq!(buf, msg);
    }

    #[test]
    fn tampering_wrong_aad_and_wrong_key_fail() {
        let aead = Aead::new(&[7; 32]);
        let nonce = [9; NONCE_LEN];
        let mut sealed = aead.seal(&nonce, b"purpose", b"secret").unwrap();
        assert_eq!(aead.open(&nonce, b"other", &sealed), Err(AeadError));
        assert_eq!(
            Aead::new(&[8; 32]).open(&nonce, b"purpose", &sealed),
            Err(AeadError)
        );
        sealed[0] ^= 1;
        assert_eq!(aead.open(&nonce, b"purpose", &sealed), Err(AeadError));

        let mut buf = *b"secret";
        let mut tag = aead.seal_in_place(&nonce, b"", &mut buf).unwrap();
        tag[15] ^= 1;
        let before = buf;
        assert_eq!(
            aead.open_in_place(&nonce, b"", &mut buf, &tag),
            Err(AeadError)
        );
        assert_eq!(buf, before, "a failed open leaves the buffer as it was");
    }
}
