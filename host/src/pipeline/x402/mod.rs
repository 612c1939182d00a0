//! x402 on paid routes and paid agents, as types, so that no front can forget a step:
//!
//! ```text
//! Charge ──verify──> Verified ──reserve──> Reservation ──settle(self)──> SettlementHeader
//!                                              │
//!                                              └── dropped unsettled: released
//! ```
//!
//! - [`Pipeline::verify_payment`] asks the payments component about the request's header: a
//!   missing or refused payment is a 402 with the challenge, nothing recorded.
//! - [`Verified::reserve`] records the payment durably (its replay key taken) before the work
//!   runs: a replay is refused here, also after a restart. In verify-only mode a paid code
//!   route's payment (work with no effect outside its answer) is instead only checked against
//!   the ledger and held on this host ([`claims`]), and recorded `settled` in one write by
//!   [`Reservation::settle`], before the answer; a replay recorded meanwhile on another
//!   replica withholds the result (a 402).
//! - [`Reservation::settle`] settles it once the work gave a result (a guest stopped by its
//!   limits is a result: it consumed the compute); the settlement goes back as a header.
//! - A [`Reservation`] dropped without being settled (the component did not compile, no
//!   execution slot, an HTTP agent gave no response, the client went away mid-run, which
//!   stops the run with it) is released: nothing was delivered, so the same payment header
//!   may be presented again. Work that goes on without the request (an HTTP agent's guest
//!   runs in a task of its own) is marked [`Reservation::detach`]ed first: dropped then, the
//!   payment stays reserved, never charged and never reusable.
//!
//! When money moves (documented in `docs/PROTOCOL.md` §6b): in `verify-only` mode never during
//! the request (the operator settles recorded authorizations later); in facilitator mode at
//! settlement, before the response, or just after it for x402 v2 payments of at most
//! `payments.settle_after_response_up_to` ([`Pipeline::deferral`]: the answer then carries a
//! settlement header with an empty transaction, and a settlement refused afterwards leaves that
//! run unpaid, which is the risk the operator accepts up to that amount; its `settling` mark is
//! written after the answer too, so a host that dies before that mark is durable releases the
//! payment, the same risk). In verify-only mode, for a payment reserved before its run
//! (agents, identified payments, or every payment with `payments.reserve_before_run`), the same
//! setting lets its `settled` mark be written after the response (the reservation is durable
//! before the work): if the host dies before the mark is durable, the payment is found
//! `reserved` and released, and that run goes unpaid. A paid code route's payment recorded
//! after its run (the default) is recorded `settled` before its answer whatever the setting. After a
//! request ran, the same header is a replay and is refused, so no payment is ever taken twice.

pub mod bazaar;
pub(super) mod claims;
pub mod discovery;
pub mod identifier;
mod kept;
pub(super) mod offer_receipt;
mod settlement;
pub mod sign_in;
mod writes;

use std::sync::Arc;

use identifier::{KeepSlot, PaymentIdentifier};

use hypervisor_protocol::paid::PaidRoute;
use hypervisor_protocol::tariff::{Meter, Tariff};
use settlement::{Settlement, Write, pending_header, taken_over};
use writes::{Reserving, wait_for};

use super::Pipeline;
use super::route::RouteKind;
use crate::clock::unix_seconds;
use crate::config::{IdentifierMode, SettlementMode};
use crate::error::ApiError;
use crate::metrics::PaymentOutcome;
use crate::plugins::payments::{
    PaidResource, PaymentHeader, Price, ProtocolVersion, SettlementHeader, VerifiedPayment, price,
};
use crate::storage::payments::{Identifier, NewPayment};

/// Reason with which the component says a payment could not be judged (its facilitator could
/// not be asked): answered 503, not 402.
pub const VERIFY_UNAVAILABLE: &str = "unexpected_verify_error";

/// Seconds a metered authorization must still be valid for when its run's time is up: the
/// facilitator's own margin (6 s) and time for the admission, the ledger's writes and the
/// settlement's transaction.
const SETTLE_MARGIN: u64 = 16;

