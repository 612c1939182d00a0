//! x402 payments: a component exporting `hypervisor:host/payments` builds challenges, verifies
//! payment headers and settles; the host records payments (see [`crate::storage::payments`]).
//!
//! Each call gets a fresh instance of the (small, Rust) component, configured first: no state
//! passes between payments, and an instance that trapped is never reused. In facilitator mode
//! the instance may send `wasi:http` requests to the facilitator's origin, and to no other.

use std::sync::Arc;
use std::time::Duration;

use super::PluginError;
use super::instance::{Bound, outcome, plugin_world};
use crate::config::{PaymentsConfig, PriceConfig, SettlementMode};
use crate::engine::{Capabilities, Engine, HostState, Role, RunLimits};
use crate::net::Origin;

plugin_world!(
    world: "payments-component",
    bindings: PaymentsComponent,
    pre: PaymentsComponentPre,
    interface: "hypervisor:host/payments"
);

use bindings::PaymentsComponent;
pub use bindings::exports::hypervisor::host::payments::{
    Challenge, PaidResource, PaymentError, PaymentHeader, Price, ProtocolVersion, Settlement,
    VerifiedPayment,
};

/// Limits of one payments call (a verification takes well under a millisecond; the time
/// comes from `payments.call_timeout_ms`).
const CALL_LIMITS: RunLimits = RunLimits {
    time: Duration::from_secs(30),
    memory_bytes: 64 << 20,
    fuel: Some(10_000_000_000),
};

/// Why a payments call failed on the host side (the component trapped, timed out, or refused
/// its settings). Payment refusals are not errors: they are [`PaymentError`] values.
#[derive(Debug, thiserror::Error)]
#[error("the payments component failed: {0}")]
pub struct PaymentsFailure(pub String);

/// The loaded payments component.
pub struct Payments {
    /// The component; its stores' capabilities are the table's plus the facilitator's origin
    /// in facilitator mode (the only origin it may reach).
    plugin: Bound<PaymentsComponent>,
    settings: String,
    /// Wall-clock limit of one call.
    time: Duration,
}

