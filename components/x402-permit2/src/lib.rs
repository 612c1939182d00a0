//! The message of x402's "upto" scheme on EVM (`specs/schemes/upto/scheme_upto_evm.md`),
//! defined once for the paying side and the payments component: Permit2's
//! `PermitWitnessTransferFrom` with the upto proxy's witness `{to, facilitator, validAfter}`,
//! signed under Permit2's EIP-712 domain (`name: "Permit2"`, no version).
//!
//! `no_std` (with `alloc`), so that it builds for `wasm32-wasip2` components as well as for the
//! host. Signing and recovery stay with the callers: this crate only says what is signed.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use alloy_primitives::{Address, B256, address};
use alloy_sol_types::{Eip712Domain, SolStruct, eip712_domain, sol};

/// Permit2's canonical address (the same on every EVM chain).
pub const PERMIT2_ADDRESS: Address = address!("0x000000000022D473030F116dDEE9F6B43aC78BA3");

/// The x402 upto proxy (`x402UptoPermit2Proxy`): the `spender` of every upto authorization,
/// which transfers at most the permitted amount to `witness.to`, and only when called by
/// `witness.facilitator`.
pub const UPTO_PROXY_ADDRESS: Address = address!("0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002");

sol! {
    /// What may be moved: at most `amount` atomic units of `token`.
    #[derive(Debug, PartialEq, Eq)]
    struct TokenPermissions {
        address token;
        uint256 amount;
    }

    /// The upto proxy's witness: the recipient, the only address allowed to settle, and the
    /// time (Unix seconds) before which the authorization is not valid.
    #[derive(Debug, PartialEq, Eq)]
    struct Witness {
        address to;
        address facilitator;
        uint256 validAfter;
    }

    /// The message the payer signs: `spender` (the upto proxy) may transfer up to
    /// `permitted` before `deadline`, once per `nonce` (Permit2's unordered nonces, per owner).
    #[derive(Debug, PartialEq, Eq)]
    struct PermitWitnessTransferFrom {
        TokenPermissions permitted;
        address spender;
        uint256 nonce;
        uint256 deadline;
        Witness witness;
    }
}

/// Permit2's EIP-712 domain on EIP-155 chain `chain_id`.
pub fn permit2_domain(chain_id: u64) -> Eip712Domain {
    eip712_domain! {
        name: "Permit2",
        chain_id: chain_id,
        verifying_contract: PERMIT2_ADDRESS,
    }
}

impl PermitWitnessTransferFrom {
    /// The EIP-712 hash the payer signs on chain `chain_id` (see [`permit2_domain`]).
    pub fn signing_hash(&self, chain_id: u64) -> B256 {
        self.eip712_signing_hash(&permit2_domain(chain_id))
    }
}

#[cfg(test)]
mod tests;
