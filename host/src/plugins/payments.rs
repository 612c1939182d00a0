//! x402 payments: a component exporting `hypervisor:host/payments` builds challenges, verifies
//! payment headers and settles; the host records payments (see [`crate::storage::payments`]).
//!
//! Calls run in **warm** instances, configured once: up to `payments.warm_instances` are kept
//! between calls, each used for at most [`MAX_USES`] calls (a fresh instance costs ~60–80 µs,
//! twice per paid request; a warm call ~10 µs plus the work). That is safe for the same reason
//! as the policy's warm instances: only the operator's payments component runs in them, never a
//! client's code; what passes through them is public (signed payment headers, prices,
//! resource URLs), and the shipped component keeps nothing between calls but its settings. An
//! instance that trapped or overran its time is dropped, never reused. `warm_instances = 0`
//! gives every call a fresh instance. In facilitator mode an instance may send `wasi:http`
//! requests to the facilitator's origin, and to no other.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::PluginError;
use super::instance::{Bound, World, outcome};
use crate::config::{PaymentsConfig, PriceConfig, SettlementMode, VerifyAt};
use crate::engine::{Capabilities, Engine, HostState, Role, RunLimits, Sandbox};
use crate::net::Origin;

/// The bindings of `metered-payments-component`, whose exports are used one by one: every
/// payments component exports `payments`; `metered-payments` is optional (components built
/// before it existed serve fixed prices).
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "metered-payments-component",
        exports: { default: async },
    });
}

use bindings::exports::hypervisor::host::metered_payments as metered;
use bindings::exports::hypervisor::host::payments as fixed;
pub use fixed::{
    Challenge, PaidResource, PaymentError, PaymentHeader, Price, ProtocolVersion, Settlement,
    VerifiedPayment,
};

/// An instance's exports.
pub struct PaymentsComponent {
    payments: fixed::Guest,
    metered: Option<metered::Guest>,
}

impl PaymentsComponent {
    fn hypervisor_host_payments(&self) -> &fixed::Guest {
        &self.payments
    }
}

/// A pre-linked payments component and where its exports are.
pub struct PaymentsPre {
    pre: wasmtime::component::InstancePre<HostState>,
    payments: fixed::GuestIndices,
    metered: Option<metered::GuestIndices>,
}

impl World for PaymentsComponent {
    type Pre = PaymentsPre;
    const INTERFACE: &'static str = "hypervisor:host/payments";

    fn bind(pre: wasmtime::component::InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
        Ok(PaymentsPre {
            payments: fixed::GuestIndices::new(&pre)?,
            // Absent (or of another shape): metered prices are refused.
            metered: metered::GuestIndices::new(&pre).ok(),
            pre,
        })
    }

    async fn instantiate(
        pre: &Self::Pre,
        store: &mut wasmtime::Store<HostState>,
    ) -> wasmtime::Result<Self> {
        let instance = pre.pre.instantiate_async(&mut *store).await?;
        Ok(Self {
            payments: pre.payments.load(&mut *store, &instance)?,
            metered: match &pre.metered {
                Some(indices) => Some(indices.load(&mut *store, &instance)?),
                None => None,
            },
        })
    }
}

/// Limits of one payments call (a verification takes well under a millisecond; the time
/// comes from `payments.call_timeout_ms`).
const CALL_LIMITS: RunLimits = RunLimits {
    time: Duration::from_secs(30),
    memory_bytes: 64 << 20,
    fuel: Some(10_000_000_000),
};

/// Calls one warm instance serves before it is dropped (bounds whatever a long-lived instance
/// might accumulate: memory growth, allocator fragmentation).
pub const MAX_USES: u32 = 10_000;

