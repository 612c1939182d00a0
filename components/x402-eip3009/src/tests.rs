//! The x402 specification's exact-EVM example (`docs/research/x402.md`, section 5): its
//! EIP-712 constants, signing hash and signer.

use alloc::string::ToString;

use alloy_primitives::{Address, B256, Signature, U256, address, b256, hex};
use alloy_sol_types::SolStruct;

use super::*;

const USDC_BASE_SEPOLIA: Address = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
const SPEC_PAYER: Address = address!("0x857b06519E91e3A54538791bDbb0E22373e36b66");
/// The example's signature (r, s, v = 28).
const SPEC_SIGNATURE: [u8; 65] = hex!(
    "2d6a7588d6acca505cbf0d9a4a227e0c52c6c34008c8e8986a12832597641736"
    "08a2ce6496642e377d6da8dbbf5836e9bd15092f9ecab05ded3d6293af148b57"
    "1c"
);

fn spec_message() -> TransferWithAuthorization {
    TransferWithAuthorization {
        from: SPEC_PAYER,
        to: address!("0x209693Bc6afc0C5328bA36FaF03C514EF312287C"),
        value: U256::from(10_000),
        validAfter: U256::from(1_740_672_089u64),
        validBefore: U256::from(1_740_672_154u64),
        nonce: b256!("0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480"),
    }
}

fn signer(name: &str, chain_id: u64) -> Address {
    let signature = Signature::try_from(&SPEC_SIGNATURE[..]).unwrap();
    let domain = token_domain(
        name.to_string(),
        "2".to_string(),
        chain_id,
        USDC_BASE_SEPOLIA,
    );
    let hash: B256 = spec_message().signing_hash(&domain);
    signature.recover_address_from_prehash(&hash).unwrap()
}

#[test]
fn the_type_hashes_are_fiat_token_s() {
    assert_eq!(
        spec_message().eip712_type_hash(),
        b256!("0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267")
    );
    let domain = token_domain("USDC".into(), "2".into(), 84_532, USDC_BASE_SEPOLIA);
    assert_eq!(
        domain.type_hash(),
        b256!("0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f")
    );
}

#[test]
fn the_specification_example_hashes_and_recovers_its_payer() {
    let domain = token_domain("USDC".into(), "2".into(), 84_532, USDC_BASE_SEPOLIA);
    assert_eq!(
        spec_message().signing_hash(&domain),
        b256!("0xf256992871671abcb27ff92885a7afa46218724e5fc0bac35d050115aa1d22e6")
    );
    assert_eq!(signer("USDC", 84_532), SPEC_PAYER);
    // Another domain (name or chain) recovers someone else.
    assert_ne!(signer("USD Coin", 84_532), SPEC_PAYER);
    assert_ne!(signer("USDC", 8453), SPEC_PAYER);
}
