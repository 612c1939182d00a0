//! x402's offer-and-receipt extension over real HTTP: a 402's offers and a paid run's receipt
//! are signed by the attested key (JWS, `kid` its did:key) and state the run; a host without an
//! attested key signs neither. The official verifier's part is in
//! sdk/typescript/test/payments.test.js and vectors.test.js.

use hypervisor_client::ExecuteInput;
use hypervisor_client::x402::{Offer, Wallet};
use hypervisor_protocol::offer_receipt::{self as or, Artifact};
use hypervisor_protocol::{EncodedPublicKey, sha256};
use serde_json::Value;

use crate::harness::{TestServer, get_json, session, wasm};
use crate::payments::{b64_json, header, limit, now, payments_table};

const ROUTE: &str = "/x402_execute/test/wasm";

fn attested_key(server: &TestServer) -> EncodedPublicKey {
    let (status, doc) = get_json(server, "/attestation");
    assert_eq!(status, 200, "{doc}");
    EncodedPublicKey::from_hex(
        "signing_key",
        doc["attestation"]["signing_key"].as_str().unwrap(),
    )
    .unwrap()
}

#[cfg(feature = "simulated-attestation")]
#[test]
fn offers_and_receipts_are_signed_by_the_attested_key_and_state_the_run() {
    let server = TestServer::start_with(&format!(
        "{}[attestation]\nprovider = \"simulated\"\n",
        payments_table("")
    ));
    let key = attested_key(&server);
    let (_c, _k, s) = session(&server);
    let program = wasm("hello");
    let (req, _) = s.encrypt_execution(&ExecuteInput::new(&program)).unwrap();
    let body = serde_json::to_value(req).unwrap();
    let (status, headers, json) = server.client().post_json_with(ROUTE, &body, &[]).unwrap();
    assert_eq!(status, 402);
    let required = b64_json(header(&headers, "payment-required").unwrap());
    let offers = required["extensions"]["offer-receipt"]["info"]["offers"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(offers.len(), required["accepts"].as_array().unwrap().len());
    assert_eq!(offers[0]["format"], "jws");
    assert_eq!(offers[0]["acceptIndex"], 0);
    let offer = or::verify(
        offers[0]["signature"].as_str().unwrap(),
        Artifact::Offer,
        &key,
    )
    .unwrap();
    let accepted = &required["accepts"][0];
    for field in ["scheme", "network", "asset", "payTo", "amount"] {
        assert_eq!(offer[field], accepted[field], "{field}");
    }
    assert_eq!(offer["resourceUrl"], required["resource"]["url"]);
    let valid_until = offer["validUntil"].as_u64().unwrap();
    assert!(
        valid_until > now() && valid_until <= now() + 61,
        "{valid_until}"
    );
    // Not as a receipt, and not as another key's.
    let jws = offers[0]["signature"].as_str().unwrap();
    assert!(or::verify(jws, Artifact::Receipt, &key).is_err());
    let other = hypervisor_protocol::ClientSecret::generate()
        .unwrap()
        .public_key();
    assert!(or::verify(jws, Artifact::Offer, &other).is_err());

    // Paid: the settlement carries the receipt.
    let wallet = Wallet::random().unwrap();
    let offer_402 = Offer::from_402(header(&headers, "payment-required"), &json).unwrap();
    let (name, value) = wallet.pay(&offer_402, &limit(), now()).unwrap();
    let (status, headers, out) = server
        .client()
        .post_json_with(ROUTE, &body, &[(name, value)])
        .unwrap();
    assert_eq!(status, 200, "{out}");
    let settlement = b64_json(header(&headers, "payment-response").unwrap());
    let receipt = &settlement["extensions"]["offer-receipt"]["info"]["receipt"];
    assert_eq!(receipt["format"], "jws");
    let payload = or::verify(
        receipt["signature"].as_str().unwrap(),
        Artifact::Receipt,
        &key,
    )
    .unwrap();
    assert_eq!(payload["version"], 1);
    assert_eq!(payload["network"], "eip155:84532");
    assert_eq!(payload["resourceUrl"], offer["resourceUrl"]);
    assert_eq!(
        payload["payer"].as_str().unwrap().to_lowercase(),
        format!("{:#x}", wallet.address())
    );
    // Verify-only: the authorization was verified and recorded, no transfer yet; it says so.
    assert_eq!(payload.get("transaction"), None);
    assert_eq!(payload["hypervisor"]["settled"], false);
    assert!(payload["issuedAt"].as_u64().unwrap() >= now() - 60);
    let run = &payload["hypervisor"];
    assert_eq!(
        run["executionId"].as_str(),
        header(&headers, "x-execution-id")
    );
    assert_eq!(run["route"], ROUTE);
    assert_eq!(run["codeHash"], hex::encode(sha256(&program)));
    assert_eq!(run["resultCommitment"], out["result_commitment"]);
    assert_eq!(run["status"], "exited");
    assert_eq!(run["amount"], "10000");
    assert_eq!(run["tee"], "simulated");
    let (_, attestation) = get_json(&server, "/attestation");
    let evidence = attestation["attestation"]["evidence"].as_str().unwrap();
    assert_eq!(
        run["evidenceSha256"],
        hex::encode(sha256(&hex::decode(evidence).unwrap()))
    );
    assert!(
        run["attestation"]
            .as_str()
            .unwrap()
            .ends_with("/attestation")
    );

    // The discovery listing carries the same signed offers, and can be filtered on them.
    let (_, all) = get_json(&server, "/discovery/resources");
    let (_, signed) = get_json(&server, "/discovery/resources?extensions=offer-receipt");
    assert_eq!(signed["pagination"]["total"], all["pagination"]["total"]);
    for item in signed["items"].as_array().unwrap() {
        let offer = &item["extensions"]["offer-receipt"]["info"]["offers"][0];
        let payload =
            or::verify(offer["signature"].as_str().unwrap(), Artifact::Offer, &key).unwrap();
        assert_eq!(payload["amount"], item["accepts"][0]["amount"]);
    }
}

#[test]
fn a_host_without_an_attested_key_signs_nothing() {
    let server = TestServer::start_with(&payments_table(""));
    let (_c, _k, s) = session(&server);
    let (req, _) = s
        .encrypt_execution(&ExecuteInput::new(&wasm("hello")))
        .unwrap();
    let body = serde_json::to_value(req).unwrap();
    let (status, headers, json) = server.client().post_json_with(ROUTE, &body, &[]).unwrap();
    assert_eq!(status, 402);
    let required = b64_json(header(&headers, "payment-required").unwrap());
    assert_eq!(required["extensions"]["offer-receipt"], Value::Null);
    let offer = Offer::from_402(header(&headers, "payment-required"), &json).unwrap();
    let (name, value) = Wallet::random()
        .unwrap()
        .pay(&offer, &limit(), now())
        .unwrap();
    let (status, headers, out) = server
        .client()
        .post_json_with(ROUTE, &body, &[(name, value)])
        .unwrap();
    assert_eq!(status, 200, "{out}");
    let settlement = b64_json(header(&headers, "payment-response").unwrap());
    assert_eq!(settlement["success"], true);
    assert_eq!(settlement["extensions"]["offer-receipt"], Value::Null);
}
