//! Sessions that renew themselves: in front of a cluster's replicas, a session lives in the
//! memory of the replica that created it, and a request that a load balancer sends to another
//! replica is answered 421 `session_on_other_replica`. [`RenewingSession`] keeps the client's
//! key, and [`Client::with_session`] opens a new session on the replica that answered and sends
//! the request once more: the caller never sees the 421. The same holds for a session that
//! expired or was displaced (`session_expired`, `session_not_found`).

use std::sync::{Arc, Mutex};

use hypervisor_protocol::{ClientSecret, ErrorCode};

use crate::{Client, ClientError, Session, verify};

/// A session and what it takes to open another like it.
pub struct RenewingSession {
    secret: ClientSecret,
    /// For verifiable sessions: the policy the new session's quote must pass.
    policy: Option<verify::Policy>,
    current: Mutex<Arc<Session>>,
}

impl RenewingSession {
    /// The session in use now.
    pub fn current(&self) -> Arc<Session> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The client's key.
    pub fn secret(&self) -> &ClientSecret {
        &self.secret
    }
}

/// Whether `e` says the session is not (or no longer) on the replica that answered.
pub fn session_gone(e: &ClientError) -> bool {
    matches!(
        e.error_code(),
        Some(
            ErrorCode::SessionOnOtherReplica
                | ErrorCode::SessionNotFound
                | ErrorCode::SessionExpired
        )
    )
}

impl Client {
    /// Opens a session for `secret` (verifiable when `policy` is given: its quote must pass
    /// it) that [`Self::with_session`] renews when needed.
    ///
    /// # Errors
    /// As [`Self::create_session`] and [`Self::create_verifiable_session`].
    pub fn open_renewing(
        &self,
        secret: ClientSecret,
        policy: Option<verify::Policy>,
    ) -> Result<RenewingSession, ClientError> {
        let session = self.open(&secret, policy.as_ref())?;
        Ok(RenewingSession {
            secret,
            policy,
            current: Mutex::new(Arc::new(session)),
        })
    }

    fn open(
        &self,
        secret: &ClientSecret,
        policy: Option<&verify::Policy>,
    ) -> Result<Session, ClientError> {
        match policy {
            Some(policy) => self.create_verifiable_session(secret, policy),
            None => self.create_session(secret),
        }
    }

    /// Runs `op` on `session`'s current session; when the answer says the session is not on
    /// the replica that answered (or has expired), opens a new one there and runs `op` once
    /// more with it.
    ///
    /// # Errors
    /// `op`'s, or opening the new session's.
    pub fn with_session<T>(
        &self,
        session: &RenewingSession,
        op: impl Fn(&Session) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let current = session.current();
        match op(&current) {
            Err(e) if session_gone(&e) => {
                let fresh = Arc::new(self.open(&session.secret, session.policy.as_ref())?);
                *session.current.lock().unwrap_or_else(|p| p.into_inner()) = fresh.clone();
                op(&fresh)
            }
            other => other,
        }
    }
}
