//! Attestation binding, signed statements and receipts (`docs/PROTOCOL.md` §12–15).
//!
//! The chain a verifier checks:
//!
//! ```text
//! vendor root → evidence (TDX quote / SNP report) whose REPORTDATA =
//!     report_data(SIGNING_KEY, [signing_key, host_measurement, u64be(key_created_at)])
//!   → the attested signing key (P-256)
//!     → ECDSA signature over statement(SESSION, …)   binds session id + both session keys
//!     → ECDSA signature over statement(RECEIPT, …)   binds program/input hashes + commitment
//!     → ECDSA signature over statement(COMPONENT, …) a component's own 64 bytes
//! ```
//!
//! Every encoding is a fixed label, a purpose byte, then each field as `u32be(len) || bytes`,
//! so there is exactly one byte string per value and no statement reads as another.

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use crate::{EncodedPublicKey, ProtocolError};

/// Label of REPORTDATA preimages.
pub const REPORT_DATA_LABEL: &[u8] = b"wasm-hypervisor/v1/report-data";
/// Label of signed statements.
pub const STATEMENT_LABEL: &[u8] = b"wasm-hypervisor/v1/statement";

/// What a REPORTDATA value binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ReportPurpose {
    /// The host's attested signing key: `[signing_key (65), host_measurement (32), u64be(created_at)]`.
    SigningKey = 0x01,
    /// The host's self-generated TLS certificate (`crate::tls`):
    /// `[sha256(subject_public_key_info) (32), signing_key (65), host_measurement (32), u64be(created_at)]`.
    TlsCertificate = 0x02,
}

/// What a signed statement says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StatementKind {
    /// A session: `[session_id (16), session_pubkey (65), client_pubkey (65), u64be(created_at), u64be(expires_at)]`.
    Session = 0x01,
    /// An execution receipt: the fields of [`crate::wire::Receipt`] (see `receipt_fields`).
    Receipt = 0x02,
    /// A statement a component made through `hypervisor:host/attestation`:
    /// `[component_sha256 (32), user_data (64)]`.
    Component = 0x03,
    /// A TLS channel binding (`crate::tls`): `[exporter (32), client_nonce (32), sha256(certificate) (32)]`.
    TlsChannel = 0x04,
    /// A replica's request for the cluster key (`crate::cluster`):
    /// `[run, replica, exchange_key (65)]`.
    ClusterJoin = 0x05,
    /// A replica's grant of the cluster key (`crate::cluster`):
    /// `[run, joiner_exchange_key (65), responder_exchange_key (65), sealed_key (60)]`.
    ClusterGrant = 0x06,
}

