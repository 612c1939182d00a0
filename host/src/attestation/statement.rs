//! Component statements (`docs/PROTOCOL.md` §15): a program's own 64 bytes and its hash,
//! signed with the attested key, with the chain that makes them checkable. One builder for
//! both kinds of program: a WebAssembly component receives the WIT record
//! (`engine/host_imports.rs`), a RISC-V program the JSON of
//! [`hypervisor_protocol::attest::ComponentStatement`] (`engine/riscv.rs`).

use std::sync::Arc;

use hypervisor_protocol::attest::StatementKind;

use super::{AttestedKey, Attestor, TeeKind};

/// A signed component statement and the key (with its evidence) that signed it.
pub struct ComponentStatement {
    /// SHA-256 of the program.
    pub component_hash: [u8; 32],
    /// The program's 64 bytes.
    pub user_data: [u8; 64],
    /// The signature over [`StatementKind::Component`] `[component_hash, user_data]`.
    pub signature: [u8; 64],
    /// The attested key and its evidence.
    pub key: Arc<AttestedKey>,
}

/// Why no statement was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// No attestation provider on this host.
    #[error("no attestation provider is configured on this host")]
    NotConfigured,
    /// The user data is not 64 bytes.
    #[error("the user data must be 64 bytes")]
    InvalidUserData,
    /// Signing failed.
    #[error("{0}")]
    Failed(String),
}

impl Attestor {
    /// A statement of the current attested key over `component_hash` and `user_data`.
    ///
    /// # Errors
    /// [`StatementError`].
    pub fn component_statement(
        &self,
        component_hash: [u8; 32],
        user_data: &[u8],
    ) -> Result<ComponentStatement, StatementError> {
        let user_data: [u8; 64] = user_data
            .try_into()
            .map_err(|_| StatementError::InvalidUserData)?;
        let key = self.current().ok_or(StatementError::NotConfigured)?;
        let signature = key
            .sign(StatementKind::Component, &[&component_hash, &user_data])
            .map_err(|e| StatementError::Failed(e.to_string()))?;
        Ok(ComponentStatement {
            component_hash,
            user_data,
            signature,
            key,
        })
    }
}

impl ComponentStatement {
    /// Which TEE produced the evidence.
    pub fn tee(&self) -> TeeKind {
        self.key.tee()
    }

    /// The JSON form (binary values in lowercase hex).
    pub fn to_wire(&self) -> hypervisor_protocol::attest::ComponentStatement {
        let key = &self.key;
        hypervisor_protocol::attest::ComponentStatement {
            tee: self.tee().name().to_string(),
            component_hash: hex::encode(self.component_hash),
            user_data: hex::encode(self.user_data),
            signature: hex::encode(self.signature),
            signing_key: key.public.to_hex(),
            evidence_format: key.evidence.format.to_string(),
            evidence: hex::encode(&key.evidence.evidence),
            report_data: hex::encode(key.evidence.report_data),
            host_measurement: hex::encode(key.host_measurement),
            key_created_at: key.created_at,
            event_log: key.evidence.event_log.clone(),
        }
    }
}
