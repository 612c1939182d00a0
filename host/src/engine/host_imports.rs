//! The host side of `hypervisor:host` (`wit/crypto.wit`, `wit/attestation.wit`): the only
//! custom imports a component may have.

use wasmtime::component::{HasSelf, Linker};

use super::sandbox::HostState;
use crate::attestation::TeeKind;
use crate::attestation::statement::StatementError;
use crate::crypto::primitives::{self, PrimitiveError};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "hypervisor:host/host-imports",
});

use self::hypervisor::host::attestation as wit_att;
use self::hypervisor::host::crypto as wit_crypto;

/// Adds both interfaces to `linker`.
///
/// # Errors
/// Only if the names are already defined in `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    HostImports::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}

impl wit_crypto::Host for HostState {
    fn sha256(&mut self, data: Vec<u8>) -> Vec<u8> {
        primitives::sha256(&data).to_vec()
    }

    fn sha512(&mut self, data: Vec<u8>) -> Vec<u8> {
        primitives::sha512(&data).to_vec()
    }

    fn hmac_sha256(&mut self, key: Vec<u8>, data: Vec<u8>) -> Vec<u8> {
        primitives::hmac_sha256(&key, &data).to_vec()
    }

    fn constant_time_eq(&mut self, a: Vec<u8>, b: Vec<u8>) -> bool {
        primitives::constant_time_eq(&a, &b)
    }

    fn verify_p256_sha256(
        &mut self,
        public_key: Vec<u8>,
        message: Vec<u8>,
        signature: Vec<u8>,
    ) -> Result<bool, wit_crypto::CryptoError> {
        primitives::verify_p256_sha256(&public_key, &message, &signature).map_err(|e| match e {
            PrimitiveError::PublicKey(m) => wit_crypto::CryptoError::InvalidPublicKey(m),
            PrimitiveError::Signature(m) => wit_crypto::CryptoError::InvalidSignature(m),
            PrimitiveError::Length(m) => wit_crypto::CryptoError::InvalidLength(m),
        })
    }

    fn recover_secp256k1(
        &mut self,
        digest: Vec<u8>,
        signature: Vec<u8>,
    ) -> Result<Vec<u8>, wit_crypto::CryptoError> {
        primitives::recover_secp256k1(&digest, &signature)
            .map(|key| key.to_vec())
            .map_err(|e| match e {
                PrimitiveError::Length(m) => wit_crypto::CryptoError::InvalidLength(m),
                PrimitiveError::Signature(m) | PrimitiveError::PublicKey(m) => {
                    wit_crypto::CryptoError::InvalidSignature(m)
                }
            })
    }
}

fn tee_kind(kind: TeeKind) -> wit_att::TeeKind {
    match kind {
        TeeKind::None => wit_att::TeeKind::None,
        TeeKind::Simulated => wit_att::TeeKind::Simulated,
        TeeKind::Tdx => wit_att::TeeKind::Tdx,
        TeeKind::SevSnp => wit_att::TeeKind::SevSnp,
    }
}

impl wit_att::Host for HostState {
    fn provider(&mut self) -> wit_att::TeeKind {
        tee_kind(self.attestor.kind())
    }

    fn attest(
        &mut self,
        user_data: Vec<u8>,
    ) -> Result<wit_att::Statement, wit_att::AttestationError> {
        let statement = self
            .attestor
            .component_statement(self.component_hash, &user_data)
            .map_err(|e| match e {
                StatementError::InvalidUserData => wit_att::AttestationError::InvalidUserData,
                StatementError::NotConfigured => {
                    wit_att::AttestationError::NotConfigured(e.to_string())
                }
                StatementError::Failed(m) => wit_att::AttestationError::ProviderFailed(m),
            })?;
        let key = &statement.key;
        Ok(wit_att::Statement {
            tee: tee_kind(statement.tee()),
            component_hash: statement.component_hash.to_vec(),
            user_data,
            signature: statement.signature.to_vec(),
            signing_key: key.public.as_bytes().to_vec(),
            evidence_format: key.evidence.format.to_string(),
            evidence: key.evidence.evidence.clone(),
            report_data: key.evidence.report_data.to_vec(),
            host_measurement: key.host_measurement.to_vec(),
            key_created_at: key.created_at,
            event_log: key.evidence.event_log.clone(),
        })
    }
}
