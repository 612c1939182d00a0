//! SHA-256 of programs seen recently, without hashing them again.
//!
//! Every encrypted execution sends its program, and the host needs the program's SHA-256 (the
//! compiled-component cache's key, the code hash of results, records and receipts). For a
//! client that runs the same component again and again, hashing it is the largest single cost
//! of a request (an 86 KB component: ~45 µs of SHA-256 on this machine, against ~5 µs for a
//! keyed non-cryptographic hash and a byte comparison). [`DigestMemo`] remembers the SHA-256 of
//! recent programs under a keyed [`rapidhash`] of their bytes and gives it back **only after
//! comparing the bytes in full** with the remembered program's: a collision of the fast hash
//! (or a crafted one) costs a SHA-256, never a wrong digest.
//!
//! What it remembers are plaintext programs (zeroized when evicted, like every [`Plaintext`]),
//! bounded by bytes. Whether a program was run recently is already observable through the
//! compiled-component cache's timing; the memo adds no new observation.

use std::sync::{Arc, Mutex};

use lru::LruCache;
use rapidhash::v3::{RapidSecrets, rapidhash_v3_seeded};

use super::plaintext::Plaintext;
use super::primitives::sha256;

/// Programs shorter than this are simply hashed (the memo would not pay for itself).
const MIN_BYTES: usize = 4096;

/// A remembered program and its SHA-256.
struct Seen {
    bytes: Arc<Plaintext>,
    sha256: [u8; 32],
}

/// Remembered programs, least recently used first out, and their total size.
struct Memo {
    seen: LruCache<u64, Seen>,
    bytes: usize,
}

/// SHA-256 of recently seen programs (see the module's documentation).
pub struct DigestMemo {
    secrets: RapidSecrets,
    memo: Mutex<Memo>,
    max_bytes: usize,
}

impl DigestMemo {
    /// A memo remembering at most `max_bytes` of programs (0: none; every call hashes).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            secrets: RapidSecrets::seed(random_seed()),
            memo: Mutex::new(Memo {
                seen: LruCache::unbounded(),
                bytes: 0,
            }),
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memo> {
        self.memo.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The SHA-256 of `program`: remembered if these exact bytes were seen recently, else
    /// computed (and remembered).
    pub fn sha256(&self, program: &Arc<Plaintext>) -> [u8; 32] {
        if program.len() < MIN_BYTES || program.len() > self.max_bytes {
            return sha256(program);
        }
        let key = rapidhash_v3_seeded(program, &self.secrets);
        let candidate = self
            .lock()
            .seen
            .get(&key)
            .map(|s| (s.bytes.clone(), s.sha256));
        if let Some((bytes, digest)) = candidate
            && bytes.as_ref()[..] == program.as_ref()[..]
        {
            return digest;
        }
        let digest = sha256(program);
        let mut memo = self.lock();
        if let Some(old) = memo.seen.put(
            key,
            Seen {
                bytes: program.clone(),
                sha256: digest,
            },
        ) {
            memo.bytes -= old.bytes.len();
        }
        memo.bytes += program.len();
        while memo.bytes > self.max_bytes {
            match memo.seen.pop_lru() {
                Some((_, out)) => memo.bytes -= out.bytes.len(),
                None => break,
            }
        }
        digest
    }
}

/// A seed from the OS (a fixed one if it has none to give: the memo stays correct, only
/// collisions become predictable, which costs a SHA-256 each).
fn random_seed() -> u64 {
    let mut seed = [0u8; 8];
    let _ = getrandom::fill(&mut seed);
    u64::from_le_bytes(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(fill: u8, len: usize) -> Arc<Plaintext> {
        Arc::new(Plaintext::new(vec![fill; len]))
    }

    #[test]
    fn gives_the_sha256_of_the_bytes_remembered_or_not() {
        let memo = DigestMemo::new(1 << 20);
        for p in [
            program(1, 10),
            program(2, 8192),
            program(2, 8192),
            program(3, 8193),
        ] {
            assert_eq!(memo.sha256(&p), sha256(&p));
        }
        // Two different programs under one fast-hash key (forced here): the byte comparison
        // refuses the remembered digest.
        let (a, b) = (program(4, 5000), program(5, 5000));
        let key = rapidhash_v3_seeded(&a, &memo.secrets);
        memo.lock().seen.put(
            key,
            Seen {
                bytes: b.clone(),
                sha256: sha256(&b),
            },
        );
        assert_eq!(memo.sha256(&a), sha256(&a));
    }

    #[test]
    fn stays_within_its_bytes() {
        let memo = DigestMemo::new(20_000);
        for fill in 0..10 {
            memo.sha256(&program(fill, 6000));
        }
        let m = memo.lock();
        assert!(m.bytes <= 20_000, "{}", m.bytes);
        assert_eq!(m.seen.len(), 3);
        assert_eq!(m.bytes, 18_000);
    }
}
