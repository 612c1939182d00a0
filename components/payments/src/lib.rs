//! The x402 payments component (`hypervisor:host/payments-component`): the "exact" scheme on
//! EVM (EIP-3009 `TransferWithAuthorization`), x402 protocol v1 and v2.
//!
//! - [`protocol`]: challenges, payment and settlement headers, the order of checks;
//! - [`exact`]: the EIP-3009 authorization and its EIP-712 signature.
//!
//! Settlement modes (settings JSON given to `configure`):
//! - `{"mode": "verify-only"}` (default): a verified payment is reported settled with an empty
//!   transaction: the host has recorded it, and the operator settles recorded authorizations
//!   later (they stay valid until their `validBefore`).
//! - `{"mode": "facilitator", "facilitator_url": "https://…", "verify": "facilitator"}`: after
//!   the offline checks, the facilitator's `/verify` judges the payment (balance, nonce state
//!   on chain), and `settle` asks its `/settle` to execute the transfer ([`facilitator`], over
//!   `wasi:http` through [`http`]; the host lets this component reach that origin only).
//!   With `"verify": "local"` the offline checks decide alone and the facilitator judges the
//!   payment once, when it settles (one round trip per payment instead of two).
//!
//! Protocol types come from `x402-types` / `x402-chain-eip155` (no network features);
//! signature recovery from alloy.

pub mod exact;
pub mod facilitator;
#[cfg(target_arch = "wasm32")]
pub mod http;
pub mod protocol;
pub mod upto;

/// A refused payment or request: an x402 reason string and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// x402 reason string.
    pub reason: String,
    /// Human explanation.
    pub message: String,
}

impl Refusal {
    /// A refusal.
    pub fn new(reason: &str, message: impl Into<String>) -> Self {
        Self {
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// How verified payments are settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Recorded by the host for later settlement.
    VerifyOnly,
    /// Settled by the x402 facilitator at this endpoint; verified by it too before the work
    /// runs when `ask_verify`.
    Facilitator {
        /// The facilitator.
        endpoint: facilitator::Endpoint,
        /// Ask its `/verify` after the offline checks (`"verify": "facilitator"`, the default).
        ask_verify: bool,
    },
}

/// Parses the settings document.
///
/// # Errors
/// A message naming the problem.
pub fn parse_settings(text: &str) -> Result<Mode, String> {
    let doc: serde_json::Value = if text.trim().is_empty() {
        serde_json::json!({})
    } else {
        serde_json::from_str(text).map_err(|e| format!("settings are not JSON: {e}"))?
    };
    let obj = doc.as_object().ok_or("settings must be a JSON object")?;
    for key in obj.keys() {
        if !["mode", "facilitator_url", "verify", "facilitator_address"].contains(&key.as_str()) {
            return Err(format!(
                "unknown setting {key} (known: mode, facilitator_url, verify, facilitator_address)"
            ));
        }
    }
    let url = obj.get("facilitator_url").map(|u| u.as_str());
    let ask_verify = match obj.get("verify").map(|v| v.as_str()) {
        None | Some(Some("facilitator")) => true,
        Some(Some("local")) => false,
        Some(other) => {
            return Err(format!(
                "unknown verify setting {other:?} (known: facilitator, local)"
            ));
        }
    };
    match (obj.get("mode").map(|m| m.as_str()), url) {
        (None | Some(Some("verify-only")), None) if obj.contains_key("verify") => {
            Err("verify is only used in facilitator mode".into())
        }
        (None | Some(Some("verify-only")), None) => Ok(Mode::VerifyOnly),
        (None | Some(Some("verify-only")), Some(_)) => {
            Err("facilitator_url is only used in facilitator mode".into())
        }
        (Some(Some("facilitator")), Some(Some(url))) => Ok(Mode::Facilitator {
            endpoint: facilitator::Endpoint::parse(url)?,
            ask_verify,
        }),
        (Some(Some("facilitator")), _) => {
            Err("facilitator mode needs facilitator_url (a string)".into())
        }
        (Some(other), _) => Err(format!(
            "unknown settlement mode {other:?} (known: verify-only, facilitator)"
        )),
    }
}

/// The `facilitator_address` setting: the address that settles metered (`upto`) payments,
/// which payers name in their authorizations (`witness.facilitator`; a facilitator announces
/// it in `/supported` as `extra.facilitatorAddress`). `None` when absent: metered payments are
/// then refused.
///
/// # Errors
/// A message when it is not an address.
pub fn facilitator_address(text: &str) -> Result<Option<alloy_primitives::Address>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("settings are not JSON: {e}"))?;
    match doc.get("facilitator_address") {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("facilitator_address {v} is not an address")),
    }
}

