//! The payments that runs on this host hold while their work runs, before anything is
//! recorded: a verify-only payment of side-effect-free work is recorded once, after its run
//! ([`super::Verified::reserve`]), so until then the ledger does not refuse a second request
//! with the same payment. This set does, on this host, before the second one runs: a replay
//! never gets work for free from the replica that holds the first. (On another replica both
//! may run; the ledger's unique replay key lets one answer, and the other's result is
//! withheld.)

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

/// The replay keys of payments held by runs in flight.
#[derive(Debug, Default)]
pub struct Claims(Mutex<HashSet<String>>);

/// A replay key held by one run; dropped, the key is free again.
#[derive(Debug)]
pub(super) struct Claim {
    claims: Arc<Claims>,
    key: String,
}

impl Claims {
    /// Holds `key` for one run: `None` if another run holds it.
    pub(super) fn claim(self: &Arc<Self>, key: &str) -> Option<Claim> {
        // A panic while the set was held leaves it whole (inserts and removes are atomic).
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        held.insert(key.to_owned()).then(|| Claim {
            claims: self.clone(),
            key: key.to_owned(),
        })
    }

    /// How many keys are held.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.claims
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_held_once_until_its_claim_is_dropped() {
        let claims = Arc::new(Claims::default());
        let first = claims.claim("k").unwrap();
        assert!(claims.claim("k").is_none(), "held");
        let other = claims.claim("j").unwrap();
        assert_eq!(claims.held(), 2);
        drop(first);
        let again = claims.claim("k").unwrap();
        drop((again, other));
        assert_eq!(claims.held(), 0);
    }
}
