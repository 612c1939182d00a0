//! Reuse of decisions the policy marked reusable (`verdict.reuse-ms` in `wit/policy.wit`): a
//! bounded LRU keyed by the whole request-info except the time. A reused decision is exactly the
//! one the policy gave for identical metadata, within the time the policy allowed; loading new
//! rules or a new policy starts from an empty cache (the cache belongs to one loaded policy).

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lru::LruCache;

use super::{Decision, RequestInfo};

/// Everything in a request-info but `now-unix-ms`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Key {
    route: String,
    verifiable: bool,
    kind: u8,
    program_hash: String,
    program_size: u64,
    agent: Option<String>,
    caller_key: String,
    argument_count: u32,
    input_size: u64,
    limits: [Option<u64>; 3],
    payment: Option<[String; 4]>,
}

impl Key {
    pub(super) fn of(r: &RequestInfo) -> Self {
        Self {
            route: r.route.clone(),
            verifiable: r.verifiable,
            kind: r.kind as u8,
            program_hash: r.program_hash.clone(),
            program_size: r.program_size,
            agent: r.agent.clone(),
            caller_key: r.caller_key.clone(),
            argument_count: r.argument_count,
            input_size: r.input_size,
            limits: [r.limits.time_ms, r.limits.memory_bytes, r.limits.fuel],
            payment: r.payment.as_ref().map(|p| {
                [
                    p.amount.clone(),
                    p.asset.clone(),
                    p.network.clone(),
                    p.payer.clone(),
                ]
            }),
        }
    }
}

/// Reusable decisions, with their expiry.
pub(super) struct DecisionCache {
    entries: Mutex<LruCache<Key, (Decision, Instant)>>,
    hits: AtomicU64,
}

impl DecisionCache {
    /// A cache of at most `capacity` decisions; `None` when `capacity` is 0 (never reuse).
    pub(super) fn new(capacity: usize) -> Option<Self> {
        let capacity = NonZeroUsize::new(capacity)?;
        Some(Self {
            entries: Mutex::new(LruCache::new(capacity)),
            hits: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<Key, (Decision, Instant)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The decision stored for `key`, if it has not expired at `now`.
    pub(super) fn get(&self, key: &Key, now: Instant) -> Option<Decision> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some((decision, expires)) if *expires > now => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(decision.clone())
            }
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        }
    }

    /// Stores `decision` for `reuse` from `now` (nothing when `reuse` is zero).
    pub(super) fn put(&self, key: Key, decision: &Decision, reuse: Duration, now: Instant) {
        if !reuse.is_zero() {
            self.lock().put(key, (decision.clone(), now + reuse));
        }
    }

    /// Decisions served from the cache so far.
    pub(super) fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Denial, Limits, ProgramKind};
    use super::*;

    fn info(caller: &str, now: u64) -> RequestInfo {
        RequestInfo {
            route: "/test/execute/wasm".into(),
            verifiable: false,
            kind: ProgramKind::WasmComponent,
            program_hash: "ab".repeat(32),
            program_size: 10,
            agent: None,
            caller_key: caller.into(),
            argument_count: 0,
            input_size: 0,
            limits: Limits {
                time_ms: Some(1),
                memory_bytes: Some(2),
                fuel: None,
            },
            payment: None,
            now_unix_ms: now,
        }
    }

    fn deny() -> Decision {
        Decision::Deny(Denial {
            rule: "r".into(),
            reason: "no".into(),
        })
    }

    #[test]
    fn reuses_only_identical_metadata_within_the_allowed_time() {
        let cache = DecisionCache::new(2).unwrap();
        let t0 = Instant::now();
        let a = Key::of(&info("a", 1));
        cache.put(a.clone(), &deny(), Duration::from_millis(100), t0);
        // The time field is not part of the key; every other field is.
        assert_eq!(Key::of(&info("a", 999)), a);
        assert!(cache.get(&a, t0 + Duration::from_millis(50)).is_some());
        assert!(cache.get(&Key::of(&info("b", 1)), t0).is_none());
        assert!(cache.get(&a, t0 + Duration::from_millis(100)).is_none());
        assert!(cache.get(&a, t0).is_none(), "an expired entry is dropped");
        assert_eq!(cache.hits(), 1);
        // reuse 0: never stored.
        cache.put(a.clone(), &deny(), Duration::ZERO, t0);
        assert!(cache.get(&a, t0).is_none());
        assert!(DecisionCache::new(0).is_none());
    }
}