/// Reason given when a payment's replay key is already in the ledger.
pub const REPLAY_REASON: &str = "invalid_exact_evm_nonce_already_used";

/// What a paid request costs: the resource paid for and its price. A paid route's comes from
/// the configuration (`payments.price`, `payments.amounts`); a paid agent's from its
/// deployment.
#[derive(Debug, Clone)]
pub(super) struct Charge {
    /// The path paid for (ledger and resource URL).
    path: String,
    resource: PaidResource,
    price: Price,
    /// Whether its payments may carry identifiers (`payments.payment_identifier`).
    identifier: IdentifierMode,
    /// What it takes and gives (x402 `bazaar`), when the host knows.
    discovery: Option<Arc<bazaar::Discovery>>,
    /// Who may call without paying (x402 sign-in-with-x), for a paid agent whose grants say.
    sign_in: Option<sign_in::SignInTarget>,
    /// A metered agent's tariff (x402 `upto`: `price.amount` is the maximum), with its JSON
    /// as the component shows it.
    tariff: Option<(Tariff, String)>,
    /// Whether the paid work has no effect outside its answer (a paid code route's run: no
    /// egress, no state), so that nothing is lost if it runs and its answer is withheld.
    answer_only: bool,
}

impl Charge {
    /// The charge, declaring `discovery` (x402 `bazaar`) in its challenges.
    pub(super) fn with_discovery(mut self, discovery: Option<bazaar::Discovery>) -> Self {
        self.discovery = discovery.map(Arc::new);
        self
    }

    /// The charge, metered by `tariff` (x402 `upto`) when there is one.
    pub(super) fn with_tariff(mut self, tariff: Option<&Tariff>) -> Self {
        self.tariff = tariff.map(|t| {
            let json = serde_json::to_string(t).unwrap_or_default();
            (t.clone(), json)
        });
        self
    }

    /// A metered charge's tariff as its challenge shows it.
    pub(super) fn tariff_json(&self) -> Option<&str> {
        self.tariff.as_ref().map(|(_, json)| json.as_str())
    }

    /// The most fuel a metered run may consume: the maximum's worth by the tariff (`None`
    /// when the charge is not metered by fuel).
    pub(super) fn fuel_cap(&self) -> Option<u64> {
        let (tariff, _) = self.tariff.as_ref()?;
        let maximum = hypervisor_protocol::tariff::parse_amount(&self.price.amount)?;
        // At least 1: a zero fuel budget is no budget.
        tariff.rates().ok()?.fuel_cap(maximum).map(|cap| cap.max(1))
    }

    /// The charge of `agent`, taking sign-ins as its grants say (x402 sign-in-with-x).
    pub(super) fn with_sign_in(mut self, agent: &crate::storage::agents::AgentRecord) -> Self {
        self.sign_in = agent
            .grants
            .sign_in
            .as_ref()
            .filter(|grant| !grant.wallets.is_empty() || grant.after_payment_seconds > 0)
            .map(|grant| sign_in::SignInTarget {
                agent: agent.name.clone(),
                owner: sign_in::owner_id(&agent.owner_key),
                grant: grant.clone(),
            });
        self
    }
}

/// A payment the component accepted for a charge. Nothing is recorded yet: dropping it costs
/// the payer nothing.
pub(super) struct Verified {
    header: PaymentHeader,
    charge: Charge,
    /// What the component accepted.
    pub verified: VerifiedPayment,
    /// Its payment identifier, and where the request's front learns that it was reserved.
    identifier: Option<(PaymentIdentifier, Arc<KeepSlot>)>,
}

impl Verified {
    /// The most fuel the paid run may consume (a metered charge's maximum's worth).
    pub(super) fn fuel_cap(&self) -> Option<u64> {
        self.charge.fuel_cap()
    }

    /// Whether the payment is metered (x402 `upto`).
    pub(super) fn is_metered(&self) -> bool {
        self.charge.tariff.is_some()
    }

