//! The payments that runs on this host hold while their work runs, before anything is
//! recorded: a verify-only payment of side-effect-free work is recorded once, after its run
//! ([`super::Verified::reserve`]), so until then the ledger does not refuse a second request
//! with the same payment. This set does, on this host, before the second one runs: a replay
//! never gets work for free from the replica that holds the first. (On another replica both
//! may run; the ledger's unique replay key lets one answer, and the other's result is
//! withheld.)
//!
//! A payment being reserved (the other path: a payment with an identifier) is held too, while
//! its reservation is written, so that a run recording after it does not start meanwhile;
//! requests reserving the same payment do not refuse each other (the ledger decides between
//! them, and a retry under a payment identifier is told that its first is in progress).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, PoisonError};

/// The replay keys of payments held by runs in flight.
#[derive(Debug, Default)]
pub struct Claims(Mutex<HashMap<String, Hold>>);

/// Who holds one replay key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// A run that records the payment after it: nobody else may hold the key.
    AfterRun,
    /// This many requests writing a reservation of the payment.
    Reserving(u32),
}

/// A replay key held by one request; dropped, its hold ends.
#[derive(Debug)]
pub(super) struct Claim {
    claims: Arc<Claims>,
    key: String,
}

impl Claims {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Hold>> {
        // A panic while the map was held leaves it whole (each change is one map operation).
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn claim_of(self: &Arc<Self>, key: &str) -> Claim {
        Claim {
            claims: self.clone(),
            key: key.to_owned(),
        }
    }

    /// Holds `key` for a run that records its payment after it: `None` if any request on
    /// this host holds it.
    pub(super) fn claim(self: &Arc<Self>, key: &str) -> Option<Claim> {
        match self.held().entry(key.to_owned()) {
            Entry::Occupied(_) => return None,
            Entry::Vacant(free) => {
                free.insert(Hold::AfterRun);
            }
        }
        Some(self.claim_of(key))
    }

    /// Holds `key` while a reservation of its payment is written: `None` if a run that
    /// records it after itself holds it.
    pub(super) fn claim_reserving(self: &Arc<Self>, key: &str) -> Option<Claim> {
        match self.held().entry(key.to_owned()) {
            Entry::Occupied(mut held) => match held.get_mut() {
                Hold::AfterRun => return None,
                Hold::Reserving(n) => *n += 1,
            },
            Entry::Vacant(free) => {
                free.insert(Hold::Reserving(1));
            }
        }
        Some(self.claim_of(key))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut held = self.claims.held();
        if let Entry::Occupied(mut hold) = held.entry(std::mem::take(&mut self.key)) {
            match hold.get_mut() {
                Hold::Reserving(n) if *n > 1 => *n -= 1,
                _ => {
                    hold.remove();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_recorded_after_its_run_is_held_once_until_its_claim_is_dropped() {
        let claims = Arc::new(Claims::default());
        let first = claims.claim("k").unwrap();
        assert!(claims.claim("k").is_none(), "held");
        assert!(claims.claim_reserving("k").is_none(), "held");
        let other = claims.claim("j").unwrap();
        assert_eq!(claims.held().len(), 2);
        drop(first);
        let again = claims.claim("k").unwrap();
        drop((again, other));
        assert!(claims.held().is_empty());
    }

    #[test]
    fn reservations_of_one_key_do_not_refuse_each_other_and_hold_it_until_the_last_ends() {
        let claims = Arc::new(Claims::default());
        let (a, b) = (
            claims.claim_reserving("k").unwrap(),
            claims.claim_reserving("k").unwrap(),
        );
        assert!(claims.claim("k").is_none(), "held by the reservations");
        drop(a);
        assert!(claims.claim("k").is_none(), "still held by one");
        drop(b);
        assert!(claims.held().is_empty());
        assert!(claims.claim("k").is_some());
    }
}
