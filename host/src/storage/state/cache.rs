//! The read cache of agents' state: recently read values (and absences) by entry id, bounded
//! by `state.cache_bytes` (least recently used first out), on this host only.
//!
//! A read that started before an invalidation must not fill the cache (it may hold the value
//! the invalidation was about): every invalidation bumps a generation, a read notes the
//! generation when it misses, and [`ReadCache::fill`] keeps its value only if no invalidation
//! came in between. So a stale value is never cached after the notification that made it stale.

use std::sync::{Arc, Mutex, MutexGuard};

use zeroize::Zeroizing;

use super::keys::EntryId;

/// A value read: `None` when the key is not set.
pub type Value = Option<Arc<Zeroizing<Vec<u8>>>>;

struct Cached {
    value: Value,
}

impl Cached {
    fn cost(&self) -> usize {
        64 + self.value.as_ref().map_or(0, |v| v.len())
    }
}

struct Inner {
    generation: u64,
    bytes: usize,
    entries: lru::LruCache<EntryId, Cached>,
}

/// The cache (see the module documentation).
pub struct ReadCache {
    budget: usize,
    inner: Mutex<Inner>,
}

impl ReadCache {
    /// A cache of at most `budget` bytes (0: nothing is kept).
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            inner: Mutex::new(Inner {
                generation: 0,
                bytes: 0,
                entries: lru::LruCache::unbounded(),
            }),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached value of `id`, or, on a miss, the generation to [`Self::fill`] with.
    pub fn get(&self, id: &EntryId) -> Result<Value, u64> {
        let mut c = self.inner();
        match c.entries.get(id) {
            Some(hit) => Ok(hit.value.clone()),
            None => Err(c.generation),
        }
    }

    /// Keeps `value` for `id` if nothing was invalidated since `generation` (and it is at most
    /// a sixteenth of the budget).
    pub fn fill(&self, generation: u64, id: EntryId, value: Value) {
        let entry = Cached { value };
        let cost = entry.cost();
        let mut c = self.inner();
        if c.generation != generation || cost > self.budget / 16 {
            return;
        }
        c.bytes += cost;
        if let Some(old) = c.entries.put(id, entry) {
            c.bytes = c.bytes.saturating_sub(old.cost());
        }
        while c.bytes > self.budget {
            match c.entries.pop_lru() {
                Some((_, old)) => c.bytes = c.bytes.saturating_sub(old.cost()),
                None => break,
            }
        }
    }

    /// Drops `id`.
    pub fn invalidate(&self, id: &EntryId) {
        let mut c = self.inner();
        c.generation += 1;
        if let Some(old) = c.entries.pop(id) {
            c.bytes = c.bytes.saturating_sub(old.cost());
        }
    }

    /// Drops everything.
    pub fn clear(&self) {
        let mut c = self.inner();
        c.generation += 1;
        c.entries.clear();
        c.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: &[u8]) -> Value {
        Some(Arc::new(Zeroizing::new(v.to_vec())))
    }

    #[test]
    fn a_read_that_raced_an_invalidation_does_not_fill() {
        let cache = ReadCache::new(1 << 20);
        let id = [1u8; 32];
        let generation = cache.get(&id).unwrap_err();
        // Another replica's change arrives while the read is at the database.
        cache.invalidate(&id);
        cache.fill(generation, id, value(b"stale"));
        assert!(cache.get(&id).is_err(), "the stale value was cached");
        let generation = cache.get(&id).unwrap_err();
        cache.fill(generation, id, value(b"fresh"));
        assert_eq!(cache.get(&id).unwrap().unwrap().as_slice(), b"fresh");
        // Absences are cached too, and a budget of 0 keeps nothing.
        let other = [2u8; 32];
        let g = cache.get(&other).unwrap_err();
        cache.fill(g, other, None);
        assert_eq!(cache.get(&other), Ok(None));
        let none = ReadCache::new(0);
        let g = none.get(&id).unwrap_err();
        none.fill(g, id, value(b"x"));
        assert!(none.get(&id).is_err());
    }

    #[test]
    fn the_budget_evicts_the_least_recently_used() {
        let cache = ReadCache::new(16 * (64 + 100));
        for i in 0..40u8 {
            let g = cache.get(&[i; 32]).unwrap_err();
            cache.fill(g, [i; 32], value(&[i; 100]));
        }
        assert!(cache.get(&[0; 32]).is_err());
        assert!(cache.get(&[39; 32]).is_ok());
        assert!(cache.inner().bytes <= 16 * (64 + 100));
    }
}
