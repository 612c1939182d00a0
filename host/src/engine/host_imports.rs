//! The host side of `hypervisor:host` (`wit/crypto.wit`, `wit/attestation.wit`): the only
//! custom imports a component may have.

use wasmtime::component::{HasSelf, Linker};

use super::sandbox::HostState;
use crate::attestation::{self, AttestationError, TeeKind};
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
        tee_kind(self.attestation.kind())
    }

    fn attest(
        &mut self,
        user_data: Vec<u8>,
    ) -> Result<wit_att::Evidence, wit_att::AttestationError> {
        let user_data: [u8; 64] = user_data
            .try_into()
            .map_err(|_| wit_att::AttestationError::InvalidUserData)?;
        let report_data = attestation::component_report_data(&self.component_hash, &user_data);
        match self.attestation.attest(&report_data) {
            Ok(e) => Ok(wit_att::Evidence {
                tee: tee_kind(e.tee),
                format: e.format,
                report_data: e.report_data.to_vec(),
                evidence: e.evidence,
            }),
            Err(AttestationError::NotConfigured) => Err(wit_att::AttestationError::NotConfigured(
                "no attestation provider is configured on this host".into(),
            )),
            Err(AttestationError::ProviderFailed(m)) => {
                Err(wit_att::AttestationError::ProviderFailed(m))
            }
        }
    }
}
