//! Sealing a stream chunk by chunk under a key that exists only in this process: what an upload
//! spool ([`crate::storage::spool`]) writes to disk while a large body arrives.
//!
//! ```text
//! chunk i on disk = AES-256-GCM-SIV(key, nonce = i as 12 bytes little-endian, chunk_i, aad = purpose) || tag (16)
//! ```
//!
//! The key is random per stream, never written anywhere and wiped on drop, so what reaches the
//! disk (readable by the operator of a confidential VM) is ciphertext, and nothing sealed under
//! one stream's key opens under another's. The index as the nonce binds every chunk to its
//! place: a reordered or swapped chunk fails to open; the reader, which knows how many chunks
//! it wrote, also notices a dropped one.

/// Bytes of the tag after each sealed chunk (the AEAD's tag).
pub use hypervisor_protocol::aead::TAG_LEN;
use hypervisor_protocol::aead::{Aead, NONCE_LEN};
use zeroize::Zeroizing;

use super::at_rest::SealError;

/// One stream's key (its AES key schedule wipes itself on drop, see [`Aead`]).
pub struct ChunkKey {
    cipher: Aead,
    purpose: &'static [u8],
}

impl std::fmt::Debug for ChunkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChunkKey(..)")
    }
}

impl ChunkKey {
    /// A fresh random key for one stream; `purpose` is bound into every chunk.
    ///
    /// # Errors
    /// [`SealError::Seal`] if the OS refuses randomness.
    pub fn generate(purpose: &'static [u8]) -> Result<Self, SealError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).map_err(|_| SealError::Seal)?;
        Ok(Self {
            cipher: Aead::new(&key),
            purpose,
        })
    }

    /// Seals chunk `index` in place and returns its tag.
    ///
    /// # Errors
    /// [`SealError::Seal`] (a chunk too large for the cipher).
    pub fn seal(&self, index: u64, chunk: &mut [u8]) -> Result<[u8; TAG_LEN], SealError> {
        self.cipher
            .seal_in_place(&nonce(index), self.purpose, chunk)
            .map_err(|_| SealError::Seal)
    }

    /// Opens chunk `index` in place, checking its tag.
    ///
    /// # Errors
    /// [`SealError::Corrupt`]: tampered with, out of place, or sealed under another key.
    pub fn open(&self, index: u64, chunk: &mut [u8], tag: &[u8; TAG_LEN]) -> Result<(), SealError> {
        self.cipher
            .open_in_place(&nonce(index), self.purpose, chunk, tag)
            .map_err(|_| SealError::Corrupt)
    }
}

/// The nonce of chunk `index`: the index, little-endian, in 12 bytes.
fn nonce(index: u64) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..8].copy_from_slice(&index.to_le_bytes());
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_open_only_in_place_and_under_their_key() {
        let key = ChunkKey::generate(b"p").unwrap();
        let mut chunk = b"confidential component bytes".to_vec();
        let tag = key.seal(3, &mut chunk).unwrap();
        assert_ne!(chunk, b"confidential component bytes");
        let sealed = chunk.clone();

        key.open(3, &mut chunk, &tag).unwrap();
        assert_eq!(chunk, b"confidential component bytes");

        // out of place
        let mut moved = sealed.clone();
        assert_eq!(key.open(4, &mut moved, &tag), Err(SealError::Corrupt));
        // another stream's key, or another purpose
        let mut other = sealed.clone();
        let stranger = ChunkKey::generate(b"p").unwrap();
        assert_eq!(stranger.open(3, &mut other, &tag), Err(SealError::Corrupt));
        let mut other = sealed.clone();
        let elsewhere = ChunkKey {
            cipher: key.cipher.clone(),
            purpose: b"q",
        };
        assert_eq!(elsewhere.open(3, &mut other, &tag), Err(SealError::Corrupt));
        // a flipped bit
        let mut flipped = sealed;
        flipped[0] ^= 1;
        assert_eq!(key.open(3, &mut flipped, &tag), Err(SealError::Corrupt));
    }
}
