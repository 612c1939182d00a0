//! x402 sign-in-with-x over real HTTP: a paid agent whose grants take sign-ins declares the
//! extension in its 402 with a nonce of the host's; a listed wallet, or one whose payment was
//! settled on chain within the window, signs the challenge (EIP-4361, EIP-191) and is let in
//! without paying, and the agent learns its account; replays, forged nonces, other resources'
//! challenges, other keys, unlisted wallets and payers whose payment was only verified get a
//! 402 that names why. (The official SDKs' clients: `sdk/typescript/test/payments.test.js`,
//! `tests/e2e/x402_python.rs`.)

use hypervisor_client::Client;
use hypervisor_client::agents::Deployment;
use hypervisor_client::x402::{Offer, PaymentLimit, Wallet};
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::JsSource;
use hypervisor_protocol::grants::{Grants, SignInGrant};
use serde_json::{Value, json};

use crate::harness::{TestServer, wasm};
use crate::local_chain::LocalChain;
use crate::payments::{b64_json, header, now, payments_table};

/// A handler that answers with who called it.
const WHO: &str =
    "export async function handler(event, context) {\n  return { caller: context.caller };\n}\n";

/// A wallet: its key (to sign in) and the same key as an x402 payer.
struct Key {
    secret: [u8; 32],
    wallet: Wallet,
}

impl Key {
    fn new(byte: u8) -> Self {
        Self::from_secret([byte; 32])
    }

    fn from_secret(secret: [u8; 32]) -> Self {
        Self {
            secret,
            wallet: Wallet::from_bytes(&secret).unwrap(),
        }
    }

    fn address(&self) -> String {
        self.wallet.address().to_checksum(None)
    }
}

/// `POST path` with `event` and extra headers: status, headers, body.
fn invoke(
    client: &Client,
    path: &str,
    headers: &[(&str, String)],
) -> (u16, Vec<(String, String)>, Value) {
    client
        .post_json_with(path, &json!({"event": {}}), headers)
        .unwrap()
}

/// Pays one call of `path` with `wallet`: answered 200 with a settlement.
fn pay_once(client: &Client, path: &str, wallet: &Wallet) {
    let (_, headers, body) = invoke(client, path, &[]);
    let offer = Offer::from_402(header(&headers, "payment-required"), &body).unwrap();
    let paid = wallet
        .pay(&offer, &PaymentLimit::new(7_000), now())
        .unwrap();
    let (status, headers, out) = invoke(client, path, &[(paid.0, paid.1)]);
    assert_eq!(status, 200, "{out}");
    assert!(header(&headers, "payment-response").is_some());
}

/// The 402 of `path`: the PaymentRequired document (v2, from its header).
fn challenge(client: &Client, path: &str) -> Value {
    let (status, headers, body) = invoke(client, path, &[]);
    assert_eq!(status, 402, "{body}");
    b64_json(header(&headers, "payment-required").expect("PAYMENT-REQUIRED"))
}

/// `key`'s sign-in over the challenge `doc`, as the official client builds it: every `info`
/// field, the first supported chain, the address and the signature.
fn sign_in(doc: &Value, key: &Key, edit: impl FnOnce(&mut x402_siwx::Payload)) -> String {
    let declared = &doc["extensions"]["sign-in-with-x"];
    let info = &declared["info"];
    let text = |v: &Value| v.as_str().map(str::to_string);
    let mut payload = x402_siwx::Payload {
        domain: text(&info["domain"]).unwrap(),
        address: String::new(),
        statement: text(&info["statement"]),
        uri: text(&info["uri"]).unwrap(),
        version: text(&info["version"]).unwrap(),
        chain_id: text(&declared["supportedChains"][0]["chainId"]).unwrap(),
        kind: text(&declared["supportedChains"][0]["type"]).unwrap(),
        nonce: text(&info["nonce"]).unwrap(),
        issued_at: text(&info["issuedAt"]).unwrap(),
        expiration_time: text(&info["expirationTime"]),
        not_before: None,
        request_id: None,
        resources: info["resources"]
            .as_array()
            .map(|r| r.iter().filter_map(text).collect()),
        signature_scheme: None,
        signature: String::new(),
    };
    edit(&mut payload);
    x402_siwx::encode_header(&x402_siwx::sign(payload, &key.secret).unwrap())
}

fn refused(client: &Client, path: &str, signed: String) -> String {
    let (status, headers, body) = invoke(client, path, &[("sign-in-with-x", signed)]);
    assert_eq!(status, 402, "{body}");
    assert!(header(&headers, "payment-required").is_some());
    assert!(header(&headers, "payment-response").is_none());
    body["code"].as_str().unwrap_or_default().to_string()
}

