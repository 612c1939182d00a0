//! Unit tests of paying: offers, spending limits, signed payments.

use super::*;

const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
const USDC_BASE_SEPOLIA: &str = "0x036CbD53842c5426634e7C541eC2c73a3D5a1a36";

/// A v2 offer of `amount` to `PAY_TO` in USDC on Base Sepolia.
fn offer(amount: &str, timeout: Value) -> Offer {
    Offer {
        version: 2,
        requirements: json!({
            "scheme": "exact",
            "network": "eip155:84532",
            "amount": amount,
            "asset": USDC_BASE_SEPOLIA,
            "payTo": PAY_TO,
            "maxTimeoutSeconds": timeout,
            "extra": {"name": "USDC", "version": "2"},
        }),
        resource: Some(json!({"url": "http://localhost/x402_execute/test/wasm"})),
    }
}

fn addr(s: &str) -> Address {
    s.parse().unwrap()
}

/// The signed authorization of a payment header.
fn authorization(value: &str) -> Value {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .unwrap();
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    doc["payload"]["authorization"].clone()
}

#[test]
fn a_price_above_the_limit_is_refused_before_signing() {
    let wallet = Wallet::random().unwrap();
    let err = wallet
        .pay(
            &offer("10001", json!(60)),
            &PaymentLimit::new(10_000),
            1_000,
        )
        .unwrap_err();
    assert!(
        matches!(
            &err,
            PayError::Refused(PaymentRefusal::AmountAboveLimit { asked, limit: 10_000 })
                if asked == "10001"
        ),
        "{err}"
    );
    // Far above anything a u128 holds: still refused, not wrapped.
    let huge = U256::MAX.to_string();
    let err = wallet
        .pay(
            &offer(&huge, json!(60)),
            &PaymentLimit::new(u128::MAX),
            1_000,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            PayError::Refused(PaymentRefusal::AmountAboveLimit { .. })
        ),
        "{err}"
    );
    // At the limit, it signs.
    let (name, value) = wallet
        .pay(
            &offer("10000", json!(60)),
            &PaymentLimit::new(10_000),
            1_000,
        )
        .unwrap();
    assert_eq!(name, "PAYMENT-SIGNATURE");
    assert_eq!(authorization(&value)["value"], "10000");
}

#[test]
fn another_recipient_or_token_is_refused_when_pinned() {
    let wallet = Wallet::random().unwrap();
    let o = offer("10000", json!(60));
    let elsewhere = wallet.address();
    let err = wallet
        .pay(&o, &PaymentLimit::new(10_000).pay_to(elsewhere), 1_000)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            PayError::Refused(PaymentRefusal::PayToMismatch { asked, .. })
                if asked == PAY_TO
        ),
        "{err}"
    );
    let err = wallet
        .pay(&o, &PaymentLimit::new(10_000).asset(elsewhere), 1_000)
        .unwrap_err();
    assert!(
        matches!(err, PayError::Refused(PaymentRefusal::AssetMismatch { .. })),
        "{err}"
    );
    let pinned = PaymentLimit::new(10_000)
        .pay_to(addr(PAY_TO))
        .asset(addr(USDC_BASE_SEPOLIA));
    wallet.pay(&o, &pinned, 1_000).unwrap();
}

#[test]
fn the_validity_window_is_capped_and_never_overflows() {
    let wallet = Wallet::random().unwrap();
    let limit = PaymentLimit::new(10_000);
    let window = |timeout: Value, now: u64| {
        let (_, value) = wallet.pay(&offer("10000", timeout), &limit, now).unwrap();
        let a = authorization(&value);
        let n = |k: &str| a[k].as_str().unwrap().parse::<u64>().unwrap();
        (n("validAfter"), n("validBefore"))
    };
    assert_eq!(window(json!(60), 10_000), (9_400, 10_060));
    assert_eq!(window(Value::Null, 10_000), (9_400, 10_060));
    assert_eq!(
        window(json!(u64::MAX), 10_000),
        (9_400, 10_000 + MAX_VALIDITY_SECONDS)
    );
    assert_eq!(
        window(json!(u64::MAX), u64::MAX - 5),
        (u64::MAX - 605, u64::MAX)
    );
}

