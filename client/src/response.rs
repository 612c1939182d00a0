//! Reading execution responses: decrypt the result, check its commitment against the inputs we
//! sent and, on verifiable sessions, verify the receipt; the outcome is an [`Execution`].

use hypervisor_protocol::attest::ct_eq;
use hypervisor_protocol::wire::{
    EncryptedResult, ErrorDetail, ErrorResponse, ExecutionResult, Receipt, VerifiableResult,
    decode_hash, decode_hex,
};
use hypervisor_protocol::{InputDigests, Role, result_commitment};

use crate::error::server_error;
use crate::{ClientError, Session, verify};

/// A finished execution, decrypted and checked.
#[derive(Debug, Clone)]
pub struct Execution {
    /// The result document.
    pub result: ExecutionResult,
    /// Its exact plaintext bytes (what the commitment covers).
    pub plaintext: Vec<u8>,
    /// The commitment, checked.
    pub commitment: [u8; 32],
    /// When the guest was stopped by a limit or a trap, the server's error (the result then
    /// holds what the guest produced until it stopped); [`ErrorDetail::error_code`] types its
    /// code.
    pub stopped: Option<ErrorDetail>,
    /// On verifiable routes: the receipt, already verified against the session's attested key
    /// and the recomputed commitment.
    pub receipt: Option<Receipt>,
    /// On paid routes: the decoded `PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE`.
    pub settlement: Option<serde_json::Value>,
    /// The execution's record id (`x-execution-id`; `GET /executions/{id}`), when the host
    /// sent one.
    pub execution_id: Option<String>,
}

impl Execution {
    /// Decoded stdout.
    ///
    /// # Errors
    /// If the server sent invalid base64.
    pub fn stdout(&self) -> Result<Vec<u8>, ClientError> {
        self.result
            .stdout_bytes()
            .map_err(|e| ClientError::BadResponse(format!("stdout: {e}")))
    }

    /// Decoded stderr.
    ///
    /// # Errors
    /// If the server sent invalid base64.
    pub fn stderr(&self) -> Result<Vec<u8>, ClientError> {
        self.result
            .stderr_bytes()
            .map_err(|e| ClientError::BadResponse(format!("stderr: {e}")))
    }
}

impl Session {
    /// Decrypts a result and checks its commitment against the digests of what we sent.
    ///
    /// # Errors
    /// Decryption failure, [`ClientError::CommitmentMismatch`], or a malformed result.
    pub fn open_result(
        &self,
        result: &EncryptedResult,
        digests: &InputDigests,
    ) -> Result<(ExecutionResult, Vec<u8>), ClientError> {
        if result.session_id != self.id {
            return Err(ClientError::BadResponse(
                "result is for another session".into(),
            ));
        }
        let sealed = decode_hex("encrypted_result", &result.encrypted_result)?;
        let plaintext = self.envelope().open(Role::Result, &sealed)?;
        let expected = result_commitment(&self.id, digests, &plaintext);
        let claimed = decode_hex("result_commitment", &result.result_commitment)?;
        // Constant time, like every comparison of hashes and bindings in the client.
        if !ct_eq(&claimed, &expected) {
            return Err(ClientError::CommitmentMismatch);
        }
        let doc: ExecutionResult = serde_json::from_slice(&plaintext)
            .map_err(|e| ClientError::BadResponse(format!("result document: {e}")))?;
        Ok((doc, plaintext))
    }

    /// Checks an execution response: decrypts the result, checks the commitment, and on a
    /// verifiable session verifies the receipt (signature by the session's verified key, this
    /// session, this commitment, these inputs).
    ///
    /// # Errors
    /// Server, protocol, commitment and [`ClientError::Verify`] errors.
    pub fn check_response(
        &self,
        status: u16,
        json: serde_json::Value,
        digests: &InputDigests,
    ) -> Result<Execution, ClientError> {
        let (encrypted, receipt, stopped) = if status == 200 {
            if self.verified.is_some() {
                let r: VerifiableResult = serde_json::from_value(json)
                    .map_err(|e| ClientError::BadResponse(format!("execute: {e}")))?;
                (r.result, Some(r.result_quote), None)
            } else {
                let r: EncryptedResult = serde_json::from_value(json)
                    .map_err(|e| ClientError::BadResponse(format!("execute: {e}")))?;
                (r, None, None)
            }
        } else {
            let err: ErrorResponse = serde_json::from_value(json.clone())
                .map_err(|_| server_error(status, json.clone()))?;
            match err.result {
                Some(r) => (r, err.result_quote, Some(err.error)),
                None => return Err(server_error(status, json)),
            }
        };
        let (result, plaintext) = self.open_result(&encrypted, digests)?;
        // Checked above against the recomputed commitment, so exactly 32 bytes.
        let commitment = decode_hash("result_commitment", &encrypted.result_commitment)?;
        if let Some((_, key)) = &self.verified {
            let receipt = receipt.as_ref().ok_or_else(|| {
                ClientError::BadResponse("verifiable result without a receipt".into())
            })?;
            verify::verify_receipt(receipt, key, &self.id, &commitment)?;
            check_receipt_inputs(receipt, digests)?;
        }
        Ok(Execution {
            result,
            plaintext,
            commitment,
            stopped,
            receipt,
            settlement: None,
            execution_id: None,
        })
    }
}

/// The receipt must name exactly the program and inputs we sent (hashes compared as bytes, in
/// constant time; each must be exactly 32 bytes).
fn check_receipt_inputs(receipt: &Receipt, digests: &InputDigests) -> Result<(), ClientError> {
    let mismatch = || verify::VerifyError::Mismatch("receipt program or input hashes");
    let hash = |field: &str, value: &str| {
        decode_hash(field, value).map_err(|e| verify::VerifyError::Malformed(e.to_string()))
    };
    let mut same = ct_eq(
        &hash("program_sha256", &receipt.program_sha256)?,
        &digests.program,
    ) & ct_eq(
        &hash("stdin_sha256", &receipt.stdin_sha256)?,
        &digests.stdin,
    );
    if receipt.argument_sha256.len() != digests.arguments.len() {
        return Err(mismatch().into());
    }
    for (i, (a, d)) in receipt
        .argument_sha256
        .iter()
        .zip(&digests.arguments)
        .enumerate()
    {
        same &= ct_eq(&hash(&format!("argument_sha256[{i}]"), a)?, d);
    }
    if same { Ok(()) } else { Err(mismatch().into()) }
}
