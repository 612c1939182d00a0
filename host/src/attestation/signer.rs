//! The host's attested signing key.
//!
//! At start-up (and on rotation) the [`Attestor`] generates a P-256 key, asks the provider for
//! evidence whose REPORTDATA binds the key, the host measurement (SHA-256 of the host binary)
//! and the creation time, and keeps both. Sessions, receipts and component statements are then
//! signed with that key: an ECDSA signature costs microseconds, a hardware quote tens of
//! milliseconds, serialised host-wide. Each session keeps the key it was created under, so a
//! rotation never invalidates a chain a client has already checked.

use std::sync::{Arc, RwLock};

use hypervisor_protocol::EncodedPublicKey;
use hypervisor_protocol::attest::{StatementKind, signing_key_report_data, statement_bytes};
use hypervisor_protocol::wire::Attestation;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use zeroize::Zeroizing;

use super::{AttestationError, AttestationProvider, Evidence, TeeKind};

/// A signing key with the evidence that binds it.
///
/// Signing uses ring (33 µs per signature here, against 130 µs for RustCrypto's p256, which
/// decides whether verifiable routes keep up with plain ones). Our copy of the private scalar
/// is zeroized as soon as ring has parsed it; ring keeps its own copy for the life of the key
/// (one rotation period, in TEE-encrypted memory) and does not wipe it on drop.
pub struct AttestedKey {
    signing: EcdsaKeyPair,
    rng: SystemRandom,
    /// The public key.
    pub public: EncodedPublicKey,
    /// Creation time, Unix seconds (bound in REPORTDATA).
    pub created_at: u64,
    /// SHA-256 of the host binary (bound in REPORTDATA).
    pub host_measurement: [u8; 32],
    /// The evidence.
    pub evidence: Evidence,
    /// SHA-256 of the evidence's bytes (receipts name it).
    pub evidence_sha256: [u8; 32],
    wire: Attestation,
}

impl std::fmt::Debug for AttestedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestedKey")
            .field("public", &self.public)
            .field("tee", &self.evidence.tee)
            .finish_non_exhaustive()
    }
}

impl AttestedKey {
    /// Generates a key and obtains evidence for it (blocking: tens of milliseconds on hardware).
    ///
    /// # Errors
    /// The provider's error.
    pub fn create(
        provider: &dyn AttestationProvider,
        host_measurement: [u8; 32],
    ) -> Result<Self, AttestationError> {
        let failed = |what: &str| AttestationError::ProviderFailed(format!("signing key: {what}"));
        let (secret, public) = loop {
            let mut bytes = Zeroizing::new([0u8; 32]);
            getrandom::fill(bytes.as_mut()).map_err(|_| failed("no randomness"))?;
            // Zero or >= n (probability ~2^-32): draw again.
            if let Ok(k) = p256::SecretKey::from_slice(bytes.as_ref()) {
                break (bytes, EncodedPublicKey::from_key(&k.public_key()));
            }
        };
        let rng = SystemRandom::new();
        let signing = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            secret.as_ref(),
            public.as_bytes(),
            &rng,
        )
        .map_err(|_| failed("rejected by ring"))?;
        drop(secret);
        let created_at = crate::clock::unix_seconds();
        let report_data = signing_key_report_data(&public, &host_measurement, created_at);
        let evidence = provider.attest(&report_data)?;
        let wire = Attestation {
            tee: evidence.tee.name().to_string(),
            simulated: evidence.tee == TeeKind::Simulated,
            evidence_format: evidence.format.to_string(),
            evidence: hex::encode(&evidence.evidence),
            report_data: hex::encode(evidence.report_data),
            signing_key: public.to_hex(),
            host_measurement: hex::encode(host_measurement),
            key_created_at: created_at,
            event_log: evidence.event_log.clone(),
        };
        Ok(Self {
            signing,
            rng,
            public,
            created_at,
            host_measurement,
            evidence_sha256: hypervisor_protocol::sha256(&evidence.evidence),
            evidence,
            wire,
        })
    }

    /// Which TEE produced the evidence.
    pub fn tee(&self) -> TeeKind {
        self.evidence.tee
    }

    /// Signs a statement of `kind` over `fields`: ECDSA P-256 / SHA-256, 64 bytes `r || s`,
    /// normalised to low-s as `docs/PROTOCOL.md` specifies.
    ///
    /// # Errors
    /// Only if the OS random number generator fails.
    pub fn sign(
        &self,
        kind: StatementKind,
        fields: &[&[u8]],
    ) -> Result<[u8; 64], AttestationError> {
        let failed = || AttestationError::ProviderFailed("signing failed".into());
        let sig = self
            .signing
            .sign(&self.rng, &statement_bytes(kind, fields))
            .map_err(|_| failed())?;
        let sig = p256::ecdsa::Signature::from_slice(sig.as_ref()).map_err(|_| failed())?;
        Ok(sig.normalize_s().to_bytes().into())
    }

    /// Signs an A2A agent card (`hypervisor_protocol::a2a::card`): ES256 over the JWS signing
    /// input, 64 bytes `r || s`, low-s. The input begins with `eyJ`, so the signature never
    /// stands for one of the statements [`Self::sign`] makes.
    ///
    /// # Errors
    /// Only if the OS random number generator fails.
    pub fn sign_card(
        &self,
        input: &hypervisor_protocol::a2a::card::SigningInput,
    ) -> Result<[u8; 64], AttestationError> {
        self.sign_jws(input.as_bytes())
    }

    /// Signs an x402 signed offer or receipt (`hypervisor_protocol::offer_receipt`): ES256
    /// over the JWS signing input, 64 bytes `r || s`, low-s. The header's `typ` names the
    /// artifact, so it never stands for an agent card or the other artifact.
    ///
    /// # Errors
    /// Only if the OS random number generator fails.
    pub fn sign_offer_receipt(
        &self,
        input: &hypervisor_protocol::offer_receipt::SigningInput,
    ) -> Result<[u8; 64], AttestationError> {
        self.sign_jws(input.as_bytes())
    }

    /// ES256 over a JWS signing input (only the typed inputs above reach it), low-s.
    fn sign_jws(&self, input: &[u8]) -> Result<[u8; 64], AttestationError> {
        let failed = || AttestationError::ProviderFailed("signing failed".into());
        let sig = self.signing.sign(&self.rng, input).map_err(|_| failed())?;
        let sig = p256::ecdsa::Signature::from_slice(sig.as_ref()).map_err(|_| failed())?;
        Ok(sig.normalize_s().to_bytes().into())
    }

    /// The wire form (`GET /attestation`, session quotes), encoded once at creation.
    pub fn attestation(&self) -> &Attestation {
        &self.wire
    }
}

