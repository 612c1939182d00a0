//! The runs of host processes that share a database: who is alive (a heartbeat), which replica
//! each is, and the tag its session ids carry ([`crate::cluster`]). On the embedded backend
//! one process owns the data directory, so the only member is the running process
//! ([`Solo`]); on PostgreSQL every replica's run is a row of `cluster_members`.

use std::sync::Mutex;

use super::StorageError;

/// One run of a host process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The run's id (random, drawn at start-up).
    pub run: String,
    /// The replica's name (`cluster.replica_id`).
    pub replica: String,
    /// The 16-bit tag of the replica's session ids.
    pub tag: u16,
    /// Its attested signing key (hex), empty without attestation.
    pub signing_key: String,
    /// Where it serves (its public base URL), if known.
    pub url: String,
    /// Started, Unix milliseconds.
    pub started_ms: u64,
    /// Last heartbeat, Unix milliseconds.
    pub heartbeat_ms: u64,
}

/// The interface of the member table.
pub trait Members: Send + Sync {
    /// Records `member` (replacing a row of the same run).
    ///
    /// # Errors
    /// [`StorageError`].
    fn join(&self, member: &Member) -> Result<(), StorageError>;

    /// Records that `run` is alive at `now_ms`; also updates its public URL.
    ///
    /// # Errors
    /// [`StorageError`].
    fn heartbeat(&self, run: &str, url: &str, now_ms: u64) -> Result<(), StorageError>;

    /// Removes `run` (a clean stop), and runs silent since before `forget_before_ms`.
    ///
    /// # Errors
    /// [`StorageError`].
    fn leave(&self, run: &str, forget_before_ms: u64) -> Result<(), StorageError>;

    /// Every member, newest heartbeat first.
    ///
    /// # Errors
    /// [`StorageError`].
    fn list(&self) -> Result<Vec<Member>, StorageError>;
}

/// The member table of a host that shares its storage with nobody: itself, in memory.
#[derive(Debug, Default)]
pub struct Solo(Mutex<Option<Member>>);

impl Members for Solo {
    fn join(&self, member: &Member) -> Result<(), StorageError> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(member.clone());
        Ok(())
    }

    fn heartbeat(&self, run: &str, url: &str, now_ms: u64) -> Result<(), StorageError> {
        if let Some(m) = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
            .filter(|m| m.run == run)
        {
            m.heartbeat_ms = now_ms;
            m.url = url.to_string();
        }
        Ok(())
    }

    fn leave(&self, run: &str, _forget_before_ms: u64) -> Result<(), StorageError> {
        let mut me = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if me.as_ref().is_some_and(|m| m.run == run) {
            *me = None;
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<Member>, StorageError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect())
    }
}
