//! Room held for A2A tasks admitted and not stored yet: a blocking send's task is stored once,
//! with its outcome (`http::a2a::tasks`), and counts against the bounds on stored tasks from
//! its admission, as if stored.

use std::collections::HashMap;

/// Tasks held per usage key (`a2a_usage`'s keys), and their bytes in all.
#[derive(Debug, Default)]
pub struct Promised {
    tasks: HashMap<String, u64>,
    bytes: u64,
}

impl Promised {
    /// Tasks held under `key`.
    pub fn tasks(&self, key: &str) -> u64 {
        self.tasks.get(key).copied().unwrap_or(0)
    }

    /// Bytes held, all keys.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Holds one task of `bytes` under `key`.
    pub fn add(&mut self, key: String, bytes: u64) {
        *self.tasks.entry(key).or_default() += 1;
        self.bytes = self.bytes.saturating_add(bytes);
    }

    /// Gives back one task of `bytes` under `key` (a key left with none is dropped).
    pub fn remove(&mut self, key: &str, bytes: u64) {
        if let Some(n) = self.tasks.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.tasks.remove(key);
            }
        }
        self.bytes = self.bytes.saturating_sub(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_counted_until_given_back() {
        let mut p = Promised::default();
        p.add("caller:a".into(), 10);
        p.add("caller:a".into(), 5);
        p.add("anonymous:echo".into(), 1);
        assert_eq!(
            (p.tasks("caller:a"), p.tasks("anonymous:echo"), p.bytes()),
            (2, 1, 16)
        );
        p.remove("caller:a", 10);
        p.remove("anonymous:echo", 1);
        assert_eq!(
            (p.tasks("caller:a"), p.tasks("anonymous:echo"), p.bytes()),
            (1, 0, 5)
        );
        p.remove("caller:a", 5);
        assert!(p.tasks.is_empty());
        assert_eq!(p.bytes(), 0);
    }
}
