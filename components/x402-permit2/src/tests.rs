//! The vector was made with viem 2.57 (`hashTypedData` and `signTypedData` of a local
//! account), with the types `@x402/evm` 2.27 exports as `uptoPermit2WitnessTypes` and the
//! domain its upto client signs under.

extern crate std;

use alloy_primitives::{Address, B256, Signature, U256, address, b256, hex};

use super::*;

fn message() -> PermitWitnessTransferFrom {
    PermitWitnessTransferFrom {
        permitted: TokenPermissions {
            token: address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e"),
            amount: U256::from(10_000u64),
        },
        spender: UPTO_PROXY_ADDRESS,
        nonce: U256::from(0x1234_5678_90ab_cdefu64),
        deadline: U256::from(1_900_000_000u64),
        witness: Witness {
            to: address!("0x209693Bc6afc0C5328bA36FaF03C514EF312287C"),
            facilitator: address!("0x70997970C51812dc3A010C7d01b50e20d4dc79C8"),
            validAfter: U256::ZERO,
        },
    }
}

const HASH: B256 = b256!("0x743a17bb9527debe461b2d23a446afc1a664f6d15e2fd0fe95615556ee65aad5");
const SIGNATURE: [u8; 65] = hex!(
    "cbf9856efb920cd6f5bf82c2b9b65f04581d5af3fc8431e37840f7e775be746a571662aa2cf718ba8dc3f0d96eeb0a3b7b684c8f1066816bc34f0c2d09f95b831c"
);
/// Anvil's first account, which signed the vector.
const SIGNER: Address = address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");

#[test]
fn the_hash_is_the_one_viem_signs() {
    assert_eq!(message().signing_hash(84532), HASH);
    assert_ne!(
        message().signing_hash(8453),
        HASH,
        "the chain is in the domain"
    );
}

#[test]
fn the_official_clients_signature_recovers_the_payer() {
    let sig = Signature::try_from(&SIGNATURE[..]).unwrap();
    assert_eq!(sig.recover_address_from_prehash(&HASH).unwrap(), SIGNER);
    let mut other = message();
    other.permitted.amount = U256::from(10_001u64);
    let moved = sig
        .recover_address_from_prehash(&other.signing_hash(84532))
        .unwrap();
    assert_ne!(moved, SIGNER, "a changed maximum is another message");
}

#[test]
fn the_addresses_are_the_sdks_constants() {
    // `@x402/evm` 2.27: PERMIT2_ADDRESS and x402UptoPermit2ProxyAddress.
    assert_eq!(
        PERMIT2_ADDRESS.to_checksum(None),
        "0x000000000022D473030F116dDEE9F6B43aC78BA3"
    );
    assert_eq!(
        UPTO_PROXY_ADDRESS.to_checksum(None),
        "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002"
    );
}