fn encode(label: &[u8], purpose: u8, fields: &[&[u8]]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(label.len() + 1 + fields.iter().map(|f| 4 + f.len()).sum::<usize>());
    out.extend_from_slice(label);
    out.push(purpose);
    for f in fields {
        // Fields are at most a few kilobytes; saturate rather than wrap just in case.
        out.extend_from_slice(&u32::try_from(f.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// REPORTDATA: `SHA-512(label || purpose || fields…)`, exactly 64 bytes.
pub fn report_data(purpose: ReportPurpose, fields: &[&[u8]]) -> [u8; 64] {
    Sha512::digest(encode(REPORT_DATA_LABEL, purpose as u8, fields)).into()
}

/// REPORTDATA binding the host's signing key.
pub fn signing_key_report_data(
    signing_key: &EncodedPublicKey,
    host_measurement: &[u8; 32],
    created_at: u64,
) -> [u8; 64] {
    report_data(
        ReportPurpose::SigningKey,
        &[
            signing_key.as_bytes(),
            host_measurement,
            &created_at.to_be_bytes(),
        ],
    )
}

/// The bytes a statement signature covers.
pub fn statement_bytes(kind: StatementKind, fields: &[&[u8]]) -> Vec<u8> {
    encode(STATEMENT_LABEL, kind as u8, fields)
}

/// Signs a statement (ECDSA P-256 / SHA-256, low-s, 64 bytes `r || s`).
pub fn sign_statement(key: &SigningKey, kind: StatementKind, fields: &[&[u8]]) -> [u8; 64] {
    let sig: Signature = key.sign(&statement_bytes(kind, fields));
    let sig = sig.normalize_s();
    sig.to_bytes().into()
}

/// Verifies a statement signature made by `key` (64 bytes `r || s`, low-s only).
///
/// # Errors
/// [`ProtocolError::BadSignature`] when the signature is malformed, high-s or does not verify.
pub fn verify_statement(
    key: &EncodedPublicKey,
    kind: StatementKind,
    fields: &[&[u8]],
    signature: &[u8],
) -> Result<(), ProtocolError> {
    let vk =
        VerifyingKey::from_sec1_bytes(key.as_bytes()).map_err(|_| ProtocolError::BadSignature)?;
    let sig = Signature::from_slice(signature).map_err(|_| ProtocolError::BadSignature)?;
    // Statements are signed low-s (`sign_statement`): the high-s twin of a valid signature,
    // which ECDSA alone accepts, is refused, so a statement has one accepted signature.
    if sig.normalize_s() != sig {
        return Err(ProtocolError::BadSignature);
    }
    vk.verify(&statement_bytes(kind, fields), &sig)
        .map_err(|_| ProtocolError::BadSignature)
}

/// Session statement fields.
pub fn session_fields(
    session_id: &uuid::Uuid,
    session_pubkey: &EncodedPublicKey,
    client_pubkey: &EncodedPublicKey,
    created_at: u64,
    expires_at: u64,
) -> Vec<Vec<u8>> {
    vec![
        session_id.as_bytes().to_vec(),
        session_pubkey.as_bytes().to_vec(),
        client_pubkey.as_bytes().to_vec(),
        created_at.to_be_bytes().to_vec(),
        expires_at.to_be_bytes().to_vec(),
    ]
}

/// Constant-time equality for bindings (lengths are public).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Borrowed view of owned fields, for the sign/verify functions.
pub fn as_refs(fields: &[Vec<u8>]) -> Vec<&[u8]> {
    fields.iter().map(Vec::as_slice).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statements_high_s_twin_is_refused() {
        let secret = crate::ClientSecret::generate().unwrap();
        let key = SigningKey::from_slice(secret.to_bytes().as_slice()).unwrap();
        let public = secret.public_key();
        let fields: [&[u8]; 2] = [b"one", b"two"];
        let low = sign_statement(&key, StatementKind::Receipt, &fields);
        assert!(verify_statement(&public, StatementKind::Receipt, &fields, &low).is_ok());
        let sig = Signature::from_slice(&low).unwrap();
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(r, -*s).unwrap().to_bytes();
        // Valid ECDSA, but not the one accepted encoding.
        assert!(
            vk(&public)
                .verify(
                    &statement_bytes(StatementKind::Receipt, &fields),
                    &Signature::from_slice(&high).unwrap()
                )
                .is_ok()
        );
        assert_eq!(
            verify_statement(&public, StatementKind::Receipt, &fields, &high),
            Err(ProtocolError::BadSignature)
        );
    }

    fn vk(public: &EncodedPublicKey) -> VerifyingKey {
        VerifyingKey::from_sec1_bytes(public.as_bytes()).unwrap()
    }
}

/// A component statement as JSON: what a RISC-V program's `attest` host call returns
/// (`docs/PROTOCOL.md` §6d), with the fields of the WIT `statement` record that WebAssembly
/// components receive (`wit/attestation.wit`), binary values in lowercase hex. The signature
/// is over [`StatementKind::Component`] `[component_hash, user_data]`, verified as §15 says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentStatement {
    /// `none`, `simulated`, `tdx` or `sev-snp`.
    pub tee: String,
    /// SHA-256 of the program (a component's bytes, a RISC-V program's ELF file), 32 bytes.
    pub component_hash: String,
    /// The program's 64 bytes.
    pub user_data: String,
    /// ECDSA P-256 / SHA-256, `r || s` (low-s), 64 bytes.
    pub signature: String,
    /// The attested signing key, SEC1 uncompressed (65 bytes).
    pub signing_key: String,
    /// `tdx-dcap-quote`, `sev-snp-report` or `simulated-not-for-production`.
    pub evidence_format: String,
    /// The evidence binding `signing_key`.
    pub evidence: String,
    /// The evidence's REPORTDATA (64 bytes).
    pub report_data: String,
    /// The host measurement the key's REPORTDATA binds (32 bytes).
    pub host_measurement: String,
    /// The key's creation time, Unix seconds.
    pub key_created_at: u64,
    /// The measurement event log that replays to the evidence's registers, where the platform
    /// keeps one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_log: Option<String>,
}