    /// The Permit2 `deadline` of a metered payment (`None` for a fixed price, or a header
    /// that names none).
    fn deadline(&self) -> Option<u64> {
        self.charge.tariff.as_ref()?;
        offer_receipt::decode(&self.header.value)?["payload"]["permit2Authorization"]["deadline"]
            .as_str()?
            .parse::<u64>()
            .ok()
    }

    /// The receipt's `payment` field: `x402 <network> <amount> payer=<address> key=<replay key>`.
    pub fn receipt_field(&self) -> String {
        let v = &self.verified;
        format!(
            "x402 {} {} payer={} key={}",
            v.network, v.amount, v.payer, v.replay_key
        )
    }

    /// Whether this payment is recorded once, after its run and before its answer, instead of
    /// reserved before the run: verify-only mode (nothing leaves the host when it settles),
    /// work with no effect outside its answer (a crash or a replay found afterwards loses
    /// nothing but that answer), a fixed price, no payment identifier (whose answer is kept
    /// with its reservation) and no sign-in bought, unless the operator asks to reserve
    /// (`payments.reserve_before_run`).
    fn recorded_after_run(&self, pipeline: &Pipeline) -> bool {
        let c = &pipeline.config.payments;
        c.mode == SettlementMode::VerifyOnly
            && !c.reserve_before_run
            && self.charge.answer_only
            && self.charge.tariff.is_none()
            && self.charge.sign_in.is_none()
            && self.identifier.is_none()
    }

    /// The ledger's row for this payment, reserved or recorded by `pipeline`'s run.
    fn new_payment<'a>(&'a self, pipeline: &'a Pipeline, sealed: &'a [u8]) -> NewPayment<'a> {
        let v = &self.verified;
        NewPayment {
            replay_key: &v.replay_key,
            payer: &v.payer,
            amount: &v.amount,
            network: &v.network,
            route: &self.charge.path,
            owner: &pipeline.identity.run,
            sealed,
            at: unix_seconds(),
            identifier: self.identifier.as_ref().map(|(i, _)| Identifier {
                id: &i.id,
                fingerprint: &i.fingerprint,
            }),
        }
    }

    /// The 402 for a payment whose replay key is taken.
    async fn replayed(&self, pipeline: &Pipeline) -> ApiError {
        pipeline.metrics.payment(PaymentOutcome::Replayed);
        pipeline
            .payment_required(
                &self.charge,
                REPLAY_REASON,
                "this payment authorization was already used: sign a new one".into(),
            )
            .await
    }

    /// Records the payment durably before the work runs, or, for a payment recorded after its
    /// run ([`Self::recorded_after_run`]), holds it on this host and checks that the ledger
    /// does not have it. A replay (the replay key is already in the ledger, or held by a run
    /// on this host) is a 402.
    pub(super) async fn reserve(self, pipeline: &Pipeline) -> Result<Reservation<'_>, ApiError> {
        if self.recorded_after_run(pipeline) {
            let key = &self.verified.replay_key;
            let claim = match pipeline.claims.claim(key) {
                Some(claim) if !pipeline.ledger.recorded(key).await? => claim,
                _ => return Err(self.replayed(pipeline).await),
            };
            return Ok(Reservation {
                pipeline,
                paid: self,
                armed: true,
                metered: None,
                claim: Some(claim),
            });
        }
        // A run on this host holding the payment (recorded after its run, so not yet in the
        // ledger) refuses it here too; and this reservation holds it until it is durable, so
        // that no such run starts meanwhile (the ledger refuses it from then on, and a run
        // starting after finds it recorded).
        let _held = if self.charge.answer_only
            && pipeline.config.payments.mode == SettlementMode::VerifyOnly
            && !pipeline.config.payments.reserve_before_run
        {
            match pipeline.claims.claim_reserving(&self.verified.replay_key) {
                Some(claim) => Some(claim),
                None => return Err(self.replayed(pipeline).await),
            }
        } else {
            None
        };
        let v = &self.verified;
        // Verify-only payments are never settled from the ledger (no `settling` step; an
        // orphaned reservation is released), so theirs carries nothing sealed.
        let sealed = if pipeline.config.payments.mode == SettlementMode::VerifyOnly {
            Vec::new()
        } else {
            super::orphans::seal_pending(
                &pipeline.sealing,
                &v.replay_key,
                &self.header,
                &self.charge.resource,
                &self.charge.price,
            )?
        };
        let writing = Reserving::start(&pipeline.ledger, &self.new_payment(pipeline, &sealed));
        if writing.fresh().await? {
            if let Some((identifier, slot)) = &self.identifier {
                slot.set(&v.replay_key, identifier);
            }
            return Ok(Reservation {
                pipeline,
                paid: self,
                armed: true,
                metered: None,
                claim: None,
            });
        }
        // Not recorded: its replay key, or its identifier, was there first (another request
        // with the same identifier may have reserved in between).
        if let Some((identifier, _)) = &self.identifier
            && let Some(found) = pipeline.ledger.identified(&identifier.id).await?
        {
            return Err(identifier::judge(
                found,
                identifier,
                |key, identifier, sealed| pipeline.open_answer(key, identifier, sealed),
            ));
        }
        Err(self.replayed(pipeline).await)
    }
}

