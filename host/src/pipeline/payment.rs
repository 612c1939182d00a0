//! x402 on the paid routes: the payment is verified before anything else, recorded durably
//! before the work runs (a replay is refused, also after a restart), and settled after the
//! work, its settlement returned in the response header.
//!
//! When money moves (documented in `docs/PROTOCOL.md`): in `verify-only` mode, never during the
//! request: an accepted payment is recorded, and the operator settles recorded authorizations
//! later. A request refused before it runs (bad request, policy) records nothing; a request that
//! ran (including a guest stopped by its limits, which consumed the compute) is settled. A
//! client retrying a request that failed before running may reuse its payment header; after a
//! request ran, the same header is a replay and is refused, so no payment is ever taken twice.

use super::Pipeline;
use super::request::RouteKind;
use crate::attestation::signer::unix_now;
use crate::error::ApiError;
use crate::metrics::PaymentOutcome;
use crate::plugins::payments::{
    PaidResource, PaymentHeader, Price, ProtocolVersion, VerifiedPayment, price,
};
use crate::storage::StorageError;
use crate::storage::payments::{NewPayment, PaymentLedger};

/// Reason with which the component says a payment could not be judged (its facilitator could
/// not be asked): answered 503, not 402.
pub const VERIFY_UNAVAILABLE: &str = "unexpected_verify_error";

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
}

/// A verified payment of one request, with what it was verified against.
pub(super) struct Paid {
    header: PaymentHeader,
    charge: Charge,
    /// What the component accepted.
    pub verified: VerifiedPayment,
}

impl Paid {
    /// The receipt's `payment` field: `x402 <network> <amount> payer=<address> key=<replay key>`.
    pub fn receipt_field(&self) -> String {
        let v = &self.verified;
        format!(
            "x402 {} {} payer={} key={}",
            v.network, v.amount, v.payer, v.replay_key
        )
    }
}

/// A settlement, as the response header that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementHeader {
    /// `PAYMENT-RESPONSE` (v2) or `X-PAYMENT-RESPONSE` (v1).
    pub name: &'static str,
    /// Base64 JSON.
    pub value: String,
}

