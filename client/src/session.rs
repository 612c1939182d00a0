//! An open session: the key derived from a `create_keypair` answer and the ids needed to use
//! it. Request encryption lives in `request`, response checking in `response`.

use hypervisor_protocol::wire::{CreateKeypairResponse, SessionQuote};
use hypervisor_protocol::{ClientSecret, EncodedPublicKey, Envelope, ProtocolError, SessionKey};
use uuid::Uuid;

use crate::verify;

/// An open session: the derived key and the ids needed to use it.
pub struct Session {
    /// The session id.
    pub id: Uuid,
    /// Our public key.
    pub client_public: EncodedPublicKey,
    /// The server's session public key.
    pub server_public: EncodedPublicKey,
    /// Seconds the session lives.
    pub expires_in_seconds: u64,
    /// For verifiable sessions: the quote and the key it verified to.
    pub verified: Option<(SessionQuote, verify::VerifiedKey)>,
    key: SessionKey,
}

impl Session {
    /// Derives the session from a `create_keypair` response.
    ///
    /// # Errors
    /// If the server's public key is invalid.
    pub fn from_response(
        secret: &ClientSecret,
        resp: &CreateKeypairResponse,
    ) -> Result<Self, ProtocolError> {
        let server_public = EncodedPublicKey::from_hex("session_pubkey", &resp.session_pubkey)?;
        let key = SessionKey::for_client(secret, &server_public, &resp.session_id);
        Ok(Self {
            id: resp.session_id,
            client_public: secret.public_key(),
            server_public,
            expires_in_seconds: resp.expires_in_seconds,
            verified: None,
            key,
        })
    }

    /// The envelope of this session.
    pub fn envelope(&self) -> Envelope<'_> {
        Envelope::new(&self.key, self.id)
    }
}