/// Owns the provider and the current attested key.
pub struct Attestor {
    provider: Arc<dyn AttestationProvider>,
    host_measurement: [u8; 32],
    current: RwLock<Option<Arc<AttestedKey>>>,
}

impl Attestor {
    /// An attestor with no key yet (call [`Self::rotate`]).
    pub fn new(provider: Arc<dyn AttestationProvider>, host_measurement: [u8; 32]) -> Self {
        Self {
            provider,
            host_measurement,
            current: RwLock::new(None),
        }
    }

    /// Which provider is configured.
    pub fn kind(&self) -> TeeKind {
        self.provider.kind()
    }

    /// SHA-256 of the host binary, as bound with every key.
    pub fn host_measurement(&self) -> [u8; 32] {
        self.host_measurement
    }

    /// Fresh evidence over `report_data` from the provider (blocking: tens of milliseconds on
    /// hardware). For other bindings than the signing key's, such as the TLS certificate's.
    ///
    /// # Errors
    /// The provider's error.
    pub fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestationError> {
        self.provider.attest(report_data)
    }

    /// The current key, if attestation is configured and a key exists.
    pub fn current(&self) -> Option<Arc<AttestedKey>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Creates a new key with fresh evidence and makes it current (blocking). With no provider
    /// this is a no-op.
    ///
    /// # Errors
    /// The provider's error; the previous key stays current.
    pub fn rotate(&self) -> Result<(), AttestationError> {
        if self.provider.kind() == TeeKind::None {
            return Ok(());
        }
        let key = Arc::new(AttestedKey::create(
            self.provider.as_ref(),
            self.host_measurement,
        )?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use hypervisor_protocol::EncodedPublicKey;
    use hypervisor_protocol::attest::signing_key_report_data;

    use crate::crypto::primitives::{sha256, verify_p256_sha256};

    /// The host's own primitives (not the protocol crate's verifier) accept the binding and
    /// statement vectors of `docs/test-vectors.json`.
    #[test]
    fn binding_vectors_check_out_with_the_host_primitives() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/test-vectors.json");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let a = &v["attestation"];
        let s = |x: &serde_json::Value| hex::decode(x.as_str().unwrap()).unwrap();
        let key = EncodedPublicKey::from_sec1(&s(&a["signing_key"])).unwrap();
        let measurement: [u8; 32] = sha256(b"example host binary");
        assert_eq!(s(&a["host_measurement"]), measurement);
        let rd = signing_key_report_data(&key, &measurement, a["key_created_at"].as_u64().unwrap());
        assert_eq!(rd.to_vec(), s(&a["report_data"]));
        for (bytes, sig) in [
            (
                &a["session_statement"]["bytes"],
                &a["session_statement"]["signature"],
            ),
            (&a["receipt_statement_bytes"], &a["receipt"]["signature"]),
            (
                &a["component_statement"]["bytes"],
                &a["component_statement"]["signature"],
            ),
        ] {
            assert_eq!(
                verify_p256_sha256(key.as_bytes(), &s(bytes), &s(sig)),
                Ok(true)
            );
            let mut other = s(bytes);
            other[30] ^= 1; // the purpose byte region
            assert_eq!(
                verify_p256_sha256(key.as_bytes(), &other, &s(sig)),
                Ok(false)
            );
        }
    }
}