#[cfg(target_arch = "wasm32")]
mod component {
    use std::sync::Mutex;

    use super::protocol::{self, Price, Resource, Terms, Version};
    use super::{Mode, Refusal, facilitator};

    wit_bindgen::generate!({
        path: "../../wit",
        world: "metered-payments-component",
    });

    use exports::hypervisor::host::metered_payments as metered;
    use exports::hypervisor::host::payments as wit;
    pub(crate) use hypervisor::host::crypto as host_crypto;

    static MODE: Mutex<Mode> = Mutex::new(Mode::VerifyOnly);
    static FACILITATOR: Mutex<Option<alloy_primitives::Address>> = Mutex::new(None);

    /// The terms of a metered price: refused when no facilitator address is configured.
    fn upto_terms(p: &wit::Price, tariff: &str) -> Result<crate::upto::UptoTerms, Refusal> {
        let facilitator = FACILITATOR
            .lock()
            .map_err(|_| Refusal::new("invalid_payment_requirements", "settings lock poisoned"))?
            .ok_or_else(|| {
                Refusal::new(
                    "invalid_payment_requirements",
                    "metered (upto) payments need the payments setting facilitator_address \
                     (the facilitator's /supported extra.facilitatorAddress)",
                )
            })?;
        crate::upto::UptoTerms::new(&price(p), facilitator, tariff)
    }

    fn mode(unavailable: &str) -> Result<Mode, Refusal> {
        MODE.lock()
            .map(|m| m.clone())
            .map_err(|_| Refusal::new(unavailable, "settings lock poisoned"))
    }

    /// POSTs a payment to the facilitator's `path`; a transport failure is `unavailable`.
    fn ask(
        endpoint: &facilitator::Endpoint,
        path: &str,
        body: &[u8],
        unavailable: &str,
    ) -> Result<(u16, Vec<u8>), Refusal> {
        crate::http::post_json(endpoint, path, body).map_err(|e| {
            Refusal::new(
                unavailable,
                format!("the facilitator could not be reached: {e}"),
            )
        })
    }

    fn price(p: &wit::Price) -> Price {
        Price {
            amount: p.amount.clone(),
            asset: p.asset.clone(),
            network: p.network.clone(),
            pay_to: p.pay_to.clone(),
            eip712_name: p.eip712_name.clone(),
            eip712_version: p.eip712_version.clone(),
            max_timeout_seconds: p.max_timeout_seconds,
        }
    }

    fn resource(r: &wit::PaidResource) -> Resource {
        Resource {
            url: r.url.clone(),
            description: r.description.clone(),
            mime_type: r.mime_type.clone(),
        }
    }

    fn version(v: wit::ProtocolVersion) -> Version {
        match v {
            wit::ProtocolVersion::V1 => Version::V1,
            wit::ProtocolVersion::V2 => Version::V2,
        }
    }

    impl From<Refusal> for wit::PaymentError {
        fn from(r: Refusal) -> Self {
            Self {
                reason: r.reason,
                message: r.message,
            }
        }
    }

    struct Payments;

    impl wit::Guest for Payments {
        fn configure(settings: String) -> Result<(), String> {
            let mode = super::parse_settings(&settings)?;
            let facilitator = super::facilitator_address(&settings)?;
            *MODE.lock().map_err(|_| "settings lock poisoned")? = mode;
            *FACILITATOR.lock().map_err(|_| "settings lock poisoned")? = facilitator;
            Ok(())
        }

