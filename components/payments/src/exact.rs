//! The "exact" scheme on EVM: an EIP-3009 `TransferWithAuthorization` signed under the token's
//! EIP-712 domain, checked offline against the price. The chain (balance, nonce state) is the
//! facilitator's business; this module proves who authorised what.

use alloy_primitives::{Address, B256, Signature, U256};
use x402_chain_eip155::v1_eip155_exact::ExactEvmPayload;
use x402_eip3009::{TransferWithAuthorization, token_domain};

use crate::Refusal;

/// Half the secp256k1 group order: signatures with a larger `s` are malleable copies, refused
/// (as FiatToken's `ECRecover` refuses them on chain).
const HALF_N: U256 = U256::from_be_bytes(alloy_primitives::hex!(
    "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0"
));

/// Seconds an authorization must still be valid for when it arrives (the reference
/// facilitator's margin for getting the transfer on chain).
pub const VALIDITY_MARGIN_SECONDS: u64 = 6;

/// What the price requires of an authorization.
#[derive(Debug, Clone)]
pub struct Expected {
    /// EIP-155 chain id of the token.
    pub chain_id: u64,
    /// The token contract.
    pub asset: Address,
    /// The recipient.
    pub pay_to: Address,
    /// The exact amount, atomic units.
    pub amount: U256,
    /// EIP-712 domain name and version of the token.
    pub name: String,
    /// EIP-712 domain version.
    pub version: String,
}

/// Checks an EIP-3009 payload at time `now` (Unix seconds); returns the payer.
///
/// # Errors
/// A [`Refusal`] with the x402 reason string of the first check that fails, in the reference
/// order: recipient, value (must be equal), validity window, signature.
pub fn check(p: &ExactEvmPayload, e: &Expected, now: u64) -> Result<Address, Refusal> {
    let a = &p.authorization;
    if a.to != e.pay_to {
        return Err(Refusal::new(
            "invalid_exact_evm_payload_recipient_mismatch",
            format!("the authorization pays {}, not {}", a.to, e.pay_to),
        ));
    }
    if a.value != e.amount {
        return Err(Refusal::new(
            "invalid_exact_evm_payload_authorization_value",
            format!(
                "the authorization is for {}, the price is exactly {}",
                a.value, e.amount
            ),
        ));
    }
    if a.valid_before.as_secs() < now.saturating_add(VALIDITY_MARGIN_SECONDS) {
        return Err(Refusal::new(
            "invalid_exact_evm_payload_authorization_valid_before",
            "the authorization has expired or expires within 6 seconds",
        ));
    }
    if a.valid_after.as_secs() > now {
        return Err(Refusal::new(
            "invalid_exact_evm_payload_authorization_valid_after",
            "the authorization is not valid yet",
        ));
    }
    let bad_signature = |why: &str| {
        Refusal::new(
            "invalid_exact_evm_payload_signature",
            format!("signature: {why}"),
        )
    };
    let domain = token_domain(e.name.clone(), e.version.clone(), e.chain_id, e.asset);
    let message = TransferWithAuthorization {
        from: a.from,
        to: a.to,
        value: a.value,
        validAfter: U256::from(a.valid_after.as_secs()),
        validBefore: U256::from(a.valid_before.as_secs()),
        nonce: a.nonce,
    };
    let hash: B256 = message.signing_hash(&domain);
    let signer = signer(&hash, p.signature.as_ref()).map_err(bad_signature)?;
    if signer != a.from {
        return Err(bad_signature(
            "not signed by `from` under this token's domain",
        ));
    }
    Ok(signer)
}

/// The address whose 65-byte EOA signature (`r‖s‖v`, `v` 27 or 28, low `s`) `bytes` is over
/// `hash`.
///
/// # Errors
/// Why the signature is refused.
pub fn signer(hash: &B256, bytes: &[u8]) -> Result<Address, &'static str> {
    if bytes.len() != 65 {
        return Err("not a 65-byte EOA signature");
    }
    if bytes[64] != 27 && bytes[64] != 28 {
        return Err("v must be 27 or 28");
    }
    let sig = Signature::try_from(bytes).map_err(|_| "malformed")?;
    if sig.s() > HALF_N {
        return Err("high s (malleable)");
    }
    recover(hash, &sig, bytes).ok_or("does not recover")
}

/// The address that signed `hash`: recovered natively by the host
/// (`hypervisor:host/crypto.recover-secp256k1`, libsecp256k1) inside the component, where
/// recovery in WebAssembly would cost several times more.
#[cfg(target_arch = "wasm32")]
fn recover(hash: &B256, _sig: &Signature, rsv: &[u8]) -> Option<Address> {
    let key = crate::component::host_crypto::recover_secp256k1(hash.as_slice(), rsv).ok()?;
    (key.len() == 65 && key[0] == 4).then(|| Address::from_raw_public_key(&key[1..]))
}

/// The address that signed `hash` (natively: alloy's recovery, used by the unit tests).
#[cfg(not(target_arch = "wasm32"))]
fn recover(hash: &B256, sig: &Signature, _rsv: &[u8]) -> Option<Address> {
    sig.recover_address_from_prehash(hash).ok()
}