#[test]
fn listed_wallets_and_recent_payers_sign_in_instead_of_paying() {
    let server = TestServer::start_with(&payments_table(""));
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let (listed, payer, stranger) = (Key::new(0x11), Key::new(0x22), Key::new(0x33));
    let grants = Grants {
        sign_in: Some(SignInGrant {
            wallets: vec![listed.address().to_ascii_lowercase()],
            after_payment_seconds: 3600,
        }),
        ..Grants::default()
    };
    let source = JsSource {
        engine: Default::default(),
        main: "main.js".into(),
        modules: [("main.js".to_string(), WHO.to_string())].into(),
    };
    for name in ["who", "other"] {
        client
            .deploy_js(
                &owner,
                &Deployment {
                    name,
                    price: Some("7000".into()),
                    grants: Some(grants.clone()),
                    ..Deployment::default()
                },
                &source,
            )
            .unwrap();
    }
    let path = "/agents/who/invoke";

    // The challenge declares the extension with the host's nonce, for this resource.
    let doc = challenge(&client, path);
    let declared = &doc["extensions"]["sign-in-with-x"];
    let info = &declared["info"];
    assert!(info["uri"].as_str().unwrap().ends_with(path), "{declared}");
    assert_eq!(info["resources"], json!([info["uri"]]));
    assert_eq!(info["version"], "1");
    assert_eq!(info["nonce"].as_str().unwrap().len(), 64);
    assert_eq!(
        declared["supportedChains"],
        json!([{"chainId": "eip155:84532", "type": "eip191"}])
    );
    assert_eq!(
        info["domain"].as_str().unwrap(),
        server.url.trim_start_matches("http://")
    );

    // The listed wallet signs in: no payment, no settlement, and the handler sees its account.
    let signed = sign_in(&doc, &listed, |_| {});
    let (status, headers, out) = invoke(&client, path, &[("sign-in-with-x", signed.clone())]);
    assert_eq!(status, 200, "{out}");
    assert!(header(&headers, "payment-response").is_none());
    assert_eq!(
        out["result"]["caller"],
        format!("eip155:84532:{}", listed.address()),
        "{out}"
    );
    // The same sign-in again is a replay.
    assert_eq!(refused(&client, path, signed), "invalid_siwx_nonce_reused");

    // What is not let in, and why.
    let doc = challenge(&client, path);
    assert_eq!(
        refused(&client, path, sign_in(&doc, &stranger, |_| {})),
        "siwx_access_denied"
    );
    let forged = |p: &mut x402_siwx::Payload| p.nonce = "0".repeat(64);
    assert_eq!(
        refused(&client, path, sign_in(&doc, &listed, forged)),
        "invalid_siwx_nonce"
    );
    let later = |p: &mut x402_siwx::Payload| {
        p.expiration_time = Some(x402_siwx::format_time(4_102_444_800_000));
    };
    assert_eq!(
        refused(&client, path, sign_in(&doc, &listed, later)),
        "invalid_siwx_nonce"
    );
    let elsewhere = challenge(&client, "/agents/other/invoke");
    assert_eq!(
        refused(&client, path, sign_in(&elsewhere, &listed, |_| {})),
        "invalid_siwx_uri_mismatch"
    );
    // Signed by another key than the address it names.
    let mut claimed: Value = b64_json(&sign_in(&doc, &stranger, |_| {}));
    claimed["address"] = json!(listed.address());
    let claimed = base64_json(&claimed);
    assert_eq!(refused(&client, path, claimed), "invalid_siwx_signature");
    assert_eq!(
        refused(&client, path, "bm90IGpzb24=".into()),
        "invalid_siwx_header"
    );

    // A payment only verified (verify-only mode: no money moved yet) lets nobody back in.
    let doc = challenge(&client, path);
    assert_eq!(
        refused(&client, path, sign_in(&doc, &payer, |_| {})),
        "siwx_access_denied"
    );
    pay_once(&client, path, &payer.wallet);
    let doc = challenge(&client, path);
    assert_eq!(
        refused(&client, path, sign_in(&doc, &payer, |_| {})),
        "siwx_access_denied"
    );

    // The owner takes the listed wallet off: its sign-ins are refused from then on.
    let mut fewer = grants.clone();
    fewer.sign_in.as_mut().unwrap().wallets.clear();
    client.set_agent_grants(&owner, "who", &fewer).unwrap();
    let doc = challenge(&client, path);
    assert_eq!(
        refused(&client, path, sign_in(&doc, &listed, |_| {})),
        "siwx_access_denied"
    );
}