/// A verified payment recorded in the ledger for work about to run. Settle it with
/// [`Self::settle`] once the work gave a result; dropped unsettled, it is released.
#[must_use = "a reservation dropped without `settle` is released: the work goes unpaid"]
pub(super) struct Reservation<'p> {
    pipeline: &'p Pipeline,
    paid: Verified,
    /// Still to be released on drop (cleared by `settle` and `detach`).
    armed: bool,
    /// A metered run's meter and the charge it comes to ([`Self::meter`]).
    metered: Option<(Meter, u128)>,
    /// For a payment recorded after its run ([`Verified::recorded_after_run`]): its hold on
    /// this host until it is recorded. Nothing is in the ledger until then, so nothing is
    /// released when it is dropped unsettled.
    claim: Option<claims::Claim>,
}

impl Reservation<'_> {
    /// Marks the paid work as running on its own, beyond the request's reach (an HTTP agent's
    /// guest task): if the reservation is dropped from now on (the client went away before
    /// the response), it is not released, since the work goes on; it stays `reserved`.
    pub(super) fn detach(&mut self) {
        self.armed = false;
    }

    /// Gives the payment back without settling it: the run is not to be charged (a paid
    /// agent's run that did not succeed under its charge rule). Also after [`Self::detach`].
    pub(super) fn release(mut self) {
        self.armed = true;
        // Dropped here: `Drop` releases it.
    }

    /// Settles the reservation if the run is `charged`, else gives the payment back; `None`
    /// for a run that is not charged.
    pub(super) fn charged_or_released(self, charged: bool) -> Option<Self> {
        if charged {
            Some(self)
        } else {
            self.release();
            None
        }
    }

    /// Takes the meter of a metered run (x402 `upto`): the charge is the tariff's, at most the
    /// maximum the payer signed for. Nothing for a fixed price.
    ///
    /// A run `capped` (stopped at the maximum's worth of fuel) is charged the maximum.
    pub(super) fn meter(&mut self, meter: Meter, capped: bool) {
        let Some((tariff, _)) = &self.paid.charge.tariff else {
            return;
        };
        let maximum = hypervisor_protocol::tariff::parse_amount(&self.paid.charge.price.amount);
        // Fails closed: a tariff or price that no longer parses (both were checked at
        // deployment) charges the maximum the payer signed for, as if no meter had been taken.
        let charged = match maximum {
            Some(maximum) if capped => Some(maximum),
            Some(maximum) => tariff.charge(&meter, maximum).ok(),
            None => None,
        };
        self.metered = charged.map(|charged| (meter, charged));
    }

    /// The most fuel the paid run may consume ([`Verified::fuel_cap`]).
    pub(super) fn fuel_cap(&self) -> Option<u64> {
        self.paid.charge.fuel_cap()
    }

    /// Whether the payment is metered (x402 `upto`).
    pub(super) fn is_metered(&self) -> bool {
        self.paid.charge.tariff.is_some()
    }

    /// The receipt's `payment` field (see [`Verified::receipt_field`]); a metered run's adds
    /// `charged=<amount> meter=<fuel>,<ms>,<output bytes> tariff=<fixed>,<per_million_fuel>,
    /// <per_ms>,<per_kib_out>` (its amount is the maximum).
    pub fn receipt_field(&self) -> String {
        let mut field = self.paid.receipt_field();
        if let (Some((meter, charged)), Some((tariff, _))) =
            (self.metered, &self.paid.charge.tariff)
        {
            field.push_str(&format!(
                " charged={charged} meter={},{},{} tariff={}",
                meter.fuel,
                meter.ms,
                meter.output_bytes,
                tariff.detail()
            ));
        }
        field
    }

    /// What the x402 receipt of this payment states of it.
    pub(super) fn terms(&self) -> offer_receipt::Terms {
        let v = &self.paid.verified;
        offer_receipt::Terms {
            metered: match (&self.metered, &self.paid.charge.tariff) {
                (Some((meter, _)), Some((tariff, _))) => {
                    Some(hypervisor_protocol::offer_receipt::Metering {
                        meter: *meter,
                        tariff: tariff.clone(),
                        maximum: self.paid.charge.price.amount.clone(),
                    })
                }
                _ => None,
            },
            network: v.network.clone(),
            resource_url: self.paid.charge.resource.url.clone(),
            payer: v.payer.clone(),
            // A metered run's receipt states what it was charged, not the maximum.
            amount: self
                .metered
                .map_or_else(|| v.amount.clone(), |(_, charged)| charged.to_string()),
        }
    }

    /// Settles the payment after the work ran; the settlement goes back as a header. A refused
    /// settlement is a 402 `settlement_failed` (the result is withheld), an unreachable
    /// facilitator a 503; either way the ledger says `settlement_failed` and the payment is
    /// never reusable (the work ran). A payment [`Pipeline::deferral`] admits is settled after
    /// the response instead: the header then says so with an empty transaction.
    pub(super) async fn settle(mut self) -> Result<SettlementHeader, ApiError> {
        let pipeline = self.pipeline;
        // A metered run's charge goes into the ledger first (durably, while the payment is
        // still this run's reservation): the ledger says what was charged. Still armed: if the
        // write fails, nothing was settled, and the payment is released when dropped.
        if self.paid.charge.tariff.is_some() {
            let charged = self.metered.map_or_else(
                || self.paid.charge.price.amount.clone(),
                |(_, charged)| charged.to_string(),
            );
            let key = self.paid.verified.replay_key.clone();
            if !pipeline
                .ledger
                .charged(&key, &pipeline.identity.run, &charged)
                .await?
            {
                // Another replica took the reservation over: its to decide, not to release.
                self.armed = false;
                return Err(taken_over());
            }
        }
        // From here on never released: the settlement may reach the chain even if this
        // future is dropped before it answers.
        self.armed = false;
        let claim = self.claim.take();
        let paid = &self.paid;
        let payments = pipeline
            .payments
            .clone()
            .ok_or(ApiError::PaymentsUnavailable)?;
        let settlement = Settlement {
            payments,
            ledger: pipeline.ledger.clone(),
            metrics: pipeline.metrics.clone(),
            header: paid.header.clone(),
            resource: paid.charge.resource.clone(),
            price: paid.charge.price.clone(),
            metered: paid.charge.tariff.as_ref().map(|(_, json)| {
                // Not metered (a path that took no meter): the maximum, as the payer signed.
                let charged = self.metered.map_or_else(
                    || paid.charge.price.amount.clone(),
                    |(_, charged)| charged.to_string(),
                );
                (json.clone(), charged)
            }),
            key: paid.verified.replay_key.clone(),
            access: paid
                .charge
                .sign_in
                .as_ref()
                .map(|target| pipeline.paid_access(target)),
        };
        if let Some(claim) = claim {
            // Recorded `settled` now, durably before the answer; the hold ends once it is.
            let recorded = settlement
                .recorded_after_run(&paid.new_payment(pipeline, &[]))
                .await;
            drop(claim);
            return match recorded? {
                Some(header) => Ok(header),
                // Recorded meanwhile by a run on another replica: that one answers.
                None => Err(paid.replayed(pipeline).await),
            };
        }
        if pipeline.config.payments.mode == SettlementMode::VerifyOnly {
            return settlement.locally(pipeline, pipeline.deferral(paid)).await;
        }
        let run = pipeline.identity.run.clone();
        let Some(permit) = pipeline.deferral(paid) else {
            // Recorded before the facilitator is asked: if this run dies now, another settles
            // the payment from the ledger (the result exists) instead of releasing it.
            if !pipeline
                .ledger
                .settling(&settlement.key, &run, unix_seconds())
                .await?
            {
                // Another replica took the reservation over (this one looked dead to it): it
                // decides the payment's fate; this run's result is not delivered.
                return Err(taken_over());
            }
            return settlement.run(Write::Detached).await;
        };
        let answer = pending_header(&paid.verified);
        tokio::spawn(async move {
            // The `settling` mark too is written after the answer: a host that dies before it
            // is durable finds the payment `reserved` and releases it (one delivered run
            // unpaid, the risk this setting accepts up to its amount); from the mark on, the
            // next run settles it from the ledger. The ledger and the metrics have the
            // outcome; a failure is the operator's to see. The permit is held until the
            // outcome is committed (see `Write::Awaited`).
            let settle = match settlement
                .ledger
                .settling(&settlement.key, &run, unix_seconds())
                .await
            {
                Ok(marked) => marked,
                // The answer is out: settling is what pays for it, mark or no mark (if this
                // run dies before the outcome is written, the payment is found `reserved` and
                // released, the risk above).
                Err(e) => {
                    tracing::error!(error = %e, "marking a payment `settling` after its response failed; settling it anyway");
                    true
                }
            };
            if settle {
                if let Err(e) = settlement.run(Write::Awaited).await {
                    tracing::warn!(error = %e, "a payment settled after its response failed");
                }
            } else {
                // Another replica took the reservation over (this run looked dead to it) and
                // released it: the run was delivered unpaid (PROTOCOL.md §6b).
                tracing::warn!(
                    "the reservation of a payment answered before its settlement was taken over by another replica"
                );
            }
            drop(permit);
        });
        Ok(answer)
    }
}

