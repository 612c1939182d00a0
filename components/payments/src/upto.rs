//! The "upto" scheme on EVM (`specs/schemes/upto/scheme_upto_evm.md`): the payer signs a
//! Permit2 `PermitWitnessTransferFrom` for a maximum, spendable only through the x402 upto
//! proxy, only to `payTo` and only by the named facilitator; the server settles what the work
//! cost, at most that maximum. x402 v2 only (v1 has no upto).
//!
//! The offline checks are the reference facilitator's, in its order and with its reasons:
//! scheme, network, `accepted` against this server's requirements, spender, recipient,
//! facilitator, token, amount, deadline (6 s margin), `validAfter`, signature. The chain
//! (allowance, balance, nonce state) is the facilitator's to judge.

use alloy_primitives::{Address, U256};
use serde_json::{Value, json};
use x402_chain_eip155::chain::permit2::UptoPermit2Payload;
use x402_permit2::{PermitWitnessTransferFrom, TokenPermissions, UPTO_PROXY_ADDRESS, Witness};

use crate::Refusal;
use crate::exact::{VALIDITY_MARGIN_SECONDS, signer};
use crate::protocol::{Price, Resource, Terms, accepted_as_offered, decode, encode};

/// The terms of a metered price: the maximum (`price.amount`), the facilitator that may
/// settle, and the tariff shown to payers.
#[derive(Debug, Clone)]
pub struct UptoTerms {
    /// The price's terms (`amount` is the maximum).
    pub base: Terms,
    /// `witness.facilitator`: the only address the upto proxy lets settle.
    pub facilitator: Address,
    /// The tariff, as the host gave it (a JSON object), shown in `extra.tariff`.
    pub tariff: Value,
}

impl UptoTerms {
    /// Parses a metered price.
    ///
    /// # Errors
    /// `invalid_payment_requirements` naming the bad field.
    pub fn new(price: &Price, facilitator: Address, tariff: &str) -> Result<Self, Refusal> {
        let tariff: Value = serde_json::from_str(tariff)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| {
                Refusal::new(
                    "invalid_payment_requirements",
                    "the tariff must be a JSON object",
                )
            })?;
        Ok(Self {
            base: Terms::new(price)?,
            facilitator,
            tariff,
        })
    }

    /// The v2 `accepts` entry. Clients copy it verbatim into `accepted`.
    pub fn v2_requirements(&self) -> Value {
        let e = &self.base.expected;
        json!({
            "scheme": "upto",
            "network": self.base.network,
            "amount": self.base.amount,
            "asset": e.asset.to_checksum(None),
            "payTo": e.pay_to.to_checksum(None),
            "maxTimeoutSeconds": self.base.max_timeout_seconds,
            "extra": {
                "name": e.name,
                "version": e.version,
                "facilitatorAddress": self.facilitator.to_checksum(None),
                "tariff": self.tariff,
            },
        })
    }

    /// The requirements a facilitator settles `charged` under: this server's, with `amount`
    /// the charge (the upto facilitators settle `paymentRequirements.amount`).
    pub fn settle_requirements(&self, charged: &str) -> Value {
        let mut r = self.v2_requirements();
        r["amount"] = json!(charged);
        r
    }
}

/// The v2 `PAYMENT-REQUIRED` value.
pub fn challenge(t: &UptoTerms, r: &Resource, error: &str) -> String {
    encode(&json!({
        "x402Version": 2,
        "error": error,
        "resource": {"url": r.url, "description": r.description, "mimeType": r.mime_type},
        "accepts": [t.v2_requirements()],
    }))
}

/// Parses the amount to settle: a decimal integer at most the maximum.
///
/// # Errors
/// `invalid_upto_evm_payload_settlement_exceeds_amount` above the maximum,
/// `invalid_payment_requirements` for a malformed amount.
pub fn charge(charged: &str, t: &UptoTerms) -> Result<U256, Refusal> {
    if charged.is_empty() || !charged.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::new(
            "invalid_payment_requirements",
            format!("the charge {charged:?} is not a decimal integer"),
        ));
    }
    let charge = U256::from_str_radix(charged, 10)
        .map_err(|_| Refusal::new("invalid_payment_requirements", "the charge is out of range"))?;
    if charge > t.base.expected.amount {
        return Err(Refusal::new(
            "invalid_upto_evm_payload_settlement_exceeds_amount",
            format!(
                "the charge {charge} exceeds the signed maximum {}",
                t.base.expected.amount
            ),
        ));
    }
    Ok(charge)
}

/// A metered payment that passed every offline check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The payer (`permit2Authorization.from`).
    pub payer: Address,
    /// `permit2:<chain>:<from>:<nonce>`, lowercase hex: Permit2's nonces are per owner,
    /// whatever the token or spender.
    pub replay_key: String,
}

