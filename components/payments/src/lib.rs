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
//!
//! Protocol types come from `x402-types` / `x402-chain-eip155` (no network features);
//! signature recovery from alloy.

pub mod exact;
pub mod protocol;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Recorded by the host for later settlement.
    VerifyOnly,
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
        if key != "mode" {
            return Err(format!("unknown setting {key} (known: mode)"));
        }
    }
    match obj.get("mode").map(|m| m.as_str()) {
        None | Some(Some("verify-only")) => Ok(Mode::VerifyOnly),
        Some(Some("facilitator")) => {
            Err("settlement mode `facilitator` is not implemented by this component yet".into())
        }
        Some(other) => Err(format!(
            "unknown settlement mode {other:?} (known: verify-only)"
        )),
    }
}

#[cfg(target_arch = "wasm32")]
mod component {
    use std::sync::Mutex;

    use super::protocol::{self, Price, Resource, Terms, Version};
    use super::{Mode, Refusal};

    wit_bindgen::generate!({
        path: "../../wit",
        world: "payments-component",
    });

    use exports::hypervisor::host::payments as wit;

    static MODE: Mutex<Mode> = Mutex::new(Mode::VerifyOnly);

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
            *MODE.lock().map_err(|_| "settings lock poisoned")? = mode;
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
            _resource: wit::PaidResource,
            price_: wit::Price,
            now_unix_seconds: u64,
        ) -> Result<wit::VerifiedPayment, wit::PaymentError> {
            let terms = Terms::new(&price(&price_))?;
            let accepted = protocol::verify(
                version(header.version),
                &header.value,
                &terms,
                now_unix_seconds,
            )?;
            Ok(wit::VerifiedPayment {
                payer: accepted.payer.to_checksum(None),
                replay_key: accepted.replay_key,
                amount: terms.amount.clone(),
                network: terms.network.clone(),
            })
        }

        fn settle(
            header: wit::PaymentHeader,
            _resource: wit::PaidResource,
            price_: wit::Price,
        ) -> Result<wit::Settlement, wit::PaymentError> {
            let terms = Terms::new(&price(&price_))?;
            // The header was verified (and recorded by the host) before the work ran; only its
            // payer is needed here (its time window may have passed while the work ran).
            let accepted = protocol::inspect(version(header.version), &header.value, &terms)?;
            let payer = accepted.payer.to_checksum(None);
            let network = match header.version {
                wit::ProtocolVersion::V1 => terms.v1_network.unwrap_or(&terms.network).to_string(),
                wit::ProtocolVersion::V2 => terms.network.clone(),
            };
            let mode = *MODE
                .lock()
                .map_err(|_| Refusal::new("unexpected_settle_error", "settings lock poisoned"))?;
            match mode {
                Mode::VerifyOnly => Ok(wit::Settlement {
                    success: true,
                    transaction: String::new(),
                    response_header: protocol::settlement_header(true, "", &network, &payer, None),
                    network,
                    payer,
                    error_reason: None,
                }),
            }
        }
    }

    export!(Payments);
}
