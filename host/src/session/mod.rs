//! Encrypted sessions: the in-memory table of session keys.
//!
//! A session is created by `create_keypair`: the host draws a fresh P-256 key pair, derives
//! the session key with the client's public key, and **drops the private key at once**; only
//! the derived symmetric key is kept, in memory, zeroized when the session ends. Sessions
//! expire after a TTL and the table is bounded.
//!
//! A full table makes room rather than refuse: it drops expired sessions, then the
//! **least recently used** ones, a batch at a time (1/64 of the table, so a flood of new sessions
//! costs O(1) amortized work per session, not a scan each). Refusing instead would let anyone
//! who opens `max_sessions` sessions lock every new client out for a whole TTL; with eviction a
//! flood only displaces sessions idle for longer than the flood takes to fill the table, and a
//! client whose session was displaced gets `session_not_found` and opens a new one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hypervisor_protocol::{ClientSecret, EncodedPublicKey, SessionKey};
use uuid::Uuid;

use crate::attestation::AttestedKey;
use crate::clock::unix_seconds;

/// Why a session could not be created or found.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// No session with this id (or, without an id, none for this public key).
    #[error("no session {0}: create one with /encrypt/create_keypair")]
    NotFound(String),
    /// The session existed but its TTL has passed.
    #[error("session {0} has expired: create a new one")]
    Expired(Uuid),
    /// The session belongs to another public key.
    #[error("session {0} was created for a different public key")]
    KeyMismatch(Uuid),
    /// The session was created by another replica of the cluster (its id carries that
    /// replica's tag): sessions live in the memory of the replica that made them.
    #[error("session {0} was created on another replica: open a session on this one")]
    Elsewhere(Uuid, u16),
    /// The OS random number generator failed.
    #[error("random number generation failed")]
    Random,
}

/// One live session.
pub struct Session {
    /// The session id (UUID v7).
    pub id: Uuid,
    /// The client's public key.
    pub client_key: EncodedPublicKey,
    /// The host's session public key.
    pub server_key: EncodedPublicKey,
    /// The derived symmetric key (zeroized on drop).
    pub key: SessionKey,
    /// For verifiable sessions, the attested key that signed the session statement; it also
    /// signs every receipt of the session.
    pub attested: Option<Arc<AttestedKey>>,
    /// Creation time, Unix seconds.
    pub created_unix: u64,
    /// Expiry, Unix seconds.
    pub expires_unix: u64,
    sequence: AtomicU64,
    expires: Instant,
    /// When the session was last created or looked up: milliseconds since the table's epoch.
    last_used_ms: AtomicU64,
}