        fn build_challenge(
            resource_: wit::PaidResource,
            price_: wit::Price,
            error: String,
        ) -> Result<wit::Challenge, wit::PaymentError> {
            let terms = Terms::new(&price(&price_))?;
            let (payment_required, v1_body) =
                protocol::challenge(&terms, &resource(&resource_), &error);
            Ok(wit::Challenge {
                payment_required,
                v1_body,
            })
        }

        fn verify(
            header: wit::PaymentHeader,
            resource_: wit::PaidResource,
            price_: wit::Price,
            now_unix_seconds: u64,
        ) -> Result<wit::VerifiedPayment, wit::PaymentError> {
            let terms = Terms::new(&price(&price_))?;
            let v = version(header.version);
            // Offline first: a bad payment never costs a round trip.
            let accepted =
                protocol::verify(v, &header.value, &terms, &resource_.url, now_unix_seconds)?;
            if let Mode::Facilitator {
                endpoint,
                ask_verify: true,
            } = mode(facilitator::VERIFY_UNAVAILABLE)?
            {
                let body =
                    facilitator::request_body(v, &header.value, &terms, &resource(&resource_))?;
                let (status, answer) =
                    ask(&endpoint, "/verify", &body, facilitator::VERIFY_UNAVAILABLE)?;
                facilitator::verify_answer(status, &answer)?;
            }
            Ok(wit::VerifiedPayment {
                payer: accepted.payer.to_checksum(None),
                replay_key: accepted.replay_key,
                amount: terms.amount.clone(),
                network: terms.network.clone(),
            })
        }

        fn settle(
            header: wit::PaymentHeader,
            resource_: wit::PaidResource,
            price_: wit::Price,
        ) -> Result<wit::Settlement, wit::PaymentError> {
            let terms = Terms::new(&price(&price_))?;
            let v = version(header.version);
            // The header was verified (and recorded by the host) before the work ran; only its
            // payer is needed here (its time window may have passed while the work ran).
            let accepted = protocol::inspect(v, &header.value, &terms, &resource_.url)?;
            let payer = accepted.payer.to_checksum(None);
            let network = match header.version {
                wit::ProtocolVersion::V1 => terms.v1_network.unwrap_or(&terms.network).to_string(),
                wit::ProtocolVersion::V2 => terms.network.clone(),
            };
            let settled = match mode(facilitator::SETTLE_UNAVAILABLE)? {
                Mode::VerifyOnly => facilitator::Settled::without_transaction(),
                Mode::Facilitator { endpoint, .. } => {
                    let body =
                        facilitator::request_body(v, &header.value, &terms, &resource(&resource_))?;
                    let (status, answer) =
                        ask(&endpoint, "/settle", &body, facilitator::SETTLE_UNAVAILABLE)?;
                    facilitator::settle_answer(status, &answer)?
                }
            };
            Ok(wit::Settlement {
                success: settled.success,
                response_header: protocol::settlement_header(
                    settled.success,
                    &settled.transaction,
                    &network,
                    &payer,
                    settled.error_reason.as_deref(),
                    None,
                ),
                transaction: settled.transaction,
                network,
                payer,
                error_reason: settled.error_reason,
            })
        }
    }

    impl metered::Guest for Payments {
        fn build_challenge(
            resource_: wit::PaidResource,
            price_: wit::Price,
            tariff: String,
            error: String,
        ) -> Result<String, wit::PaymentError> {
            let terms = upto_terms(&price_, &tariff)?;
            Ok(crate::upto::challenge(
                &terms,
                &resource(&resource_),
                &error,
            ))
        }