impl Pipeline {
    /// Runs a ledger operation that waits for an fsync (~0.1 ms) in place: on the
    /// multi-threaded runtime the worker hands its other tasks to its peers for the duration
    /// ([`tokio::task::block_in_place`]), which costs less than a hop to the blocking pool.
    fn ledger<R>(
        &self,
        op: impl FnOnce(&PaymentLedger) -> Result<R, StorageError>,
    ) -> Result<R, ApiError> {
        let run = || op(&self.ledger).map_err(|e| ApiError::Internal(e.to_string()));
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
            _ => run(),
        }
    }

    /// Records a settlement outcome without making the response wait for its fsync: the
    /// replay key is already durable (see [`Self::reserve_payment`]), so losing this update in
    /// a crash leaves the payment `reserved` (ran; outcome not recorded), never reusable.
    fn record_outcome(
        &self,
        what: &'static str,
        op: impl FnOnce(&PaymentLedger) -> Result<(), StorageError> + Send + 'static,
    ) {
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = op(&ledger) {
                tracing::error!(error = %e, "recording a payment's {what} failed");
            }
        });
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

    /// The charge of `path` at `amount` (atomic units) of the configured asset.
    pub(super) fn charge(&self, path: &str, amount: &str) -> Charge {
        Charge {
            path: path.to_string(),
            resource: PaidResource {
                url: format!("{}{}", self.public_base(), path),
                description: format!("one request to {path} on WASM Hypervisor"),
                mime_type: "application/json".into(),
            },
            price: price(&self.config.payments.price, amount),
        }
    }

    /// A 402 with the challenge for `charge`.
    async fn payment_required(&self, charge: &Charge, reason: &str, message: String) -> ApiError {
        let Some(payments) = &self.payments else {
            return ApiError::PaymentsUnavailable;
        };
        match payments
            .challenge(&charge.resource, &charge.price, reason)
            .await
        {
            Ok(Ok(challenge)) => ApiError::PaymentRequired {
                challenge: Box::new(challenge),
                reason: reason.to_string(),
                message,
            },
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
    ) -> Result<Option<Paid>, ApiError> {
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
        let verdict = match payments
            .verify(&header, &charge.resource, &charge.price, unix_now())
            .await
        {
            Ok(verdict) => verdict,
            Err(e) => {
                self.metrics.payment(PaymentOutcome::Unavailable);
                return Err(ApiError::PaymentsFailed(e.to_string()));
            }
        };
        match verdict {
            Ok(verified) => {
                self.metrics.payment(PaymentOutcome::Verified);
                Ok(Some(Paid {
                    header,
                    charge,
                    verified,
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

    /// Records the payment durably before the work runs; a replay is a 402.
    pub(super) async fn reserve_payment(&self, paid: &Paid) -> Result<(), ApiError> {
        let v = &paid.verified;
        let fresh = self.ledger(|ledger| {
            ledger.reserve(&NewPayment {
                replay_key: &v.replay_key,
                payer: &v.payer,
                amount: &v.amount,
                network: &v.network,
                route: &paid.charge.path,
                at: unix_now(),
            })
        })?;
        if fresh {
            Ok(())
        } else {
            self.metrics.payment(PaymentOutcome::Replayed);
            Err(self
                .payment_required(
                    &paid.charge,
                    REPLAY_REASON,
                    "this payment authorization was already used: sign a new one".into(),
                )
                .await)
        }
    }

    /// Passes `result` through; when it is an error and a payment was reserved for the work,
    /// releases the reservation first. For the steps between reservation and settlement that
    /// fail without a result (the component does not compile or link, no execution slot, an
    /// HTTP agent gave no response): nothing was delivered to be paid for, so the same payment
    /// header may be presented again. A guest that ran and stopped is a result, not an error.
    pub(super) fn or_release<T>(
        &self,
        paid: Option<&Paid>,
        result: Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        if let (Err(_), Some(p)) = (&result, paid) {
            let key = p.verified.replay_key.clone();
            match self.ledger(move |l| l.release(&key)) {
                Ok(_) => tracing::info!("payment reservation released: the work gave no result"),
                // Still `reserved`: refused as a replay, never charged; the operator sees it.
                Err(e) => tracing::warn!(error = %e, "releasing a payment reservation failed"),
            }
        }
        result
    }

    /// Settles a recorded payment after the work ran; the settlement goes back as a header.
    pub(super) async fn settle_payment(&self, paid: &Paid) -> Result<SettlementHeader, ApiError> {
        let payments = self
            .payments
            .as_ref()
            .ok_or(ApiError::PaymentsUnavailable)?;
        let key = paid.verified.replay_key.clone();
        let settled = payments
            .settle(&paid.header, &paid.charge.resource, &paid.charge.price)
            .await
            .map_err(|e| {
                self.metrics.payment(PaymentOutcome::Unavailable);
                ApiError::PaymentsFailed(e.to_string())
            })?;
        let name = match paid.header.version {
            ProtocolVersion::V1 => "X-PAYMENT-RESPONSE",
            ProtocolVersion::V2 => "PAYMENT-RESPONSE",
        };
        match settled {
            Ok(s) if s.success => {
                self.metrics.payment(PaymentOutcome::Settled);
                let tx = s.transaction.clone();
                self.record_outcome("settlement", move |l| l.settled(&key, &tx, unix_now()));
                tracing::info!(payer = %s.payer, transaction = %s.transaction, "payment settled");
                Ok(SettlementHeader {
                    name,
                    value: s.response_header,
                })
            }
            Ok(s) => {
                self.metrics.payment(PaymentOutcome::SettlementFailed);
                let reason = s
                    .error_reason
                    .unwrap_or_else(|| "unexpected_settle_error".into());
                let why = reason.clone();
                self.record_outcome("failed settlement", move |l| {
                    l.settlement_failed(&key, &why, unix_now())
                });
                Err(ApiError::SettlementFailed {
                    reason,
                    header: Box::new(SettlementHeader {
                        name,
                        value: s.response_header,
                    }),
                })
            }
            Err(e) => {
                self.metrics.payment(PaymentOutcome::Unavailable);
                let why = e.reason.clone();
                self.record_outcome("failed settlement", move |l| {
                    l.settlement_failed(&key, &why, unix_now())
                });
                Err(ApiError::PaymentsFailed(format!(
                    "{}: {}",
                    e.reason, e.message
                )))
            }
        }
    }
}

/// Adds the payment reference to a receipt's field.
pub(super) fn receipt_payment(paid: Option<&Paid>) -> Option<String> {
    paid.map(Paid::receipt_field)
}
