//! The message of x402's "exact" scheme on EVM, defined once for the paying client
//! (`client/`, which signs it) and the payments component (`components/payments/`, which
//! verifies it): the EIP-3009 `TransferWithAuthorization`, signed under the token contract's
//! EIP-712 domain.
//!
//! `no_std` (with `alloc`), so that it builds for `wasm32-wasip2` components as well as for
//! the host. Signing and recovery stay with the callers (a local key in the client, the host's
//! native recovery in the component): this crate only says what is signed.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::string::String;

use alloy_primitives::{Address, B256};
use alloy_sol_types::{Eip712Domain, SolStruct, eip712_domain, sol};

sol! {
    /// The EIP-3009 message (FiatToken's `TRANSFER_WITH_AUTHORIZATION_TYPEHASH`): `from`
    /// allows `to` to receive `value` atomic units of the token, valid strictly after
    /// `validAfter` and strictly before `validBefore` (Unix seconds), once per `nonce`.
    #[derive(Debug, PartialEq, Eq)]
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

/// The EIP-712 domain of an EIP-3009 token: its `name` and `version` (x402's `extra.name` and
/// `extra.version`, e.g. `USDC` and `2`), its EIP-155 chain and its contract address.
pub fn token_domain(name: String, version: String, chain_id: u64, token: Address) -> Eip712Domain {
    eip712_domain! {
        name: name,
        version: version,
        chain_id: chain_id,
        verifying_contract: token,
    }
}

impl TransferWithAuthorization {
    /// The EIP-712 hash that the payer signs (and from which the verifier recovers the payer)
    /// under the token's `domain` (see [`token_domain`]).
    pub fn signing_hash(&self, domain: &Eip712Domain) -> B256 {
        self.eip712_signing_hash(domain)
    }
}

#[cfg(test)]
mod tests;
