//! x402 payment headers: `PAYMENT-SIGNATURE` (v2) and `X-PAYMENT` (v1) as the host hands them
//! to the payments component (`components/payments/src/protocol.rs`): base64 → JSON → payload,
//! then the offline EIP-3009 checks (recipient, amount, validity window, signature recovery)
//! against the x402 specification's example price, plus the facilitator's answers
//! (`facilitator.rs`). The same bytes go through the metered (`upto`, Permit2) checks of
//! `upto.rs` against a metered price. Every header must be accepted or refused with a reason,
//! never panic.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use payments::facilitator::{request_body, settle_answer, verify_answer};
use payments::protocol::{self, Price, Resource, Terms, Version};
use payments::upto::{self, UptoTerms};

/// Inside the example authorization's window.
const NOW: u64 = 1_740_672_100;

static TERMS: LazyLock<Terms> = LazyLock::new(|| {
    Terms::new(&Price {
        amount: "10000".into(),
        asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
        network: "eip155:84532".into(),
        pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into(),
        eip712_name: "USDC".into(),
        eip712_version: "2".into(),
        max_timeout_seconds: 60,
    })
    .expect("the specification's price")
});

/// A metered price: the example price as the maximum, a facilitator and a tariff (the official
/// upto client's seed, `upto_v2.txt`, was signed for these).
static METERED: LazyLock<UptoTerms> = LazyLock::new(|| {
    UptoTerms::new(
        &Price {
            amount: "10000".into(),
            asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
            network: "eip155:84532".into(),
            pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into(),
            eip712_name: "USDC".into(),
            eip712_version: "2".into(),
            max_timeout_seconds: 60,
        },
        "0x70997970C51812dC3A010c7D01b50e20d4DC79c8"
            .parse()
            .expect("an address"),
        r#"{"fixed":"100","per_million_fuel":"7","per_ms":"0","per_kib_out":"3"}"#,
    )
    .expect("a metered price")
});

/// Inside the metered seed's window.
const METERED_NOW: u64 = 1_795_780_300;
const METERED_URL: &str = "http://127.0.0.1:3000/agents/meter/invoke";

static RESOURCE: LazyLock<Resource> = LazyLock::new(|| Resource {
    url: "http://127.0.0.1:3000/x402_execute/test/wasm".into(),
    description: "one execution".into(),
    mime_type: "application/json".into(),
});

fuzz_target!(|data: &[u8]| {
    // The host passes the header only when it is ASCII (host/src/http/extract.rs); take any
    // UTF-8 here, which is a superset.
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let _ = protocol::decode(header);
    for version in [Version::V1, Version::V2] {
        let verified = protocol::verify(version, header, &TERMS, &RESOURCE.url, NOW);
        let inspected = protocol::inspect(version, header, &TERMS, &RESOURCE.url);
        if let Ok(a) = verified {
            // What verify accepts, settle (inspect) must accept the same way.
            assert_eq!(inspected.expect("inspect accepts a verified payment"), a);
        }
        // Facilitator mode forwards the decoded header in the /verify and /settle body.
        if let Ok(body) = request_body(version, header, &TERMS, &RESOURCE) {
            serde_json::from_slice::<serde_json::Value>(&body).expect("the body is JSON");
        }
    }
    // Metered (upto): what verify accepts, settle's inspect reads the same way.
    if let Ok(a) = upto::verify(header, &METERED, METERED_URL, METERED_NOW) {
        assert_eq!(
            upto::inspect(header, &METERED, METERED_URL).expect("inspect accepts a verified payment"),
            a
        );
    }
    let _ = upto::charge(header, &METERED);
    // A facilitator's /verify and /settle answers (remote input too).
    for status in [200, 400, 500] {
        let _ = verify_answer(status, data);
        let _ = settle_answer(status, data);
    }
});
