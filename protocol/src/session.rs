//! Session key derivation: ECDH on P-256, then HKDF-SHA256 bound to the session id and both
//! public keys.

use hkdf::Hkdf;
use sha2::Sha256;
use uuid::Uuid;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{ClientSecret, EncodedPublicKey, labels};

/// The symmetric key of one session (AES-256-GCM-SIV). Zeroized on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    /// Derives the session key from an ECDH shared secret:
    ///
    /// ```text
    /// salt = "wasm-hypervisor/v1/hkdf-salt" || session_id (16 bytes, RFC 9562 byte order)
    /// info = "wasm-hypervisor/v1/aes-256-gcm-siv" || client_pub (65) || server_pub (65)
    /// key  = HKDF-SHA256(ikm = shared_x (32), salt, info, L = 32)
    /// ```
    pub fn derive(
        shared_x: &[u8; 32],
        session_id: &Uuid,
        client_pub: &EncodedPublicKey,
        server_pub: &EncodedPublicKey,
    ) -> Self {
        let mut salt = Vec::with_capacity(labels::HKDF_SALT.len() + 16);
        salt.extend_from_slice(labels::HKDF_SALT);
        salt.extend_from_slice(session_id.as_bytes());
        let mut info = Vec::with_capacity(labels::HKDF_INFO.len() + 130);
        info.extend_from_slice(labels::HKDF_INFO);
        info.extend_from_slice(client_pub.as_bytes());
        info.extend_from_slice(server_pub.as_bytes());
        let hk = Hkdf::<Sha256>::new(Some(&salt), shared_x);
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte maximum: expand cannot fail.
        hk.expand(&info, &mut key)
            .unwrap_or_else(|_| unreachable!("HKDF output length 32 is always valid"));
        Self(key)
    }

    /// The client's side: ECDH with the server's session public key, then [`Self::derive`].
    pub fn for_client(
        client: &ClientSecret,
        server_pub: &EncodedPublicKey,
        session_id: &Uuid,
    ) -> Self {
        let shared = client.diffie_hellman(server_pub);
        Self::derive(&shared, session_id, &client.public_key(), server_pub)
    }

    /// The server's side: ECDH with the client's public key, then [`Self::derive`].
    pub fn for_server(
        server: &ClientSecret,
        client_pub: &EncodedPublicKey,
        session_id: &Uuid,
    ) -> Self {
        let shared = server.diffie_hellman(client_pub);
        Self::derive(&shared, session_id, client_pub, &server.public_key())
    }

    /// The raw key bytes (for the AEAD only).
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Builds a key from raw bytes (test vectors, stored keys).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes, for test vectors only.
    pub fn expose_for_test_vectors(&self) -> &[u8; 32] {
        &self.0
    }
}
