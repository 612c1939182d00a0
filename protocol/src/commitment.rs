//! The result commitment: lets a third party who is shown the plaintext result (and the
//! hashes of the program and inputs) check that it is the result the host committed to.
//!
//! ```text
//! result_commitment = SHA-256(
//!     "wasm-hypervisor/v1/result-commitment"
//!  || session_id (16)
//!  || SHA-256(program) (32)
//!  || u32_be(n_args) || SHA-256(arg_0) || ... || SHA-256(arg_{n-1})
//!  || SHA-256(stdin) (32; stdin is empty when absent)
//!  || u64_be(len(result)) || result)
//! ```

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{labels, sha256};

/// Hashes of the plaintext program and inputs of one execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputDigests {
    /// SHA-256 of the program.
    pub program: [u8; 32],
    /// SHA-256 of each argument, in order.
    pub arguments: Vec<[u8; 32]>,
    /// SHA-256 of stdin (of the empty string when there is none).
    pub stdin: [u8; 32],
}

impl InputDigests {
    /// Hashes the plaintexts.
    pub fn compute(program: &[u8], arguments: &[impl AsRef<[u8]>], stdin: &[u8]) -> Self {
        Self {
            program: sha256(program),
            arguments: arguments.iter().map(|a| sha256(a.as_ref())).collect(),
            stdin: sha256(stdin),
        }
    }
}

/// Computes the commitment to `result` (the exact plaintext bytes that were encrypted).
pub fn result_commitment(session_id: &Uuid, inputs: &InputDigests, result: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(labels::RESULT_COMMITMENT);
    h.update(session_id.as_bytes());
    h.update(inputs.program);
    // More than 2^32 arguments cannot reach this point (request size limits), but saturate
    // rather than wrap just in case.
    h.update(
        u32::try_from(inputs.arguments.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for a in &inputs.arguments {
        h.update(a);
    }
    h.update(inputs.stdin);
    h.update((result.len() as u64).to_be_bytes());
    h.update(result);
    h.finalize().into()
}
