//! A byte-budgeted, least-recently-used read cache with an invalidation generation, for the
//! stores that keep records read from the database (agents' records, their configurations).
//!
//! A value read from the database is cached only if nothing was forgotten since the read
//! began (the read may have returned what a change, here or on another replica, has just
//! replaced); an entry weighing more than a sixteenth of the budget is answered, not kept;
//! past the budget the least recently used entries go.

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

/// The cache.
pub struct Weighed<K: Hash + Eq, V> {
    budget: usize,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K: Hash + Eq, V> {
    generation: u64,
    bytes: usize,
    entries: lru::LruCache<K, (V, usize)>,
}

impl<K: Hash + Eq, V: Clone> Weighed<K, V> {
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

    fn inner(&self) -> MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached value of `key` if `fresh` says it still is, or, on a miss, the generation
    /// to [`Self::fill`] with.
    pub fn get<Q>(&self, key: &Q, fresh: impl Fn(&V) -> bool) -> Result<V, u64>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut c = self.inner();
        match c.entries.get(key) {
            Some((value, _)) if fresh(value) => Ok(value.clone()),
            _ => Err(c.generation),
        }
    }

    /// Keeps `value` for `key`, weighing `bytes`, read at `generation` ([`Self::get`]'s): not
    /// if something was forgotten since, nor if it weighs more than a sixteenth of the budget.
    pub fn fill(&self, key: K, value: V, bytes: usize, generation: u64) {
        if self.budget == 0 || bytes > self.budget / 16 {
            return;
        }
        let mut evicted = Vec::new();
        {
            let mut c = self.inner();
            if c.generation != generation {
                return;
            }
            if let Some((_, (old, weight))) = c.entries.push(key, (value, bytes)) {
                c.bytes -= weight;
                evicted.push(old);
            }
            c.bytes += bytes;
            while c.bytes > self.budget {
                let Some((_, (old, weight))) = c.entries.pop_lru() else {
                    break;
                };
                c.bytes -= weight;
                evicted.push(old);
            }
        }
        // (Dropped after the lock.)
        drop(evicted);
    }

    /// Drops `key`'s entry (changed here or elsewhere); reads under way are not kept.
    pub fn forget<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut c = self.inner();
        c.generation += 1;
        if let Some((_, weight)) = c.entries.pop(key) {
            c.bytes -= weight;
        }
    }

    /// Drops every entry (changes possibly missed); reads under way are not kept.
    pub fn forget_all(&self) {
        let mut c = self.inner();
        c.generation += 1;
        c.entries.clear();
        c.bytes = 0;
    }

    /// Bytes kept now.
    pub fn bytes(&self) -> usize {
        self.inner().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_within_the_budget_least_recent_first_and_not_across_a_forget() {
        let cache: Weighed<u32, u32> = Weighed::new(1600);
        for key in 0..20 {
            let generation = cache.get(&key, |_| true).unwrap_err();
            cache.fill(key, key, 100, generation);
            assert!(cache.bytes() <= 1600);
        }
        assert!(cache.get(&0, |_| true).is_err(), "the oldest went");
        assert_eq!(cache.get(&19, |_| true), Ok(19));
        // Too heavy to keep (over a sixteenth).
        let generation = cache.get(&99, |_| true).unwrap_err();
        cache.fill(99, 99, 101, generation);
        assert!(cache.get(&99, |_| true).is_err());
        // A read that began before a forget is not kept.
        let generation = cache.get(&50, |_| true).unwrap_err();
        cache.forget(&7);
        cache.fill(50, 50, 10, generation);
        assert!(cache.get(&50, |_| true).is_err());
        // A stale entry is a miss.
        assert!(cache.get(&19, |_| false).is_err());
        cache.forget_all();
        assert_eq!(cache.bytes(), 0);
        // Nothing kept with no budget.
        let none: Weighed<u32, u32> = Weighed::new(0);
        none.fill(1, 1, 0, 0);
        none.fill(2, 2, 1, 0);
        assert!(none.get(&2, |_| true).is_err());
    }
}