impl Session {
    /// The next receipt sequence number of this session (1, 2, ...).
    pub fn next_sequence(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::Relaxed) + 1
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Table {
    by_id: HashMap<Uuid, Arc<Session>>,
    /// The newest session of each client key, for requests that name no session.
    newest_by_key: HashMap<EncodedPublicKey, Uuid>,
}

/// The session table. Cheap to share (`Arc`).
pub struct SessionTable {
    table: Mutex<Table>,
    ttl: Duration,
    max: usize,
    /// The origin of `Session::last_used_ms`.
    epoch: Instant,
    /// Sessions dropped to make room, since start.
    evicted: AtomicU64,
    /// The replica's tag, carried in the last two bytes of every session id this table makes
    /// (a cluster's replicas; `None` for a host on its own).
    tag: Option<u16>,
}

/// The replica tag a session id carries, if it is a version 7 UUID (see
/// [`SessionTable::with_tag`]).
pub fn tag_of(id: &Uuid) -> Option<u16> {
    (id.get_version_num() == 7).then(|| {
        let b = id.as_bytes();
        u16::from_be_bytes([b[14], b[15]])
    })
}

impl SessionTable {
    /// An empty table.
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            ttl,
            max: max.max(1),
            epoch: Instant::now(),
            evicted: AtomicU64::new(0),
            tag: None,
        }
    }

    /// The table of a replica with `tag`: its session ids end with the tag (two of the 74
    /// random bits of a UUID v7), so that another replica receiving one can tell it is not a
    /// session that expired but one of a peer's.
    #[must_use]
    pub fn with_tag(mut self, tag: u16) -> Self {
        self.tag = Some(tag);
        self
    }

    /// Why `id` is not in the table: another replica's session, or none at all.
    fn missing(&self, id: Uuid) -> SessionError {
        match (self.tag, tag_of(&id)) {
            (Some(mine), Some(theirs)) if mine != theirs => SessionError::Elsewhere(id, theirs),
            _ => SessionError::NotFound(id.to_string()),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding this lock cannot leave the maps inconsistent in a way that
        // matters (each operation is a few inserts/removes), so recover from poisoning.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Creates a session for `client_key`. When the table is full, expired sessions are
    /// dropped first, then the least recently used ones (see the module documentation).
    ///
    /// # Errors
    /// [`SessionError::Random`].
    pub fn create(
        &self,
        client_key: EncodedPublicKey,
        attested: Option<Arc<AttestedKey>>,
    ) -> Result<Arc<Session>, SessionError> {
        let server_secret = ClientSecret::generate().map_err(|_| SessionError::Random)?;
        let mut id = *Uuid::now_v7().as_bytes();
        if let Some(tag) = self.tag {
            id[14..16].copy_from_slice(&tag.to_be_bytes());
        }
        let id = Uuid::from_bytes(id);
        let key = SessionKey::for_server(&server_secret, &client_key, &id);
        let session = Arc::new(Session {
            id,
            client_key,
            server_key: server_secret.public_key(),
            key,
            attested,
            created_unix: unix_seconds(),
            expires_unix: unix_seconds() + self.ttl.as_secs(),
            sequence: AtomicU64::new(0),
            expires: Instant::now() + self.ttl,
            last_used_ms: AtomicU64::new(self.elapsed_ms()),
        });
        drop(server_secret); // the private half is never needed again

        let mut t = self.lock();
        if t.by_id.len() >= self.max {
            self.make_room(&mut t);
        }
        t.by_id.insert(id, session.clone());
        t.newest_by_key.insert(client_key, id);
        Ok(session)
    }

    /// Finds the session for a request: by id when given (and then it must belong to
    /// `client_key`), otherwise the newest live session of `client_key`.
    ///
    /// # Errors
    /// [`SessionError::NotFound`], [`SessionError::Expired`] or [`SessionError::KeyMismatch`].
    pub fn lookup(
        &self,
        id: Option<Uuid>,
        client_key: &EncodedPublicKey,
    ) -> Result<Arc<Session>, SessionError> {
        let now = Instant::now();
        let mut t = self.lock();
        let id = match id {
            Some(id) => id,
            None => *t.newest_by_key.get(client_key).ok_or_else(|| {
                SessionError::NotFound(format!("for public key {}…", &client_key.to_hex()[..18]))
            })?,
        };
        let session = t.by_id.get(&id).cloned().ok_or_else(|| self.missing(id))?;
        if session.expires <= now {
            Self::remove(&mut t, &session);
            return Err(SessionError::Expired(id));
        }
        if session.client_key != *client_key {
            return Err(SessionError::KeyMismatch(id));
        }
        session
            .last_used_ms
            .store(self.elapsed_ms(), Ordering::Relaxed);
        Ok(session)
    }

    /// Sessions dropped to make room for new ones since the host started.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Frees a batch of places (1/64 of the table, at least one) in a full table: expired
    /// sessions first, then as many of the least recently used as the batch still needs. Each
    /// O(n) pass frees a whole batch, so churn (a flood of new sessions, or old ones expiring a
    /// few at a time) costs O(1) amortized work per new session.
    fn make_room(&self, t: &mut Table) {
        let want = (self.max / 64).max(1);
        Self::purge_expired(t, Instant::now());
        let batch = (t.by_id.len() + want)
            .saturating_sub(self.max)
            .min(t.by_id.len());
        if batch == 0 {
            return;
        }
        let mut by_age: Vec<(u64, Uuid)> = t
            .by_id
            .values()
            .map(|s| (s.last_used_ms.load(Ordering::Relaxed), s.id))
            .collect();
        by_age.select_nth_unstable(batch - 1);
        for (_, id) in &by_age[..batch] {
            if let Some(s) = t.by_id.get(id).cloned() {
                Self::remove(t, &s);
            }
        }
        self.evicted.fetch_add(batch as u64, Ordering::Relaxed);
        tracing::warn!(
            evicted = batch,
            max_sessions = self.max,
            "session table full: dropped the least recently used sessions"
        );
    }

    /// Number of live (not yet purged) sessions.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every expired session (their keys are zeroized once the last request using them
    /// finishes). Returns how many were dropped.
    pub fn sweep(&self) -> usize {
        let mut t = self.lock();
        Self::purge_expired(&mut t, Instant::now())
    }

    fn purge_expired(t: &mut Table, now: Instant) -> usize {
        let expired: Vec<Arc<Session>> = t
            .by_id
            .values()
            .filter(|s| s.expires <= now)
            .cloned()
            .collect();
        for s in &expired {
            Self::remove(t, s);
        }
        expired.len()
    }

    fn remove(t: &mut Table, s: &Session) {
        t.by_id.remove(&s.id);
        if t.newest_by_key.get(&s.client_key) == Some(&s.id) {
            t.newest_by_key.remove(&s.client_key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> EncodedPublicKey {
        ClientSecret::generate().unwrap().public_key()
    }

    #[test]
    fn lookup_by_id_and_by_key() {
        let table = SessionTable::new(Duration::from_secs(60), 10);
        let k = client();
        let s1 = table.create(k, None).unwrap();
        let s2 = table.create(k, None).unwrap();
        assert_eq!(table.lookup(Some(s1.id), &k).unwrap().id, s1.id);
        assert_eq!(
            table.lookup(None, &k).unwrap().id,
            s2.id,
            "newest session wins"
        );
        assert_eq!(
            table.lookup(Some(s1.id), &client()).unwrap_err(),
            SessionError::KeyMismatch(s1.id)
        );
        assert!(matches!(
            table.lookup(Some(Uuid::now_v7()), &k),
            Err(SessionError::NotFound(_))
        ));
    }

    #[test]
    fn expired_sessions_are_refused_and_free_room_first() {
        let table = SessionTable::new(Duration::from_millis(30), 2);
        let k = client();
        table.create(k, None).unwrap();
        let s = table.create(k, None).unwrap();
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(
            table.lookup(Some(s.id), &k).unwrap_err(),
            SessionError::Expired(s.id)
        );
        table.create(k, None).unwrap();
        assert!(table.len() <= 2);
        assert_eq!(table.evicted(), 0, "expired sessions went first");
    }

    #[test]
    fn a_full_table_drops_the_least_recently_used_sessions() {
        let table = SessionTable::new(Duration::from_secs(60), 128);
        let (mine, theirs) = (client(), client());
        let kept = table.create(mine, None).unwrap();
        let idle: Vec<_> = (0..127)
            .map(|_| table.create(theirs, None).unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(5));
        // The oldest session is in use: it must outlive the idle ones created after it.
        table.lookup(Some(kept.id), &mine).unwrap();
        for _ in 0..100 {
            table.create(theirs, None).unwrap();
            assert!(table.len() <= 128);
        }
        assert_eq!(table.lookup(Some(kept.id), &mine).unwrap().id, kept.id);
        assert!(matches!(
            table.lookup(Some(idle[0].id), &theirs),
            Err(SessionError::NotFound(_))
        ));
        // Batches of 128 / 64 = 2: 50 batches for 100 new sessions.
        assert_eq!(table.evicted(), 100);
    }
}

#[cfg(test)]
mod vector_tests {
    use hypervisor_protocol::{
        ClientSecret, EncodedPublicKey, Envelope, Role, SessionKey, vectors,
    };

    /// The host's side of the derivation (server secret + client public key) reproduces the
    /// session key of `docs/test-vectors.json` and opens the client's envelopes.
    #[test]
    fn server_side_derivation_matches_the_vectors() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/test-vectors.json");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let get = |k: &str| v[k].as_str().unwrap().to_string();
        let server = ClientSecret::from_bytes(&hex::decode(get("server_secret")).unwrap()).unwrap();
        let client_pub =
            EncodedPublicKey::from_hex("client_public", &get("client_public")).unwrap();
        let id = uuid::Uuid::parse_str(&get("session_id")).unwrap();
        assert_eq!(id.to_string(), vectors::SESSION_ID);
        let key = SessionKey::for_server(&server, &client_pub, &id);
        assert_eq!(
            hex::encode(key.expose_for_test_vectors()),
            get("session_key")
        );
        let program = hex::decode(v["envelopes"][0]["envelope"].as_str().unwrap()).unwrap();
        let opened = Envelope::new(&key, id)
            .open(Role::Program, &program)
            .unwrap();
        assert_eq!(
            hex::encode(opened),
            v["envelopes"][0]["plaintext"].as_str().unwrap()
        );
    }
}