#[test]
fn the_signature_recovers_the_wallet_under_the_token_s_domain() {
    let wallet = Wallet::random().unwrap();
    let (_, value) = wallet
        .pay(
            &offer("10000", json!(60)),
            &PaymentLimit::new(10_000),
            10_000,
        )
        .unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&value)
        .unwrap();
    let payload = serde_json::from_slice::<Value>(&bytes).unwrap()["payload"].clone();
    let a = &payload["authorization"];
    let n = |k: &str| U256::from_str_radix(a[k].as_str().unwrap(), 10).unwrap();
    let message = TransferWithAuthorization {
        from: addr(a["from"].as_str().unwrap()),
        to: addr(a["to"].as_str().unwrap()),
        value: n("value"),
        validAfter: n("validAfter"),
        validBefore: n("validBefore"),
        nonce: a["nonce"].as_str().unwrap().parse().unwrap(),
    };
    let signature: alloy_primitives::Signature =
        payload["signature"].as_str().unwrap().parse().unwrap();
    let signer = |name: &str, chain_id: u64| {
        let domain = token_domain(name.into(), "2".into(), chain_id, addr(USDC_BASE_SEPOLIA));
        signature
            .recover_address_from_prehash(&message.signing_hash(&domain))
            .unwrap()
    };
    assert_eq!(signer("USDC", 84_532), wallet.address());
    assert_ne!(signer("USDC", 8453), wallet.address());
}

/// A metered (`upto`) v2 offer: the maximum `amount`, the facilitator that settles.
fn metered(amount: &str) -> Value {
    json!({
        "x402Version": 2,
        "resource": {"url": "http://localhost/agents/meter/invoke"},
        "accepts": [{
            "scheme": "upto",
            "network": "eip155:84532",
            "amount": amount,
            "asset": USDC_BASE_SEPOLIA,
            "payTo": PAY_TO,
            "maxTimeoutSeconds": 60,
            "extra": {
                "name": "USDC",
                "version": "2",
                "facilitatorAddress": "0x70997970C51812dC3A010c7D01b50e20d4DC79c8",
                "tariff": {"fixed": "1"},
            },
        }],
    })
}

#[test]
fn a_metered_offer_is_paid_with_a_permit2_authorization_for_its_maximum() {
    let wallet = Wallet::random().unwrap();
    let upto = Offer::from_document(&metered("5000")).unwrap();
    assert!(upto.is_metered());
    // The limit applies to the maximum.
    assert!(matches!(
        wallet.pay(&upto, &PaymentLimit::new(4_999), 10_000),
        Err(PayError::Refused(_))
    ));
    let (name, doc) = wallet
        .payload(&upto, &PaymentLimit::new(5_000), 10_000)
        .unwrap();
    assert_eq!(name, "PAYMENT-SIGNATURE");
    assert_eq!(doc["accepted"], metered("5000")["accepts"][0]);
    let a = &doc["payload"]["permit2Authorization"];
    assert_eq!(a["spender"], UPTO_PROXY_ADDRESS.to_checksum(None));
    assert_eq!(a["permitted"]["amount"], "5000");
    assert_eq!(a["deadline"], "10060");
    assert_eq!(a["witness"]["to"], PAY_TO);
    let n = |v: &Value| U256::from_str_radix(v.as_str().unwrap(), 10).unwrap();
    let message = PermitWitnessTransferFrom {
        permitted: TokenPermissions {
            token: addr(a["permitted"]["token"].as_str().unwrap()),
            amount: n(&a["permitted"]["amount"]),
        },
        spender: addr(a["spender"].as_str().unwrap()),
        nonce: n(&a["nonce"]),
        deadline: n(&a["deadline"]),
        witness: Witness {
            to: addr(a["witness"]["to"].as_str().unwrap()),
            facilitator: addr(a["witness"]["facilitator"].as_str().unwrap()),
            validAfter: n(&a["witness"]["validAfter"]),
        },
    };
    let signature: alloy_primitives::Signature = doc["payload"]["signature"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let signer = signature
        .recover_address_from_prehash(&message.signing_hash(84_532))
        .unwrap();
    assert_eq!(signer, wallet.address());
    assert_eq!(a["from"], wallet.address().to_checksum(None));
    // The host's replay key of this payment (the payments component's format).
    let header = base64::engine::general_purpose::STANDARD.encode(doc.to_string());
    assert_eq!(
        metered_replay_key(&header).unwrap(),
        format!(
            "permit2:84532:{:#x}:{:#x}",
            wallet.address(),
            n(&a["nonce"])
        )
        .to_lowercase()
    );
    // An exact offer beside it is preferred; v1 has no upto.
    let mut both = metered("5000");
    both["accepts"]
        .as_array_mut()
        .unwrap()
        .push(offer("10", json!(60)).requirements);
    assert!(!Offer::from_document(&both).unwrap().is_metered());
    let mut v1 = metered("5000");
    v1["x402Version"] = json!(1);
    assert!(Offer::from_document(&v1).is_err());
}
