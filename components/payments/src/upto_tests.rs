//! The header was made by the official `@x402/evm` 2.27 upto client (`x402Client` with
//! `UptoEvmScheme`, anvil's first key) for the requirements of [`terms`], at deadline
//! 1795780316.

use alloy_primitives::address;
use serde_json::json;

use super::*;

const HEADER: &str = include_str!("../tests/upto-v2-header.txt");
const RESOURCE: &str = "http://127.0.0.1:3000/agents/meter/invoke";
const PAYER: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const FACILITATOR: Address = address!("0x70997970C51812dC3A010c7D01b50e20d4DC79c8");
const NOW: u64 = 1_795_780_300;
const TARIFF: &str = r#"{"fixed":"100","per_million_fuel":"7","per_ms":"0","per_kib_out":"3"}"#;

fn price() -> Price {
    Price {
        amount: "10000".into(),
        asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
        network: "eip155:84532".into(),
        pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into(),
        eip712_name: "USDC".into(),
        eip712_version: "2".into(),
        max_timeout_seconds: 60,
    }
}

fn terms() -> UptoTerms {
    UptoTerms::new(&price(), FACILITATOR, TARIFF).unwrap()
}

fn reason(r: Result<Accepted, Refusal>) -> String {
    r.expect_err("must be refused").reason
}

#[test]
fn the_official_clients_payment_is_accepted() {
    let a = verify(HEADER.trim(), &terms(), RESOURCE, NOW).unwrap();
    assert_eq!(a.payer.to_checksum(None), PAYER);
    assert_eq!(
        a.replay_key,
        "permit2:84532:0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266:\
         0x32f2976b8d3dd352586ff3fd1b1d7876d331badb5f1915a376f3f42271247e0e"
    );
    assert_eq!(inspect(HEADER.trim(), &terms(), RESOURCE).unwrap(), a);
}

#[test]
fn the_requirements_carry_the_maximum_the_facilitator_and_the_tariff() {
    let r = terms().v2_requirements();
    assert_eq!(r["scheme"], "upto");
    assert_eq!(r["amount"], "10000");
    assert_eq!(
        r["extra"]["facilitatorAddress"],
        FACILITATOR.to_checksum(None)
    );
    assert_eq!(r["extra"]["tariff"]["per_million_fuel"], "7");
    let settle = terms().settle_requirements("2500");
    assert_eq!(settle["amount"], "2500");
    assert_eq!(settle["extra"], r["extra"]);
    assert!(UptoTerms::new(&price(), FACILITATOR, "[1]").is_err());
}

#[test]
fn each_changed_term_is_refused_with_the_reference_reason() {
    let with = |f: fn(&mut Price)| {
        let mut p = price();
        f(&mut p);
        UptoTerms::new(&p, FACILITATOR, TARIFF).unwrap()
    };
    let v = |t: &UptoTerms, now| verify(HEADER.trim(), t, RESOURCE, now);
    // A changed price changes the requirements the payment copied.
    assert_eq!(
        reason(v(&with(|p| p.amount = "10001".into()), NOW)),
        "invalid_payment_requirements"
    );
    assert_eq!(
        reason(v(&with(|p| p.network = "eip155:8453".into()), NOW)),
        "invalid_upto_evm_network_mismatch"
    );
    let other_facilitator = UptoTerms::new(&price(), Address::repeat_byte(7), TARIFF).unwrap();
    assert_eq!(
        reason(v(&other_facilitator, NOW)),
        "invalid_payment_requirements"
    );
    let other_tariff = UptoTerms::new(&price(), FACILITATOR, r#"{"fixed":"1"}"#).unwrap();
    assert_eq!(
        reason(v(&other_tariff, NOW)),
        "invalid_payment_requirements"
    );
    assert_eq!(
        reason(v(&terms(), 1_795_780_311)),
        "permit2_deadline_expired"
    );
    assert_eq!(
        reason(verify(
            HEADER.trim(),
            &terms(),
            "http://127.0.0.1:3000/other",
            NOW
        )),
        "invalid_payment_requirements"
    );
}

/// Rewrites the payload of the official header and re-encodes it.
fn tampered(f: impl FnOnce(&mut Value)) -> String {
    let mut raw = decode(HEADER.trim()).unwrap();
    f(&mut raw);
    encode(&raw)
}

#[test]
fn a_tampered_authorization_is_refused() {
    let t = terms();
    let auth = "/payload/permit2Authorization";
    let cases: [(&str, Value, &str); 6] = [
        (
            "spender",
            json!("0x402085c248EeA27D92E8b30b2C58ed07f9E20001"),
            "invalid_permit2_spender",
        ),
        (
            "witness/to",
            json!(PAYER),
            "invalid_permit2_recipient_mismatch",
        ),
        (
            "witness/facilitator",
            json!(PAYER),
            "upto_facilitator_mismatch",
        ),
        ("permitted/token", json!(PAYER), "permit2_token_mismatch"),
        (
            "permitted/amount",
            json!("20000"),
            "permit2_amount_mismatch",
        ),
        ("nonce", json!("1"), "invalid_permit2_signature"),
    ];
    for (field, value, want) in cases {
        let header = tampered(|raw| {
            *raw.pointer_mut(&format!("{auth}/{field}")).unwrap() = value.clone();
        });
        assert_eq!(reason(verify(&header, &t, RESOURCE, NOW)), want, "{field}");
    }
    let early = tampered(|raw| {
        *raw.pointer_mut(&format!("{auth}/witness/validAfter"))
            .unwrap() = json!("1795780305");
    });
    assert_eq!(
        reason(verify(&early, &t, RESOURCE, NOW)),
        "permit2_not_yet_valid"
    );
    let exact = tampered(|raw| raw["accepted"]["scheme"] = json!("exact"));
    assert_eq!(
        reason(verify(&exact, &t, RESOURCE, NOW)),
        "invalid_upto_evm_scheme"
    );
    let v1 = tampered(|raw| raw["x402Version"] = json!(1));
    assert_eq!(
        reason(verify(&v1, &t, RESOURCE, NOW)),
        "invalid_x402_version"
    );
    let no_payload = tampered(|raw| {
        raw.as_object_mut().unwrap().remove("payload");
    });
    assert_eq!(
        reason(verify(&no_payload, &t, RESOURCE, NOW)),
        "invalid_payload"
    );
    assert_eq!(reason(verify("%%%", &t, RESOURCE, NOW)), "invalid_payload");
}

#[test]
fn charges_are_at_most_the_maximum() {
    let t = terms();
    assert_eq!(charge("0", &t).unwrap(), U256::ZERO);
    assert_eq!(charge("10000", &t).unwrap(), U256::from(10_000u64));
    assert_eq!(
        charge("10001", &t).unwrap_err().reason,
        "invalid_upto_evm_payload_settlement_exceeds_amount"
    );
    assert_eq!(
        charge("-1", &t).unwrap_err().reason,
        "invalid_payment_requirements"
    );
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            crate::protocol::settlement_header(
                true,
                "0xab",
                "eip155:84532",
                PAYER,
                None,
                Some("2500"),
            ),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(header["amount"], "2500");
    assert_eq!(header["transaction"], "0xab");
}
