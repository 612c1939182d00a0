//! The request pipeline: everything between the HTTP front and the engine. Every route that
//! runs code goes through the same steps, in this order:
//!
//! 1. **session**: find the session and check it belongs to the caller's key;
//! 2. **open**: decode and decrypt every field, each under its own role;
//! 3. **limits**: resolve the requested limits against the operator's defaults and maxima;
//! 4. **admission**: the place where the policy component (and, on paid routes, payment
//!    verification) decides, before any code runs;
//! 5. **prepare**: compile or fetch the component from the cache, check its imports;
//! 6. **run**: a fresh sandbox with the limits;
//! 7. **seal**: encode the result, commit to it, encrypt it for the session.

mod execute;
mod limits;

use std::sync::Arc;

use hypervisor_protocol::EncodedPublicKey;
use hypervisor_protocol::wire::{CreateKeypairRequest, CreateKeypairResponse};

pub use execute::ExecuteOutcome;
pub use limits::resolve_limits;

use crate::config::Config;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::session::SessionTable;

/// Shared state of the pipeline.
pub struct Pipeline {
    config: Arc<Config>,
    sessions: Arc<SessionTable>,
    engine: Arc<Engine>,
}

impl Pipeline {
    /// Assembles the pipeline.
    pub fn new(config: Arc<Config>, sessions: Arc<SessionTable>, engine: Arc<Engine>) -> Self {
        Self {
            config,
            sessions,
            engine,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The session table.
    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    /// `create_keypair`: a new session for the caller's key.
    ///
    /// # Errors
    /// [`ApiError::MalformedHex`], [`ApiError::InvalidPublicKey`], or a session error.
    pub fn create_session(
        &self,
        req: &CreateKeypairRequest,
    ) -> Result<CreateKeypairResponse, ApiError> {
        let client_key = EncodedPublicKey::from_hex("pubkey", &req.pubkey)?;
        let session = self.sessions.create(client_key)?;
        Ok(CreateKeypairResponse {
            session_pubkey: session.server_key.to_hex(),
            session_id: session.id,
            expires_in_seconds: self.sessions.ttl().as_secs(),
        })
    }
}
