//! Decrypted data — programs, arguments, inputs and outputs — wiped from memory when its last
//! holder lets go, so a request's plaintext does not outlive the request in freed memory.
//!
//! [`Plaintext`] owns bytes and zeroizes them on drop; [`bytes`] makes a shareable [`Bytes`]
//! over it (the wipe happens when the last clone drops).

use std::ops::Deref;

use bytes::Bytes;

/// Bytes that are zeroized when dropped.
#[derive(Default, PartialEq, Eq)]
pub struct Plaintext(Vec<u8>);

impl Plaintext {
    /// Takes ownership of `bytes` (not copied: the buffer itself is wiped on drop).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl Deref for Plaintext {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Plaintext {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Plaintext {
    fn drop(&mut self) {
        // The bytes written, not the whole capacity: a capture buffer reserves its cap up front
        // and writing zeros over untouched pages would fault them in for nothing. The buffer
        // never reallocates while it is a `Plaintext`, so nothing was written beyond `len`.
        wipe(&mut self.0);
    }
}

/// Overwrites `bytes` with zeros in a way the compiler keeps although the bytes are about to
/// be freed: one `memset` (`fill`), then [`std::hint::black_box`] on the slice, which the
/// compiler must assume reads it (rustc lowers it to an empty `asm!` that takes the pointer and
/// clobbers memory), so the zeros cannot be dropped as dead stores. `zeroize`'s slice
/// implementation writes one volatile byte at a time: 17–20 µs for an 86 KB program on this
/// machine, against 1.8 µs for this (`docs/PERFORMANCE.md`).
pub fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(&*bytes);
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

impl zeroize::ZeroizeOnDrop for Plaintext {}

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the content: it is a request's plaintext.
        write!(f, "Plaintext({} bytes)", self.0.len())
    }
}

/// A [`Bytes`] over `plaintext` (no copy), wiped when its last clone drops.
pub fn bytes(plaintext: Vec<u8>) -> Bytes {
    Bytes::from_owner(Plaintext(plaintext))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}

    #[test]
    fn plaintext_is_wiped_on_drop_and_never_printed() {
        wiped_on_drop::<Plaintext>();
        let p = Plaintext::new(b"secret input".to_vec());
        assert_eq!(&*p, b"secret input");
        assert_eq!(format!("{p:?}"), "Plaintext(12 bytes)");
        let shared = bytes(b"another".to_vec());
        let clone = shared.clone();
        drop(shared);
        assert_eq!(&clone[..], b"another");
    }

    #[test]
    fn wipe_zeroes_every_byte() {
        let mut buffer = vec![0xA5_u8; 100_003];
        wipe(&mut buffer);
        assert!(buffer.iter().all(|&b| b == 0));
    }
}