/// A configured instance between calls.
struct Warm {
    sandbox: Sandbox,
    bindings: PaymentsComponent,
    uses: u32,
}

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
    /// Configured instances between calls (at most `keep`).
    idle: Mutex<Vec<Warm>>,
    keep: usize,
    /// Whether metered prices (x402 `upto`) can be served: the component exports
    /// `metered-payments`, `payments.facilitator_address` is set, and a facilitator settles.
    metered: bool,
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
            settings["verify"] = match config.verify {
                VerifyAt::Facilitator => "facilitator",
                VerifyAt::Local => "local",
            }
            .into();
        }
        let payments = Self {
            metered: false,
            plugin,
            settings: settings.to_string(),
            time: Duration::from_millis(config.call_timeout_ms),
            idle: Mutex::new(Vec::with_capacity(config.warm_instances)),
            keep: config.warm_instances,
        };
        let mut payments = payments;
        let exports_metered = payments
            .call(async |p, _| Ok(p.metered.is_some()))
            .await
            .map_err(|e| PluginError::SettingsRejected(e.0))?;
        // Only a component that charges by the meter is told its facilitator's address (one
        // built before that setting existed may refuse settings it does not know).
        if exports_metered && let Some(address) = &config.facilitator_address {
            settings["facilitator_address"] = address.as_str().into();
            payments.settings = settings.to_string();
            // Instances configured without it are dropped; the next call starts one with it.
            payments.lock().clear();
            payments
                .call(async |_, _| Ok(()))
                .await
                .map_err(|e| PluginError::SettingsRejected(e.0))?;
        }
        // In verify-only mode nothing would ever collect a metered payment: its Permit2
        // authorization is not kept, and it expires within `max_timeout_seconds`.
        payments.metered = exports_metered
            && config.facilitator_address.is_some()
            && config.mode == SettlementMode::Facilitator;
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

    /// Whether metered prices (tariffs, x402 `upto`) can be served.
    pub fn serves_metered(&self) -> bool {
        self.metered
    }

    /// The metered interface of an instance, or the failure of a component without it.
    fn metered_of(p: &PaymentsComponent) -> wasmtime::Result<&metered::Guest> {
        p.metered.as_ref().ok_or_else(|| {
            wasmtime::Error::msg(
                "the payments component does not export hypervisor:host/metered-payments",
            )
        })
    }

    /// The v2 `PAYMENT-REQUIRED` value offering `upto` for at most `price.amount`, with
    /// `tariff` (JSON).
    ///
    /// # Errors
    /// [`PaymentsFailure`]; the inner `Err` is the component's refusal.
    pub async fn metered_challenge(
        &self,
        resource: &PaidResource,
        price: &Price,
        tariff: &str,
        error: &str,
    ) -> Result<Result<String, PaymentError>, PaymentsFailure> {
        self.call(async |p, store| {
            Self::metered_of(p)?
                .call_build_challenge(store, resource, price, tariff, error)
                .await
        })
        .await
    }

    /// Verifies a metered payment header against the maximum.
    ///
    /// # Errors
    /// [`PaymentsFailure`]; the inner `Err` is the refusal with its x402 reason.
    pub async fn metered_verify(
        &self,
        header: &PaymentHeader,
        resource: &PaidResource,
        price: &Price,
        tariff: &str,
        now_unix_seconds: u64,
    ) -> Result<Result<VerifiedPayment, PaymentError>, PaymentsFailure> {
        self.call(async |p, store| {
            Self::metered_of(p)?
                .call_verify(store, header, resource, price, tariff, now_unix_seconds)
                .await
        })
        .await
    }

    /// Settles `charged` of a verified, recorded metered payment.
    ///
    /// # Errors
    /// [`PaymentsFailure`]; the inner `Err` is the component's refusal.
    pub async fn metered_settle(
        &self,
        header: &PaymentHeader,
        resource: &PaidResource,
        price: &Price,
        tariff: &str,
        charged: &str,
    ) -> Result<Result<Settlement, PaymentError>, PaymentsFailure> {
        self.call(async |p, store| {
            Self::metered_of(p)?
                .call_settle(store, header, resource, price, tariff, charged)
                .await
        })
        .await
    }

    /// SHA-256 of the component file.
    pub fn hash(&self) -> [u8; 32] {
        self.plugin.hash
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Warm>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The limits of one call (fuel only when the engine meters it).
    fn limits(&self) -> RunLimits {
        let fuel = self
            .plugin
            .engine
            .fuel_enabled()
            .then_some(CALL_LIMITS.fuel);
        RunLimits {
            fuel: fuel.flatten(),
            time: self.time,
            ..CALL_LIMITS
        }
    }

    /// A new instance, instantiated and configured.
    async fn start(&self) -> Result<Warm, PaymentsFailure> {
        let mut sandbox = self
            .plugin
            .sandbox(Default::default(), self.limits())
            .map_err(|e| PaymentsFailure(e.to_string()))?;
        let (started, _) = self
            .plugin
            .call(&mut sandbox, async |payments, store| {
                payments
                    .hypervisor_host_payments()
                    .call_configure(&mut *store, &self.settings)
                    .await?
                    .map_err(|e| wasmtime::Error::msg(format!("settings refused: {e}")))?;
                Ok(payments)
            })
            .await;
        let bindings = outcome(started).map_err(PaymentsFailure)?;
        Ok(Warm {
            sandbox,
            bindings,
            uses: 0,
        })
    }

    /// Runs `f` on a configured instance: a warm one if one is idle, else a new one. The
    /// instance goes back to the idle list after a call that returned (a trap or a timeout
    /// drops it).
    async fn call<R>(
        &self,
        f: impl AsyncFnOnce(&PaymentsComponent, &mut wasmtime::Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, PaymentsFailure> {
        let engine: &Engine = &self.plugin.engine;
        let _permit = engine
            .plugin_call_slot()
            .await
            .map_err(|e| PaymentsFailure(e.to_string()))?;
        let idle = self.lock().pop();
        let mut warm = match idle {
            Some(warm) => warm,
            None => self.start().await?,
        };
        if let Some(fuel) = self.limits().fuel {
            warm.sandbox
                .store()
                .set_fuel(fuel)
                .map_err(|e| PaymentsFailure(e.to_string()))?;
        }
        let Warm {
            sandbox, bindings, ..
        } = &mut warm;
        let answer = engine
            .call_with_deadline(sandbox.store(), self.time, async |store| {
                f(bindings, store).await
            })
            .await;
        let result = outcome(answer).map_err(PaymentsFailure)?;
        warm.uses += 1;
        if warm.uses < MAX_USES {
            let mut idle = self.lock();
            if idle.len() < self.keep {
                idle.push(warm);
            }
        }
        Ok(result)
    }

    /// Instances kept idle right now (for tests and metrics).
    pub fn idle_instances(&self) -> usize {
        self.lock().len()
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
