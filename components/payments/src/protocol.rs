//! x402 wire formats, v1 and v2: challenges, payment headers, settlement headers. Outgoing JSON
//! is built here field by field (never by re-serializing the typed payloads, whose encodings of
//! amounts and addresses differ from what clients compare against).

use alloy_primitives::{Address, U256};
use base64::Engine as _;
use serde_json::{Value, json};
use x402_chain_eip155::v1_eip155_exact as v1x;
use x402_chain_eip155::v2_eip155_exact as v2x;
use x402_types::chain::ChainId;

use crate::Refusal;
use crate::exact::{self, Expected};

/// Largest payment header accepted (a real one is about 1 KiB).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Protocol version of a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `X-PAYMENT`.
    V1,
    /// `PAYMENT-SIGNATURE`.
    V2,
}

/// The operator's price (strings as configured).
#[derive(Debug, Clone)]
pub struct Price {
    /// Atomic units, decimal.
    pub amount: String,
    /// Token address.
    pub asset: String,
    /// CAIP-2 network.
    pub network: String,
    /// Recipient.
    pub pay_to: String,
    /// EIP-712 name.
    pub eip712_name: String,
    /// EIP-712 version.
    pub eip712_version: String,
    /// Authorization timeout.
    pub max_timeout_seconds: u32,
}

/// The paid resource.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Absolute URL.
    pub url: String,
    /// Description.
    pub description: String,
    /// MIME type.
    pub mime_type: String,
}

/// A price checked and parsed.
#[derive(Debug, Clone)]
pub struct Terms {
    /// What an authorization must say.
    pub expected: Expected,
    /// CAIP-2 network, normalised (`eip155:<id>`).
    pub network: String,
    /// The v1 name of the network, when x402 has one.
    pub v1_network: Option<&'static str>,
    /// The decimal amount as configured.
    pub amount: String,
    /// How long a payer's authorization may take to arrive.
    pub max_timeout_seconds: u32,
}

impl Terms {
    /// Parses and checks a price.
    ///
    /// # Errors
    /// `invalid_payment_requirements` naming the bad field.
    pub fn new(p: &Price) -> Result<Self, Refusal> {
        let bad = |field: &str, why: String| {
            Refusal::new(
                "invalid_payment_requirements",
                format!("price.{field}: {why}"),
            )
        };
        let chain: ChainId = p
            .network
            .parse()
            .map_err(|_| bad("network", format!("{:?} is not CAIP-2", p.network)))?;
        if chain.namespace != "eip155" {
            return Err(bad(
                "network",
                "only eip155 (EVM) networks are supported".into(),
            ));
        }
        let chain_id: u64 = chain
            .reference
            .parse()
            .map_err(|_| bad("network", "the chain id is not a number".into()))?;
        let address = |field: &str, v: &str| -> Result<Address, Refusal> {
            v.parse()
                .map_err(|_| bad(field, format!("{v:?} is not an address")))
        };
        if p.amount.is_empty() || !p.amount.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("amount", "must be a decimal integer string".into()));
        }
        let amount = U256::from_str_radix(&p.amount, 10)
            .map_err(|_| bad("amount", "out of range".into()))?;
        Ok(Self {
            expected: Expected {
                chain_id,
                asset: address("asset", &p.asset)?,
                pay_to: address("pay_to", &p.pay_to)?,
                amount,
                name: p.eip712_name.clone(),
                version: p.eip712_version.clone(),
            },
            network: format!("eip155:{chain_id}"),
            v1_network: chain.as_network_name(),
            amount: amount.to_string(),
            max_timeout_seconds: p.max_timeout_seconds,
        })
    }

    /// The v2 `accepts` entry. Clients copy it verbatim into `accepted`; [`verify`] compares
    /// the two as JSON values.
    pub fn v2_requirements(&self) -> Value {
        json!({
            "scheme": "exact",
            "network": self.network,
            "amount": self.amount,
            "asset": self.expected.asset.to_checksum(None),
            "payTo": self.expected.pay_to.to_checksum(None),
            "maxTimeoutSeconds": self.max_timeout_seconds,
            "extra": {"name": self.expected.name, "version": self.expected.version},
        })
    }

    /// The v1 `accepts` entry, when the network has a v1 name.
    pub fn v1_requirements(&self, r: &Resource) -> Option<Value> {
        Some(json!({
            "scheme": "exact",
            "network": self.v1_network?,
            "maxAmountRequired": self.amount,
            "resource": r.url,
            "description": r.description,
            "mimeType": r.mime_type,
            "payTo": self.expected.pay_to.to_checksum(None),
            "maxTimeoutSeconds": self.max_timeout_seconds,
            "asset": self.expected.asset.to_checksum(None),
            "extra": {"name": self.expected.name, "version": self.expected.version},
        }))
    }
}