        fn verify(
            header: wit::PaymentHeader,
            resource_: wit::PaidResource,
            price_: wit::Price,
            tariff: String,
            now_unix_seconds: u64,
        ) -> Result<wit::VerifiedPayment, wit::PaymentError> {
            let terms = upto_terms(&price_, &tariff)?;
            if header.version != wit::ProtocolVersion::V2 {
                return Err(Refusal::new(
                    "invalid_x402_version",
                    "metered (upto) payments are x402 version 2: send PAYMENT-SIGNATURE",
                )
                .into());
            }
            let accepted =
                crate::upto::verify(&header.value, &terms, &resource_.url, now_unix_seconds)?;
            if let Mode::Facilitator {
                endpoint,
                ask_verify: true,
            } = mode(facilitator::VERIFY_UNAVAILABLE)?
            {
                let body = facilitator::upto_body(&header.value, terms.v2_requirements())?;
                let (status, answer) =
                    ask(&endpoint, "/verify", &body, facilitator::VERIFY_UNAVAILABLE)?;
                facilitator::verify_answer(status, &answer)?;
            }
            Ok(wit::VerifiedPayment {
                payer: accepted.payer.to_checksum(None),
                replay_key: accepted.replay_key,
                amount: terms.base.amount.clone(),
                network: terms.base.network.clone(),
            })
        }

        fn settle(
            header: wit::PaymentHeader,
            resource_: wit::PaidResource,
            price_: wit::Price,
            tariff: String,
            charged: String,
        ) -> Result<wit::Settlement, wit::PaymentError> {
            let terms = upto_terms(&price_, &tariff)?;
            let accepted = crate::upto::inspect(&header.value, &terms, &resource_.url)?;
            let charge = crate::upto::charge(&charged, &terms)?;
            let payer = accepted.payer.to_checksum(None);
            let network = terms.base.network.clone();
            let settled = match mode(facilitator::SETTLE_UNAVAILABLE)? {
                // Nothing to move (a charge of 0: the authorization expires unused), or
                // recorded for later settlement (verify-only): no transaction.
                _ if charge.is_zero() => facilitator::Settled::without_transaction(),
                Mode::VerifyOnly => facilitator::Settled::without_transaction(),
                Mode::Facilitator { endpoint, .. } => {
                    let body = facilitator::upto_body(
                        &header.value,
                        terms.settle_requirements(&charge.to_string()),
                    )?;
                    let (status, answer) =
                        ask(&endpoint, "/settle", &body, facilitator::SETTLE_UNAVAILABLE)?;
                    facilitator::settle_answer(status, &answer)?
                }
            };
            Ok(wit::Settlement {
                success: settled.success,
                response_header: protocol::settlement_header(
                    settled.success,
                    &settled.transaction,
                    &network,
                    &payer,
                    settled.error_reason.as_deref(),
                    Some(&charge.to_string()),
                ),
                transaction: settled.transaction,
                network,
                payer,
                error_reason: settled.error_reason,
            })
        }
    }

    export!(Payments);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_the_mode_and_where_payments_are_verified() {
        assert_eq!(parse_settings("").unwrap(), Mode::VerifyOnly);
        assert_eq!(
            parse_settings(r#"{"mode": "verify-only"}"#).unwrap(),
            Mode::VerifyOnly
        );
        let facilitator = |verify: &str| {
            parse_settings(&format!(
                r#"{{"mode": "facilitator", "facilitator_url": "http://127.0.0.1:4021"{verify}}}"#
            ))
        };
        let endpoint = facilitator::Endpoint::parse("http://127.0.0.1:4021").unwrap();
        assert_eq!(
            facilitator("").unwrap(),
            Mode::Facilitator {
                endpoint: endpoint.clone(),
                ask_verify: true
            }
        );
        assert_eq!(
            facilitator(r#", "verify": "facilitator""#).unwrap(),
            facilitator("").unwrap()
        );
        assert_eq!(
            facilitator(r#", "verify": "local""#).unwrap(),
            Mode::Facilitator {
                endpoint,
                ask_verify: false
            }
        );
        assert!(facilitator(r#", "verify": "chain""#).is_err());
        assert!(facilitator(r#", "verify": 1"#).is_err());
        assert!(parse_settings(r#"{"verify": "local"}"#).is_err());
        assert!(parse_settings(r#"{"mode": "facilitator"}"#).is_err());
        assert!(parse_settings(r#"{"other": 1}"#).is_err());
    }
}
