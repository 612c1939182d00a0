//! Envelopes: one encrypted field.
//!
//! ```text
//! envelope = nonce (12 random bytes) || AES-256-GCM-SIV ciphertext || tag (16)
//! aad      = "wasm-hypervisor/v1/aad" || session_id (16) || role (1) || index (u32 big-endian)
//! ```
//!
//! The associated data binds every ciphertext to its session and to its place in the request
//! (the program, argument *i*, stdin, the result, a handler agent's event, a component deployed
//! as an agent), so a ciphertext moved to another field, another endpoint or another session
//! fails to decrypt.

use uuid::Uuid;

use crate::aead::Aead;
pub use crate::aead::{NONCE_LEN, TAG_LEN};
use crate::{ProtocolError, SessionKey, labels};

/// The role of an encrypted field, bound into its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The program: a WebAssembly component or a script (client → host). Index 0.
    Program,
    /// Argument number `i` (client → host).
    Argument(u32),
    /// Standard input (client → host). Index 0.
    Stdin,
    /// The execution result (host → client). Index 0.
    Result,
    /// An event for a handler agent (client → host). Index 0.
    Event,
    /// A component deployed as an agent (`POST /agent/deploy`, client → host). Index 0.
    /// Distinct from [`Role::Program`], so the program of an execution request cannot be
    /// replayed as a deployment (nor a deployment as a program).
    AgentComponent,
    /// An agent wallet's private key (`PUT /agents/{name}/wallet`, client → host). Index 0.
    WalletKey,
    /// An agent's configuration change (`PUT /agents/{name}/config`, client → host). Index 0.
    AgentConfig,
    /// An agent's exported key-value state (`POST /agents/{name}/state/export`, host →
    /// client). Index 0.
    StateExport,
    /// A JavaScript agent's source, the JSON of its [`crate::agents::JsSource`]
    /// (`POST /agent/deploy` with `encrypted_js`, client → host). Index 0.
    AgentJs,
    /// Key-value state to import into an agent, an export's plaintext
    /// (`POST /agents/{name}/state/import`, client → host). Index 0. Distinct from
    /// [`Role::StateExport`], so an export the host sealed cannot be sent back as an import.
    StateImport,
}

impl Role {
    /// The role byte.
    pub fn code(self) -> u8 {
        match self {
            Role::Program => 0x01,
            Role::Argument(_) => 0x02,
            Role::Stdin => 0x03,
            Role::Result => 0x04,
            Role::Event => 0x05,
            Role::AgentComponent => 0x06,
            Role::WalletKey => 0x07,
            Role::AgentConfig => 0x08,
            Role::StateExport => 0x09,
            Role::AgentJs => 0x0a,
            Role::StateImport => 0x0b,
        }
    }

    /// The index (argument position; 0 for the other roles).
    pub fn index(self) -> u32 {
        match self {
            Role::Argument(i) => i,
            _ => 0,
        }
    }

    /// A name for messages.
    pub fn name(self) -> String {
        match self {
            Role::Program => "program".into(),
            Role::Argument(i) => format!("argument {i}"),
            Role::Stdin => "stdin".into(),
            Role::Result => "result".into(),
            Role::Event => "event".into(),
            Role::AgentComponent => "agent-component".into(),
            Role::WalletKey => "wallet-key".into(),
            Role::AgentConfig => "agent-config".into(),
            Role::StateExport => "state-export".into(),
            Role::AgentJs => "agent-js".into(),
            Role::StateImport => "state-import".into(),
        }
    }
}

/// The associated data for a field (43 bytes).
pub fn associated_data(session_id: &Uuid, role: Role) -> Vec<u8> {
    let mut aad = Vec::with_capacity(labels::AAD.len() + 16 + 1 + 4);
    aad.extend_from_slice(labels::AAD);
    aad.extend_from_slice(session_id.as_bytes());
    aad.push(role.code());
    aad.extend_from_slice(&role.index().to_be_bytes());
    aad
}

/// Encrypts and decrypts the fields of one session.
pub struct Envelope<'k> {
    cipher: Aead,
    session_id: Uuid,
    _key: std::marker::PhantomData<&'k SessionKey>,
}

impl<'k> Envelope<'k> {
    /// Binds a session key to its session id.
    pub fn new(key: &'k SessionKey, session_id: Uuid) -> Self {
        // The cipher keeps the expanded key schedule; it is wiped on drop (see `Aead`).
        let cipher = Aead::new(key.bytes());
        Self {
            cipher,
            session_id,
            _key: std::marker::PhantomData,
        }
    }