/// Standard base64 of a JSON value.
pub fn encode(v: &Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(v.to_string())
}

/// The challenge: the v2 `PAYMENT-REQUIRED` header value and the v1 body.
pub fn challenge(t: &Terms, r: &Resource, error: &str) -> (String, Option<String>) {
    let v2 = json!({
        "x402Version": 2,
        "error": error,
        "resource": {"url": r.url, "description": r.description, "mimeType": r.mime_type},
        "accepts": [t.v2_requirements()],
    });
    let v1 = t
        .v1_requirements(r)
        .map(|req| json!({"x402Version": 1, "error": error, "accepts": [req]}).to_string());
    (encode(&v2), v1)
}

/// A payment that passed every offline check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The payer.
    pub payer: Address,
    /// `eip3009:<chain>:<token>:<from>:<nonce>`, lowercase.
    pub replay_key: String,
}

/// Decodes a payment header (standard base64, padding optional) into its JSON.
///
/// # Errors
/// `invalid_payload` for an oversized, non-base64 or non-JSON header.
pub fn decode(header: &str) -> Result<Value, Refusal> {
    let invalid = |why: &str| Refusal::new("invalid_payload", format!("payment header: {why}"));
    let header = header.trim();
    if header.len() > MAX_HEADER_BYTES {
        return Err(invalid("larger than 16 KiB"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(header)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(header))
        .map_err(|_| invalid("not standard base64"))?;
    serde_json::from_slice(&bytes).map_err(|_| invalid("not JSON"))
}

/// Verifies a payment header against the terms at time `now`.
///
/// # Errors
/// A [`Refusal`] with the x402 reason string.
pub fn verify(
    version: Version,
    header: &str,
    t: &Terms,
    resource_url: &str,
    now: u64,
) -> Result<Accepted, Refusal> {
    let payload = parse(version, header, t, resource_url)?;
    let payer = exact::check(&payload, &t.expected, now)?;
    Ok(accepted(&payload, payer, t))
}

/// The payer and replay key of a payment that [`verify`] accepted earlier (the host recorded
/// it), without repeating the signature recovery and time checks.
///
/// # Errors
/// A [`Refusal`] if the header no longer parses against the terms.
pub fn inspect(
    version: Version,
    header: &str,
    t: &Terms,
    resource_url: &str,
) -> Result<Accepted, Refusal> {
    let payload = parse(version, header, t, resource_url)?;
    let payer = payload.authorization.from;
    Ok(accepted(&payload, payer, t))
}

fn accepted(payload: &v1x::ExactEvmPayload, payer: Address, t: &Terms) -> Accepted {
    let a = &payload.authorization;
    Accepted {
        payer,
        replay_key: format!(
            "eip3009:{}:{:#x}:{:#x}:{:#x}",
            t.expected.chain_id, t.expected.asset, a.from, a.nonce
        )
        .to_lowercase(),
    }
}

/// Decodes a header and checks everything but the authorization itself. A v2 payment must name
/// the resource it pays for (`resource.url`, copied from the challenge by x402 clients), and it
/// must be `resource_url`: a payment issued for one route is not spent on another at the same
/// price. (v1 payloads name no resource.)
fn parse(
    version: Version,
    header: &str,
    t: &Terms,
    resource_url: &str,
) -> Result<v1x::ExactEvmPayload, Refusal> {
    let raw = decode(header)?;
    let want = match version {
        Version::V1 => 1,
        Version::V2 => 2,
    };
    if raw.get("x402Version").and_then(Value::as_u64) != Some(want) {
        return Err(Refusal::new(
            "invalid_x402_version",
            format!("this header carries x402 version {want} payments"),
        ));
    }
    let payload = match version {
        Version::V1 => {
            if raw.get("scheme").and_then(Value::as_str) != Some("exact") {
                return Err(Refusal::new(
                    "invalid_scheme",
                    "only the exact scheme is accepted",
                ));
            }
            let network = raw.get("network").and_then(Value::as_str);
            if network.is_none() || network != t.v1_network {
                return Err(Refusal::new(
                    "invalid_network",
                    format!("the price is on {}", t.v1_network.unwrap_or(&t.network)),
                ));
            }
            let p: v1x::PaymentPayload = serde_json::from_value(raw)
                .map_err(|e| Refusal::new("invalid_payload", format!("payment: {e}")))?;
            p.payload
        }
        Version::V2 => {
            let accepted = raw
                .get("accepted")
                .ok_or_else(|| Refusal::new("invalid_payload", "payment: `accepted` is missing"))?;
            if accepted.get("scheme").and_then(Value::as_str) != Some("exact") {
                return Err(Refusal::new(
                    "invalid_scheme",
                    "only the exact scheme is accepted",
                ));
            }
            if accepted.get("network").and_then(Value::as_str) != Some(t.network.as_str()) {
                return Err(Refusal::new(
                    "invalid_network",
                    format!("the price is on {}", t.network),
                ));
            }
            accepted_as_offered(&raw, &t.v2_requirements(), resource_url)?;
            let p: v2x::PaymentPayload = serde_json::from_value(raw)
                .map_err(|e| Refusal::new("invalid_payload", format!("payment: {e}")))?;
            match p.payload {
                v2x::ExactEvmPayload::Eip3009(x) => x,
                v2x::ExactEvmPayload::Permit2(_) => {
                    return Err(Refusal::new(
                        "invalid_payload",
                        "only EIP-3009 authorizations are accepted (not Permit2)",
                    ));
                }
            }
        }
    };
    Ok(payload)
}

/// Checks that a v2 payment `raw` copied `requirements` unchanged into `accepted`, and names
/// `resource_url` as its resource (clients copy both from the challenge): a payment issued
/// for one route, or on other terms, is not spent on another.
///
/// # Errors
/// `invalid_payment_requirements`, or `invalid_payload` when `resource.url` is missing.
pub fn accepted_as_offered(
    raw: &Value,
    requirements: &Value,
    resource_url: &str,
) -> Result<(), Refusal> {
    if raw.get("accepted") != Some(requirements) {
        return Err(Refusal::new(
            "invalid_payment_requirements",
            "`accepted` differs from the requirements this server offers",
        ));
    }
    match raw.pointer("/resource/url").and_then(Value::as_str) {
        Some(url) if url == resource_url => Ok(()),
        Some(url) => Err(Refusal::new(
            "invalid_payment_requirements",
            format!("the payment was issued for {url}, not for {resource_url}"),
        )),
        None => Err(Refusal::new(
            "invalid_payload",
            "payment: `resource.url` is missing (a v2 payment names the resource of the \
             challenge it answers)",
        )),
    }
}

/// The `PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE` value; a metered (`upto`) settlement also
/// states the `amount` settled, as the upto facilitators answer.
pub fn settlement_header(
    success: bool,
    transaction: &str,
    network: &str,
    payer: &str,
    error_reason: Option<&str>,
    amount: Option<&str>,
) -> String {
    let mut v = json!({
        "success": success,
        "transaction": transaction,
        "network": network,
        "payer": payer,
    });
    if let Some(r) = error_reason {
        v["errorReason"] = json!(r);
    }
    if let Some(a) = amount {
        v["amount"] = json!(a);
    }
    encode(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The x402 specification's exact-EVM example (base-sepolia USDC).
    const SPEC_V1_HEADER: &str = "eyJ4NDAyVmVyc2lvbiI6MSwic2NoZW1lIjoiZXhhY3QiLCJuZXR3b3JrIjoiYmFzZS1zZXBvbGlhIiwicGF5bG9hZCI6eyJzaWduYXR1cmUiOiIweDJkNmE3NTg4ZDZhY2NhNTA1Y2JmMGQ5YTRhMjI3ZTBjNTJjNmMzNDAwOGM4ZTg5ODZhMTI4MzI1OTc2NDE3MzYwOGEyY2U2NDk2NjQyZTM3N2Q2ZGE4ZGJiZjU4MzZlOWJkMTUwOTJmOWVjYWIwNWRlZDNkNjI5M2FmMTQ4YjU3MWMiLCJhdXRob3JpemF0aW9uIjp7ImZyb20iOiIweDg1N2IwNjUxOUU5MWUzQTU0NTM4NzkxYkRiYjBFMjIzNzNlMzZiNjYiLCJ0byI6IjB4MjA5NjkzQmM2YWZjMEM1MzI4YkEzNkZhRjAzQzUxNEVGMzEyMjg3QyIsInZhbHVlIjoiMTAwMDAiLCJ2YWxpZEFmdGVyIjoiMTc0MDY3MjA4OSIsInZhbGlkQmVmb3JlIjoiMTc0MDY3MjE1NCIsIm5vbmNlIjoiMHhmMzc0NjYxM2MyZDkyMGI1ZmRhYmMwODU2ZjJhZWIyZDRmODhlZTYwMzdiOGNjNWQwNGE3MWE0NDYyZjEzNDgwIn19fQ==";
    const SPEC_V2_HEADER: &str = include_str!("../tests/spec-v2-header.txt");
    /// The resource the specification's v2 example pays for.
    const SPEC_RESOURCE: &str = "https://api.example.com/premium-data";
    const SPEC_PAYER: &str = "0x857b06519E91e3A54538791bDbb0E22373e36b66";
    /// Inside the example authorization's window.
    const NOW: u64 = 1_740_672_100;

    fn spec_price() -> Price {
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

    fn reason(r: Result<Accepted, Refusal>) -> String {
        r.expect_err("must be refused").reason
    }

    #[test]
    fn the_specification_example_recovers_its_payer_in_both_versions() {
        let t = Terms::new(&spec_price()).unwrap();
        for (version, header) in [(Version::V1, SPEC_V1_HEADER), (Version::V2, SPEC_V2_HEADER)] {
            let a = verify(version, header.trim(), &t, SPEC_RESOURCE, NOW).unwrap();
            assert_eq!(a.payer.to_checksum(None), SPEC_PAYER);
            assert_eq!(
                inspect(version, header.trim(), &t, SPEC_RESOURCE).unwrap(),
                a
            );
            assert_eq!(
                a.replay_key,
                "eip3009:84532:0x036cbd53842c5426634e7929541ec2318f3dcf7e:0x857b06519e91e3a54538791bdbb0e22373e36b66:0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480"
            );
        }
    }

    #[test]
    fn each_changed_term_is_refused_with_its_reason() {
        let t = |f: fn(&mut Price)| {
            let mut p = spec_price();
            f(&mut p);
            Terms::new(&p).unwrap()
        };
        let v1 =
            |terms: &Terms, now| verify(Version::V1, SPEC_V1_HEADER, terms, SPEC_RESOURCE, now);
        let base = t(|_| {});
        assert_eq!(
            reason(v1(&t(|p| p.amount = "10001".into()), NOW)),
            "invalid_exact_evm_payload_authorization_value"
        );
        assert_eq!(
            reason(v1(&t(|p| p.pay_to = SPEC_PAYER.into()), NOW)),
            "invalid_exact_evm_payload_recipient_mismatch"
        );
        assert_eq!(
            reason(v1(&t(|p| p.network = "eip155:8453".into()), NOW)),
            "invalid_network"
        );
        // Another token (or another domain name) changes the EIP-712 domain: another signer.
        assert_eq!(
            reason(v1(
                &t(|p| p.asset = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913".into()),
                NOW
            )),
            "invalid_exact_evm_payload_signature"
        );
        assert_eq!(
            reason(v1(&t(|p| p.eip712_name = "USD Coin".into()), NOW)),
            "invalid_exact_evm_payload_signature"
        );
        assert_eq!(
            reason(v1(&base, 1_740_672_149)),
            "invalid_exact_evm_payload_authorization_valid_before"
        );
        assert_eq!(
            reason(v1(&base, 1_740_672_000)),
            "invalid_exact_evm_payload_authorization_valid_after"
        );
        // The wrong header for the version, garbage, a flipped signature byte.
        assert_eq!(
            reason(verify(
                Version::V2,
                SPEC_V1_HEADER,
                &base,
                SPEC_RESOURCE,
                NOW
            )),
            "invalid_x402_version"
        );
        assert_eq!(
            reason(verify(
                Version::V1,
                "not base64!",
                &base,
                SPEC_RESOURCE,
                NOW
            )),
            "invalid_payload"
        );
        let mut doc: Value = serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(SPEC_V1_HEADER)
                .unwrap(),
        )
        .unwrap();
        let sig = doc["payload"]["signature"].as_str().unwrap().to_string();
        doc["payload"]["signature"] = json!(format!("{}00{}", &sig[..10], &sig[12..]));
        assert_eq!(
            reason(verify(
                Version::V1,
                &encode(&doc),
                &base,
                SPEC_RESOURCE,
                NOW
            )),
            "invalid_exact_evm_payload_signature"
        );
    }

    #[test]
    fn v2_payments_must_accept_exactly_what_is_offered() {
        let mut p = spec_price();
        p.max_timeout_seconds = 120;
        let t = Terms::new(&p).unwrap();
        assert_eq!(
            reason(verify(
                Version::V2,
                SPEC_V2_HEADER.trim(),
                &t,
                SPEC_RESOURCE,
                NOW
            )),
            "invalid_payment_requirements"
        );
    }

    /// A v2 payment is bound to the resource its challenge named: the same payment offered
    /// for another resource at the same price is refused, and so is one naming none.
    #[test]
    fn v2_payments_are_bound_to_their_resource() {
        let t = Terms::new(&spec_price()).unwrap();
        let header = SPEC_V2_HEADER.trim();
        let other = "https://api.example.com/other-data";
        let refusal = verify(Version::V2, header, &t, other, NOW).expect_err("another resource");
        assert_eq!(refusal.reason, "invalid_payment_requirements");
        assert!(
            refusal.message.contains(SPEC_RESOURCE),
            "{}",
            refusal.message
        );
        let mut doc: Value = serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(header)
                .unwrap(),
        )
        .unwrap();
        doc.as_object_mut().unwrap().remove("resource");
        assert_eq!(
            reason(verify(Version::V2, &encode(&doc), &t, SPEC_RESOURCE, NOW)),
            "invalid_payload"
        );
        // v1 payloads name no resource: nothing to bind.
        assert!(verify(Version::V1, SPEC_V1_HEADER, &t, other, NOW).is_ok());
    }

    #[test]
    fn challenges_parse_in_both_versions() {
        let t = Terms::new(&spec_price()).unwrap();
        let r = Resource {
            url: "http://127.0.0.1:3000/x402_execute/test/wasm".into(),
            description: "one execution".into(),
            mime_type: "application/json".into(),
        };
        let (v2, v1) = challenge(&t, &r, "payment required");
        let v2: x402_types::proto::v2::PaymentRequired<v2x::PaymentRequirements> =
            serde_json::from_slice(
                &base64::engine::general_purpose::STANDARD
                    .decode(v2)
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(v2.accepts.len(), 1);
        let v1: x402_types::proto::v1::PaymentRequired<v1x::PaymentRequirements> =
            serde_json::from_str(&v1.unwrap()).unwrap();
        assert_eq!(v1.accepts[0].max_amount_required, U256::from(10_000));
        // A chain without a v1 name gets only the v2 form.
        let mut p = spec_price();
        p.network = "eip155:31337".into();
        assert!(challenge(&Terms::new(&p).unwrap(), &r, "x").1.is_none());
    }

    #[test]
    fn bad_prices_are_refused() {
        for f in [
            (|p: &mut Price| p.amount = "1.5".into()) as fn(&mut Price),
            |p| p.network = "base-sepolia".into(),
            |p| p.network = "solana:abc".into(),
            |p| p.asset = "0x12".into(),
        ] {
            let mut p = spec_price();
            f(&mut p);
            assert_eq!(
                Terms::new(&p).unwrap_err().reason,
                "invalid_payment_requirements"
            );
        }
    }
}
