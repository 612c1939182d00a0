//! The signatures a verified key makes: over a session (§13), a receipt (§14) and a
//! component's statement (§15). Each is checked only with a key whose evidence chain
//! [`super::verify_attestation`] verified.

use hypervisor_protocol::EncodedPublicKey;
use hypervisor_protocol::attest::{
    StatementKind, as_refs, ct_eq, session_fields, verify_statement,
};
use hypervisor_protocol::wire::{Receipt, SessionQuote};
use uuid::Uuid;

use super::{Policy, VerifiedKey, VerifyError, hex_field, verify_attestation};

/// Verifies a verifiable session's quote: the attestation, then the key's signature over the
/// session statement binding `session_id`, the server's session key and our key.
///
/// # Errors
/// The first [`VerifyError`] found.
pub fn verify_session(
    quote: &SessionQuote,
    session_id: &Uuid,
    session_pubkey: &EncodedPublicKey,
    client_pubkey: &EncodedPublicKey,
    policy: &Policy,
) -> Result<VerifiedKey, VerifyError> {
    let key = verify_attestation(&quote.attestation, policy)?;
    let fields = session_fields(
        session_id,
        session_pubkey,
        client_pubkey,
        quote.session_created_at,
        quote.session_expires_at,
    );
    let sig = hex_field("session_signature", &quote.session_signature)?;
    verify_statement(
        &key.signing_key,
        StatementKind::Session,
        &as_refs(&fields),
        &sig,
    )
    .map_err(|_| VerifyError::Signature("session"))?;
    Ok(key)
}

/// Verifies a receipt: signed by `key`, for `session_id`, committing to `commitment` (the
/// commitment the client recomputed from the plaintext result).
///
/// # Errors
/// The first [`VerifyError`] found.
pub fn verify_receipt(
    receipt: &Receipt,
    key: &VerifiedKey,
    session_id: &Uuid,
    commitment: &[u8; 32],
) -> Result<(), VerifyError> {
    if !ct_eq(
        receipt.signing_key.as_bytes(),
        key.signing_key.to_hex().as_bytes(),
    ) {
        return Err(VerifyError::Mismatch("receipt signing key"));
    }
    let versions = hypervisor_protocol::wire::OLDEST_RECEIPT_VERSION
        ..=hypervisor_protocol::wire::RECEIPT_VERSION;
    if !versions.contains(&receipt.version) {
        return Err(VerifyError::Malformed(format!(
            "receipt version {} (this client verifies versions {} to {}, which name the TEE \
             and its evidence)",
            receipt.version,
            versions.start(),
            versions.end()
        )));
    }
    let fields = receipt
        .signed_fields()
        .map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let sig = hex_field("signature", &receipt.signature)?;
    verify_statement(
        &key.signing_key,
        StatementKind::Receipt,
        &as_refs(&fields),
        &sig,
    )
    .map_err(|_| VerifyError::Signature("receipt"))?;
    if receipt.session_id != *session_id {
        return Err(VerifyError::Mismatch("receipt session"));
    }
    // The receipt stands on the evidence that was verified, from the TEE it came from.
    if receipt.tee != key.tee {
        return Err(VerifyError::Mismatch("receipt TEE"));
    }
    if !ct_eq(
        &hex_field("evidence_sha256", &receipt.evidence_sha256)?,
        &key.evidence_sha256,
    ) {
        return Err(VerifyError::Mismatch("receipt evidence"));
    }
    if !ct_eq(
        &hex_field("result_commitment", &receipt.result_commitment)?,
        commitment,
    ) {
        return Err(VerifyError::Mismatch("receipt commitment"));
    }
    Ok(())
}

/// Verifies a component statement (from `hypervisor:host/attestation`) signed by `key`.
///
/// # Errors
/// [`VerifyError::Signature`].
pub fn verify_component_statement(
    key: &VerifiedKey,
    component_sha256: &[u8; 32],
    user_data: &[u8; 64],
    signature: &[u8],
) -> Result<(), VerifyError> {
    verify_statement(
        &key.signing_key,
        StatementKind::Component,
        &[component_sha256, user_data],
        signature,
    )
    .map_err(|_| VerifyError::Signature("component statement"))
}