impl Drop for Reservation<'_> {
    /// Releases an unsettled reservation: the work gave no result (or the request was
    /// abandoned), so nothing was delivered to be paid for.
    fn drop(&mut self) {
        // A payment held for recording after its run is not in the ledger: dropping the
        // claim frees it.
        if !self.armed || self.claim.is_some() {
            return;
        }
        // Released: its request's answer (no result, or not charged) is not kept, so a retry
        // runs again (and the slot no longer names a row that a retry may reserve anew).
        if let Some((_, slot)) = &self.paid.identifier {
            slot.release();
        }
        let key = &self.paid.verified.replay_key;
        match wait_for(self.pipeline.ledger.release(key)) {
            Ok(_) => tracing::info!("payment reservation released: the work gave no result"),
            // Still `reserved`: refused as a replay, never charged; the operator sees it.
            Err(e) => tracing::warn!(error = %e, "releasing a payment reservation failed"),
        }
    }
}

impl Pipeline {
    /// A permit to settle `paid` after the response (in verify-only mode: to record it settled
    /// after the response), if the configuration allows it for this payment
    /// (`payments.settle_after_response_up_to`: x402 v2, at most that amount) and fewer than
    /// `payments.deferred_settlements_max` such settlements are in flight.
    fn deferral(&self, paid: &Verified) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let up_to: u128 = self
            .config
            .payments
            .settle_after_response_up_to
            .as_deref()?
            .parse()
            .ok()?;
        let amount: u128 = paid.verified.amount.parse().ok()?;
        // A metered payment settles before its answer: its charge is part of it.
        if paid.header.version != ProtocolVersion::V2
            || amount > up_to
            || paid.charge.tariff.is_some()
        {
            return None;
        }
        self.deferred_settlements.clone().try_acquire_owned().ok()
    }

    /// Waits, at most `limit`, until every settlement after a response (and, in verify-only
    /// mode, every `settled` mark written after one) has finished: at shutdown, so that what
    /// was answered is also recorded. Returns whether all finished in time.
    pub async fn finish_deferred_settlements(&self, limit: std::time::Duration) -> bool {
        let all = u32::try_from(self.config.payments.deferred_settlements_max).unwrap_or(u32::MAX);
        tokio::time::timeout(limit, self.deferred_settlements.acquire_many(all))
            .await
            .is_ok_and(|permits| permits.is_ok())
    }

    /// The charge of a paid route (`None` on unpaid routes).
    pub(super) fn route_charge(&self, route: RouteKind) -> Option<Charge> {
        if !route.paid {
            return None;
        }
        let c = &self.config.payments;
        let amount = c.amounts.get(route.path).unwrap_or(&c.price.amount);
        Some(self.charge(route.path, amount))
    }

    /// The charge of `path` at `amount` (atomic units) of the configured asset: one request
    /// answered in JSON.
    pub(super) fn charge(&self, path: &str, amount: &str) -> Charge {
        self.charge_for(
            path,
            PaidRoute::Code { path },
            format!("one request to {path} on WASM Hypervisor"),
            amount,
        )
    }

    /// A charge recorded under `route` in the ledger, for the resource of `paid` (its URL and
    /// media type: [`PaidRoute`], PROTOCOL §6b).
    pub(super) fn charge_for(
        &self,
        route: &str,
        paid: PaidRoute<'_>,
        description: String,
        amount: &str,
    ) -> Charge {
        // An HTTP agent's answer streams: it is not kept, so identifiers are not offered.
        let identifier = match paid {
            PaidRoute::HttpAgent { .. } => IdentifierMode::Off,
            _ => self.config.payments.payment_identifier.mode_of(route),
        };
        // A code route's request is the protocol's; an agent's is declared by its caller
        // (`with_discovery`).
        let discovery = match paid {
            PaidRoute::Code { path } => Some(bazaar::code_route(path)),
            _ => None,
        };
        Charge {
            path: route.to_string(),
            resource: PaidResource {
                url: paid.resource_url(self.public_base()),
                description,
                mime_type: paid.mime_type().to_string(),
            },
            price: price(&self.config.payments.price, amount),
            identifier,
            discovery,
            sign_in: None,
            tariff: None,
            answer_only: matches!(paid, PaidRoute::Code { .. }),
        }
    }

    /// A 402 with the challenge for `charge`.
    async fn payment_required(&self, charge: &Charge, reason: &str, message: String) -> ApiError {
        let Some(payments) = &self.payments else {
            return ApiError::PaymentsUnavailable;
        };
        let challenge = match &charge.tariff {
            None => {
                payments
                    .challenge(&charge.resource, &charge.price, reason)
                    .await
            }
            Some((_, tariff)) => payments
                .metered_challenge(&charge.resource, &charge.price, tariff, reason)
                .await
                .map(|answer| {
                    answer.map(|payment_required| crate::plugins::payments::Challenge {
                        payment_required,
                        v1_body: None,
                    })
                }),
        };
        match challenge {
            Ok(Ok(mut challenge)) => {
                // Offered only where the request's front keeps answers.
                if identifier::current_slot().is_some() {
                    challenge.payment_required =
                        identifier::declare(&challenge.payment_required, charge.identifier);
                }
                if let Some(discovery) = &charge.discovery {
                    challenge.payment_required = identifier::extend(
                        &challenge.payment_required,
                        bazaar::EXTENSION,
                        discovery.declaration(),
                    );
                }
                if let Some(declaration) = self.sign_in_declaration(charge) {
                    challenge.payment_required = identifier::extend(
                        &challenge.payment_required,
                        sign_in::EXTENSION,
                        declaration,
                    );
                }
                challenge.payment_required = self.with_offers(&challenge.payment_required);
                ApiError::PaymentRequired {
                    challenge: Box::new(challenge),
                    reason: reason.to_string(),
                    message,
                }
            }
            Ok(Err(e)) => ApiError::PaymentsFailed(format!(
                "the configured price is invalid ({}): {}",
                e.reason, e.message
            )),
            Err(e) => ApiError::PaymentsFailed(e.to_string()),
        }
    }

    /// Verifies the payment of a paid request: `Ok(None)` without a charge; 402 when it is
    /// missing or refused.
    pub(super) async fn verify_payment(
        &self,
        charge: Option<Charge>,
        header: Option<PaymentHeader>,
    ) -> Result<Option<Verified>, ApiError> {
        let Some(charge) = charge else {
            return Ok(None);
        };
        let payments = self
            .payments
            .as_ref()
            .ok_or(ApiError::PaymentsUnavailable)?;
        let Some(header) = header else {
            self.metrics.payment(PaymentOutcome::Missing);
            return Err(self
                .payment_required(
                    &charge,
                    "payment_required",
                    "this route is paid: send a PAYMENT-SIGNATURE (x402 v2) or X-PAYMENT (v1) header"
                        .into(),
                )
                .await);
        };
        let identifier = self.identify(&charge, &header).await?;
        let verdict = match &charge.tariff {
            None => {
                payments
                    .verify(&header, &charge.resource, &charge.price, unix_seconds())
                    .await
            }
            Some((_, tariff)) => {
                payments
                    .metered_verify(
                        &header,
                        &charge.resource,
                        &charge.price,
                        tariff,
                        unix_seconds(),
                    )
                    .await
            }
        };
        let verdict = match verdict {
            Ok(verdict) => verdict,
            Err(e) => {
                self.metrics.payment(PaymentOutcome::Unavailable);
                return Err(ApiError::PaymentsFailed(e.to_string()));
            }
        };
        match verdict {
            Ok(verified) => {
                self.metrics.payment(PaymentOutcome::Verified);
                Ok(Some(Verified {
                    header,
                    charge,
                    verified,
                    identifier,
                }))
            }
            // The payment could not be judged (facilitator unreachable): not the payer's fault.
            Err(refused) if refused.reason == VERIFY_UNAVAILABLE => {
                self.metrics.payment(PaymentOutcome::Unavailable);
                Err(ApiError::PaymentsFailed(format!(
                    "{}: {}",
                    refused.reason, refused.message
                )))
            }
            Err(refused) => {
                self.metrics.payment(PaymentOutcome::Refused);
                Err(self
                    .payment_required(&charge, &refused.reason, refused.message)
                    .await)
            }
        }
    }

    /// How long a metered run may last so that its authorization can still be settled: until
    /// its Permit2 `deadline` less [`SETTLE_MARGIN`]. `None` for a fixed price (an EIP-3009
    /// authorization's window is the payer's business). A metered payment with less than a
    /// second left (or no readable deadline) is refused before anything is recorded: a 402
    /// `permit2_deadline_expired`, to sign a new one.
    pub(super) async fn metered_time(
        &self,
        verified: &Verified,
    ) -> Result<Option<std::time::Duration>, ApiError> {
        if verified.charge.tariff.is_none() {
            return Ok(None);
        }
        let left = verified.deadline().map_or(0, |d| {
            d.saturating_sub(unix_seconds())
                .saturating_sub(SETTLE_MARGIN)
        });
        if left == 0 {
            return Err(self
                .payment_required(
                    &verified.charge,
                    "permit2_deadline_expired",
                    format!(
                        "the authorization expires too soon to run and settle a metered \
                         invocation: sign one valid for more than {SETTLE_MARGIN} s"
                    ),
                )
                .await);
        }
        Ok(Some(std::time::Duration::from_secs(left)))
    }

    /// Reserves a verified payment, if there is one (see [`Verified::reserve`]).
    pub(super) async fn reserve(
        &self,
        verified: Option<Verified>,
    ) -> Result<Option<Reservation<'_>>, ApiError> {
        match verified {
            Some(v) => Ok(Some(v.reserve(self).await?)),
            None => Ok(None),
        }
    }
}