/// Verifies an upto payment header (v2) against the terms at time `now`.
///
/// # Errors
/// A [`Refusal`] with the reference facilitator's reason.
pub fn verify(
    header: &str,
    t: &UptoTerms,
    resource_url: &str,
    now: u64,
) -> Result<Accepted, Refusal> {
    let p = parse(header, t, resource_url)?;
    let a = &p.permit_2_authorization;
    let e = &t.base.expected;
    let refuse = |reason: &str, message: String| Err(Refusal::new(reason, message));
    if a.spender.0 != UPTO_PROXY_ADDRESS {
        return refuse(
            "invalid_permit2_spender",
            format!("the spender must be the x402 upto proxy {UPTO_PROXY_ADDRESS}"),
        );
    }
    if a.witness.to.0 != e.pay_to {
        return refuse(
            "invalid_permit2_recipient_mismatch",
            format!(
                "the authorization pays {}, not {}",
                a.witness.to.0, e.pay_to
            ),
        );
    }
    if a.witness.facilitator.0 != t.facilitator {
        return refuse(
            "upto_facilitator_mismatch",
            format!(
                "the authorization lets {} settle, not this server's facilitator {}",
                a.witness.facilitator.0, t.facilitator
            ),
        );
    }
    if a.permitted.token.0 != e.asset {
        return refuse(
            "permit2_token_mismatch",
            format!(
                "the authorization is for token {}, not {}",
                a.permitted.token.0, e.asset
            ),
        );
    }
    if a.permitted.amount != e.amount {
        return refuse(
            "permit2_amount_mismatch",
            format!(
                "the authorization's maximum is {}, the price's is {}",
                a.permitted.amount, e.amount
            ),
        );
    }
    if a.deadline.as_secs() < now.saturating_add(VALIDITY_MARGIN_SECONDS) {
        return refuse(
            "permit2_deadline_expired",
            "the authorization has expired or expires within 6 seconds".into(),
        );
    }
    if a.witness.valid_after.as_secs() > now {
        return refuse(
            "permit2_not_yet_valid",
            "the authorization is not valid yet".into(),
        );
    }
    let message = PermitWitnessTransferFrom {
        permitted: TokenPermissions {
            token: a.permitted.token.0,
            amount: a.permitted.amount,
        },
        spender: a.spender.0,
        nonce: a.nonce,
        deadline: U256::from(a.deadline.as_secs()),
        witness: Witness {
            to: a.witness.to.0,
            facilitator: a.witness.facilitator.0,
            validAfter: U256::from(a.witness.valid_after.as_secs()),
        },
    };
    let hash = message.signing_hash(e.chain_id);
    let payer = signer(&hash, p.signature.as_ref())
        .map_err(|why| Refusal::new("invalid_permit2_signature", format!("signature: {why}")))?;
    if payer != a.from.0 {
        return refuse(
            "invalid_permit2_signature",
            "signature: not signed by `from` under Permit2's domain on this chain".into(),
        );
    }
    Ok(accepted(&p, t))
}

/// The payer and replay key of a payment [`verify`] accepted earlier.
///
/// # Errors
/// A [`Refusal`] if the header no longer parses against the terms.
pub fn inspect(header: &str, t: &UptoTerms, resource_url: &str) -> Result<Accepted, Refusal> {
    Ok(accepted(&parse(header, t, resource_url)?, t))
}

fn accepted(p: &UptoPermit2Payload, t: &UptoTerms) -> Accepted {
    let a = &p.permit_2_authorization;
    Accepted {
        payer: a.from.0,
        replay_key: format!(
            "permit2:{}:{:#x}:{:#x}",
            t.base.expected.chain_id, a.from.0, a.nonce
        )
        .to_lowercase(),
    }
}

/// Decodes a header and checks everything but the authorization.
fn parse(header: &str, t: &UptoTerms, resource_url: &str) -> Result<UptoPermit2Payload, Refusal> {
    let raw = decode(header)?;
    if raw.get("x402Version").and_then(Value::as_u64) != Some(2) {
        return Err(Refusal::new(
            "invalid_x402_version",
            "metered (upto) payments are x402 version 2: send PAYMENT-SIGNATURE",
        ));
    }
    let accepted = raw
        .get("accepted")
        .ok_or_else(|| Refusal::new("invalid_payload", "payment: `accepted` is missing"))?;
    if accepted.get("scheme").and_then(Value::as_str) != Some("upto") {
        return Err(Refusal::new(
            "invalid_upto_evm_scheme",
            "this resource is metered: only the upto scheme is accepted",
        ));
    }
    if accepted.get("network").and_then(Value::as_str) != Some(t.base.network.as_str()) {
        return Err(Refusal::new(
            "invalid_upto_evm_network_mismatch",
            format!("the price is on {}", t.base.network),
        ));
    }
    accepted_as_offered(&raw, &t.v2_requirements(), resource_url)?;
    let payload = raw
        .get("payload")
        .cloned()
        .ok_or_else(|| Refusal::new("invalid_payload", "payment: `payload` is missing"))?;
    serde_json::from_value(payload)
        .map_err(|e| Refusal::new("invalid_payload", format!("payment: {e}")))
}

#[cfg(test)]
#[path = "upto_tests.rs"]
mod tests;