impl Payments {
    /// Loads the component named by `config` and checks that it accepts its settings.
    ///
    /// # Errors
    /// [`PluginError`] naming the file and the reason.
    pub async fn load(engine: Arc<Engine>, config: &PaymentsConfig) -> Result<Self, PluginError> {
        let capabilities = Capabilities::of(Role::Payments);
        let mut plugin = Bound::load(engine, capabilities, &config.component).await?;
        let mut settings = serde_json::json!({ "mode": config.mode.as_str() });
        if config.mode == SettlementMode::Facilitator {
            let url = config.facilitator_url.as_deref().ok_or_else(|| {
                PluginError::SettingsRejected(
                    "facilitator mode needs payments.facilitator_url".into(),
                )
            })?;
            plugin.capabilities.egress.grant(
                Origin::parse(url).map_err(|e| PluginError::SettingsRejected(e.to_string()))?,
            );
            settings["facilitator_url"] = url.into();
        }
        let payments = Self {
            plugin,
            settings: settings.to_string(),
            time: Duration::from_millis(config.call_timeout_ms),
        };
        payments
            .call(async |_, _| Ok(()))
            .await
            .map_err(|e| PluginError::SettingsRejected(e.0))?;
        // Every configured price must make a valid challenge: a bad price stops the start-up
        // instead of failing every paid request.
        let resource = PaidResource {
            url: "http://localhost/".into(),
            description: String::new(),
            mime_type: "application/json".into(),
        };
        let amounts = std::iter::once(("payments.price.amount", &config.price.amount)).chain(
            config
                .amounts
                .iter()
                .map(|(route, amount)| (route.as_str(), amount)),
        );
        for (what, amount) in amounts {
            match payments
                .challenge(&resource, &price(&config.price, amount), "")
                .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(PluginError::SettingsRejected(format!(
                        "the price for {what} is invalid: {}",
                        e.message
                    )));
                }
                Err(e) => return Err(PluginError::SettingsRejected(e.0)),
            }
        }
        Ok(payments)
    }

    /// SHA-256 of the component file.
    pub fn hash(&self) -> [u8; 32] {
        self.plugin.hash
    }

    /// Runs `f` on a fresh, configured instance.
    async fn call<R>(
        &self,
        f: impl AsyncFnOnce(&PaymentsComponent, &mut wasmtime::Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, PaymentsFailure> {
        let engine: &Engine = &self.plugin.engine;
        let fuel = engine.fuel_enabled().then_some(CALL_LIMITS.fuel).flatten();
        let limits = RunLimits {
            fuel,
            time: self.time,
            ..CALL_LIMITS
        };
        let _permit = engine
            .plugin_call_slot()
            .await
            .map_err(|e| PaymentsFailure(e.to_string()))?;
        let mut sandbox = self
            .plugin
            .sandbox(Default::default(), limits)
            .map_err(|e| PaymentsFailure(e.to_string()))?;
        let (result, _) = self
            .plugin
            .call(&mut sandbox, async |payments, store| {
                payments
                    .hypervisor_host_payments()
                    .call_configure(&mut *store, &self.settings)
                    .await?
                    .map_err(|e| wasmtime::Error::msg(format!("settings refused: {e}")))?;
                f(&payments, store).await
            })
            .await;
        outcome(result).map_err(PaymentsFailure)
    }

    /// The 402 challenge for `resource` at `price`.
    ///
    /// # Errors
    /// [`PaymentsFailure`]; the inner `Err` is the component's refusal (a bad price).
    pub async fn challenge(
        &self,
        resource: &PaidResource,
        price: &Price,
        error: &str,
    ) -> Result<Result<Challenge, PaymentError>, PaymentsFailure> {
        self.call(async |p, store| {
            p.hypervisor_host_payments()
                .call_build_challenge(store, resource, price, error)
                .await
        })
        .await
    }

    /// Verifies a payment header.
    ///
    /// # Errors
    /// [`PaymentsFailure`]; the inner `Err` is the refusal with its x402 reason.
    pub async fn verify(
        &self,
        header: &PaymentHeader,
        resource: &PaidResource,
        price: &Price,
        now_unix_seconds: u64,
    ) -> Result<Result<VerifiedPayment, PaymentError>, PaymentsFailure> {
        self.call(async |p, store| {
            p.hypervisor_host_payments()
                .call_verify(store, header, resource, price, now_unix_seconds)
                .await
        })
        .await
    }

    /// Settles a verified, recorded payment.
    ///
    /// # Errors
    /// [`PaymentsFailure`]; the inner `Err` is the component's refusal.
    pub async fn settle(
        &self,
        header: &PaymentHeader,
        resource: &PaidResource,
        price: &Price,
    ) -> Result<Result<Settlement, PaymentError>, PaymentsFailure> {
        self.call(async |p, store| {
            p.hypervisor_host_payments()
                .call_settle(store, header, resource, price)
                .await
        })
        .await
    }
}

/// The WIT price for a configured price and amount.
pub fn price(c: &PriceConfig, amount: &str) -> Price {
    Price {
        amount: amount.to_string(),
        asset: c.asset.clone(),
        network: c.network.clone(),
        pay_to: c.pay_to.clone(),
        eip712_name: c.eip712_name.clone(),
        eip712_version: c.eip712_version.clone(),
        max_timeout_seconds: c.max_timeout_seconds,
    }
}

/// A settlement as the response header that carries it back to the payer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementHeader {
    /// `PAYMENT-RESPONSE` (v2) or `X-PAYMENT-RESPONSE` (v1).
    pub name: &'static str,
    /// Base64 JSON (the component's `response-header`).
    pub value: String,
}

impl SettlementHeader {
    /// The header of `version` carrying `value`.
    pub fn new(version: ProtocolVersion, value: String) -> Self {
        let name = match version {
            ProtocolVersion::V1 => "X-PAYMENT-RESPONSE",
            ProtocolVersion::V2 => "PAYMENT-RESPONSE",
        };
        Self { name, value }
    }
}