    /// Seals `plaintext` for `role` under a fresh random nonce.
    ///
    /// # Errors
    /// [`ProtocolError::Random`] or [`ProtocolError::Encrypt`].
    pub fn seal(&self, role: Role, plaintext: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::fill_random(&mut nonce)?;
        self.seal_with_nonce(role, &nonce, plaintext)
    }

    /// Seals with a caller-chosen nonce. Only for test vectors: a nonce must never repeat
    /// under one key (AES-GCM-SIV then leaks only equality of identical messages, but still).
    ///
    /// # Errors
    /// [`ProtocolError::Encrypt`].
    pub fn seal_with_nonce(
        &self,
        role: Role,
        nonce: &[u8; NONCE_LEN],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, ProtocolError> {
        let aad = associated_data(&self.session_id, role);
        let ct = self
            .cipher
            .seal(nonce, &aad, plaintext)
            .map_err(|_| ProtocolError::Encrypt)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens an envelope sealed for `role`.
    ///
    /// # Errors
    /// [`ProtocolError::EnvelopeTooShort`] or [`ProtocolError::Decrypt`].
    pub fn open(&self, role: Role, envelope: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        if envelope.len() < NONCE_LEN + TAG_LEN {
            return Err(ProtocolError::EnvelopeTooShort {
                role: role.name(),
                len: envelope.len(),
                min: NONCE_LEN + TAG_LEN,
            });
        }
        let (nonce, ct) = envelope.split_at(NONCE_LEN);
        let mut n = [0u8; NONCE_LEN];
        n.copy_from_slice(nonce);
        let aad = associated_data(&self.session_id, role);
        self.cipher
            .open(&n, &aad, ct)
            .map_err(|_| ProtocolError::Decrypt { role: role.name() })
    }
}

/// The nonce of an envelope (its first 12 bytes), if it is long enough.
pub fn nonce_of(envelope: &[u8]) -> Option<&[u8]> {
    envelope.get(..NONCE_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> (SessionKey, Uuid) {
        (SessionKey::from_bytes([7; 32]), Uuid::from_bytes([1; 16]))
    }

    #[test]
    fn role_bytes_are_distinct_and_stable() {
        let roles = [
            (Role::Program, 0x01, "program"),
            (Role::Argument(3), 0x02, "argument 3"),
            (Role::Stdin, 0x03, "stdin"),
            (Role::Result, 0x04, "result"),
            (Role::Event, 0x05, "event"),
            (Role::AgentComponent, 0x06, "agent-component"),
            (Role::WalletKey, 0x07, "wallet-key"),
        ];
        for (role, code, name) in roles {
            assert_eq!((role.code(), role.name().as_str()), (code, name));
        }
        assert_eq!(Role::AgentComponent.index(), 0);
        assert_eq!(Role::Argument(3).index(), 3);
        let id = Uuid::from_bytes([1; 16]);
        let aad = associated_data(&id, Role::AgentComponent);
        assert_eq!(aad.len(), 43);
        assert_eq!(&aad[aad.len() - 5..], &[0x06, 0, 0, 0, 0]);
    }

    #[test]
    fn an_agent_component_is_not_a_program_nor_an_event() {
        let (key, id) = envelope();
        let env = Envelope::new(&key, id);
        let component = b"\0asm component";
        let sealed = env.seal(Role::AgentComponent, component).unwrap();
        assert_eq!(
            env.open(Role::AgentComponent, &sealed).unwrap(),
            component.to_vec()
        );
        for other in [
            Role::Program,
            Role::Argument(0),
            Role::Stdin,
            Role::Result,
            Role::Event,
        ] {
            assert!(
                matches!(env.open(other, &sealed), Err(ProtocolError::Decrypt { .. })),
                "{}",
                other.name()
            );
        }
        // The program of an execution request does not open as a deployed component.
        let program = env.seal(Role::Program, component).unwrap();
        assert!(env.open(Role::AgentComponent, &program).is_err());
        // Nor in another session.
        let other = Envelope::new(&key, Uuid::from_bytes([2; 16]));
        assert!(other.open(Role::AgentComponent, &sealed).is_err());
    }

    #[test]
    fn an_event_is_not_stdin() {
        let (key, id) = envelope();
        let env = Envelope::new(&key, id);
        let event = env.seal(Role::Event, br#"{"text": "x"}"#).unwrap();
        assert!(env.open(Role::Event, &event).is_ok());
        assert!(env.open(Role::Stdin, &event).is_err());
        let stdin = env.seal(Role::Stdin, br#"{"text": "x"}"#).unwrap();
        assert!(env.open(Role::Event, &stdin).is_err());
    }
}