#[test]
fn http_agents_learn_the_account_from_the_host_only() {
    let server = TestServer::start_with(&payments_table(""));
    let client = server.client();
    let listed = Key::new(0x44);
    client
        .deploy_agent(
            &ClientSecret::generate().unwrap(),
            &Deployment {
                name: "web",
                component: &wasm("http-hello"),
                price: Some("7000".into()),
                grants: Some(Grants {
                    sign_in: Some(SignInGrant {
                        wallets: vec![listed.address()],
                        after_payment_seconds: 0,
                    }),
                    ..Grants::default()
                }),
                ..Deployment::default()
            },
        )
        .unwrap();
    let path = "/agents/web/echo";
    let doc = challenge(&client, path);
    // An HTTP agent's resource is the agent, whatever path: the sign-in is too.
    assert!(
        doc["extensions"]["sign-in-with-x"]["info"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("/agents/web/")
    );
    let signed = sign_in(&doc, &listed, |_| {});
    let claim = (
        "x-signed-in-wallet",
        "eip155:1:0x0000000000000000000000000000000000000001".to_string(),
    );
    let (status, headers, out) =
        invoke(&client, path, &[("sign-in-with-x", signed), claim.clone()]);
    assert_eq!(status, 200, "{out}");
    assert!(header(&headers, "payment-response").is_none());
    // The agent sees the account the host checked, not the one the client wrote.
    assert_eq!(
        out["signedIn"],
        format!("eip155:84532:{}", listed.address()),
        "{out}"
    );
    // A client cannot claim an account: the header is the host's.
    let (status, headers, body) = invoke(&client, path, std::slice::from_ref(&claim));
    assert_eq!(
        (status, body["code"].as_str()),
        (402, Some("payment_required"))
    );
    let offer = Offer::from_402(header(&headers, "payment-required"), &body).unwrap();
    let paid = Wallet::random()
        .unwrap()
        .pay(&offer, &PaymentLimit::new(7_000), now())
        .unwrap();
    let (status, _, out) = invoke(&client, path, &[paid, claim]);
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["signedIn"], Value::Null, "{out}");
}

#[test]
fn a_payment_settled_on_chain_lets_its_payer_back_in_while_the_grants_say() {
    let chain = LocalChain::start();
    let a = chain.accounts.clone();
    let server = TestServer::start_with(&chain.payments_table());
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let grants = |seconds: u64| Grants {
        sign_in: Some(SignInGrant {
            wallets: Vec::new(),
            after_payment_seconds: seconds,
        }),
        ..Grants::default()
    };
    let source = JsSource {
        engine: Default::default(),
        main: "main.js".into(),
        modules: [("main.js".to_string(), WHO.to_string())].into(),
    };
    client
        .deploy_js(
            &owner,
            &Deployment {
                name: "members",
                price: Some("7000".into()),
                grants: Some(grants(3600)),
                ..Deployment::default()
            },
            &source,
        )
        .unwrap();
    let path = "/agents/members/invoke";
    let secret: [u8; 32] = hex::decode(a.payer_key.trim_start_matches("0x"))
        .unwrap()
        .try_into()
        .unwrap();
    let payer = Key::from_secret(secret);
    let balance = chain.balance(&a.payer);

    // Paid and settled on chain: the payer may come back without paying.
    pay_once(&client, path, &payer.wallet);
    for _ in 0..2 {
        let doc = challenge(&client, path);
        let (status, headers, out) = invoke(
            &client,
            path,
            &[("sign-in-with-x", sign_in(&doc, &payer, |_| {}))],
        );
        assert_eq!(status, 200, "{out}");
        assert!(header(&headers, "payment-response").is_none());
        assert_eq!(
            out["result"]["caller"],
            format!("eip155:84532:{}", payer.address())
        );
    }
    assert_eq!(chain.balance(&a.payer), balance - 7_000);

    // The window is the owner's to set: closed, then open again, as the grants say now.
    client
        .set_agent_grants(&owner, "members", &grants(0))
        .unwrap();
    let doc = challenge(&client, path);
    assert!(
        doc["extensions"].get("sign-in-with-x").is_none(),
        "a grant that lets nobody in declares nothing: {doc}"
    );
    client
        .set_agent_grants(&owner, "members", &grants(1))
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let doc = challenge(&client, path);
    assert_eq!(
        refused(&client, path, sign_in(&doc, &payer, |_| {})),
        "siwx_access_denied"
    );
    client
        .set_agent_grants(&owner, "members", &grants(3600))
        .unwrap();
    let doc = challenge(&client, path);
    let (status, _, out) = invoke(
        &client,
        path,
        &[("sign-in-with-x", sign_in(&doc, &payer, |_| {}))],
    );
    assert_eq!(status, 200, "{out}");
}

fn base64_json(v: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(v.to_string())
}
