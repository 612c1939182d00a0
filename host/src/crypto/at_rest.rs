//! Encryption at rest: everything the host writes that derives from client data (compiled
//! components, later deployed agents) is sealed with AES-256-GCM-SIV under a host-held key.
//!
//! Sealing gives both confidentiality (the disk of a confidential VM may be readable by the
//! host operator) and integrity: compiled code is only ever loaded after authentication, so a
//! tampered cache file cannot inject native code into the host.
//!
//! ```text
//! sealed = "HVSEAL1\0" (8) || nonce (12) || AES-256-GCM-SIV(key, nonce, plaintext, aad = purpose) (+16 tag)
//! ```

use hypervisor_protocol::aead::{Aead, NONCE_LEN, TAG_LEN};
use zeroize::Zeroizing;

const MAGIC: &[u8; 8] = b"HVSEAL1\0";

/// Why sealed data could not be opened.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SealError {
    /// Wrong format, wrong key, wrong purpose or tampering.
    #[error("sealed data is corrupt, tampered with, or sealed under another key")]
    Corrupt,
    /// Randomness or encryption failed.
    #[error("sealing failed")]
    Seal,
}

/// The host's at-rest key. Zeroized on drop.
pub struct SealingKey {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

impl SealingKey {
    /// From 32 key bytes.
    pub fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> Self {
        Self { key: bytes }
    }

    /// A fresh random key.
    ///
    /// # Errors
    /// [`SealError::Seal`] if the OS refuses randomness.
    pub fn generate() -> Result<Self, SealError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).map_err(|_| SealError::Seal)?;
        Ok(Self { key })
    }

    /// The key bytes (for writing the key file).
    pub fn bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// A key derived for one purpose (HMAC-SHA256 of the purpose label), e.g. to name files
    /// without revealing the hash of their content.
    pub fn derive_name(&self, purpose: &[u8], data: &[u8]) -> [u8; 32] {
        let mut input = Vec::with_capacity(purpose.len() + 1 + data.len());
        input.extend_from_slice(purpose);
        input.push(0);
        input.extend_from_slice(data);
        super::primitives::hmac_sha256(self.key.as_ref(), &input)
    }

    /// Seals `plaintext`; `purpose` is bound as associated data.
    ///
    /// # Errors
    /// [`SealError::Seal`].
    pub fn seal(&self, purpose: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        // Encrypted in place in the output buffer: one copy of the plaintext's size at a time
        // (compiled components sealed for the disk cache are as large as the upload limit).
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Seal)?;
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = Aead::new(&self.key)
            .seal_in_place(&nonce, purpose, &mut out[HEADER_LEN..])
            .map_err(|_| SealError::Seal)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens data sealed by [`Self::seal`] for the same `purpose`.
    ///
    /// # Errors
    /// [`SealError::Corrupt`].
    pub fn open(&self, purpose: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let (nonce, ct) = split(sealed)?;
        Aead::new(&self.key)
            .open(&nonce, purpose, ct)
            .map_err(|_| SealError::Corrupt)
    }

    /// [`Self::open`], decrypting in `sealed`'s own buffer (which becomes the plaintext): no
    /// second buffer of its size. On error the buffer is dropped.
    ///
    /// # Errors
    /// [`SealError::Corrupt`].
    pub fn open_owned(&self, purpose: &[u8], mut sealed: Vec<u8>) -> Result<Vec<u8>, SealError> {
        let (nonce, _) = split(&sealed)?;
        let end = sealed.len() - TAG_LEN;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&sealed[end..]);
        Aead::new(&self.key)
            .open_in_place(&nonce, purpose, &mut sealed[HEADER_LEN..end], &tag)
            .map_err(|_| SealError::Corrupt)?;
        sealed.truncate(end);
        sealed.drain(..HEADER_LEN);
        Ok(sealed)
    }
}

/// The header: magic and nonce.
const HEADER_LEN: usize = MAGIC.len() + NONCE_LEN;

/// The nonce and the ciphertext-and-tag of `sealed`.
fn split(sealed: &[u8]) -> Result<([u8; NONCE_LEN], &[u8]), SealError> {
    let rest = sealed
        .strip_prefix(MAGIC.as_slice())
        .ok_or(SealError::Corrupt)?;
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(SealError::Corrupt);
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(nonce);
    Ok((n, ct))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let k = SealingKey::generate().unwrap();
        let sealed = k.seal(b"p", b"secret code").unwrap();
        assert_eq!(k.open(b"p", &sealed).unwrap(), b"secret code");
        assert_eq!(k.open(b"q", &sealed), Err(SealError::Corrupt));
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(k.open(b"p", &bad), Err(SealError::Corrupt));
        assert_eq!(
            SealingKey::generate().unwrap().open(b"p", &sealed),
            Err(SealError::Corrupt)
        );
        assert!(!sealed.windows(11).any(|w| w == b"secret code"));
        assert_eq!(k.open_owned(b"p", sealed.clone()).unwrap(), b"secret code");
        assert_eq!(k.open_owned(b"q", sealed), Err(SealError::Corrupt));
        assert_eq!(k.open_owned(b"p", bad), Err(SealError::Corrupt));
        assert_eq!(
            k.open_owned(b"p", b"HVSEAL1\0short".to_vec()),
            Err(SealError::Corrupt)
        );
        let empty = k.seal(b"p", b"").unwrap();
        assert_eq!(k.open_owned(b"p", empty.clone()).unwrap(), b"");
        assert_eq!(k.open(b"p", &empty).unwrap(), b"");
    }
}
