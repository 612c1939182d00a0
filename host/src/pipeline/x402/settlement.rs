//! Settling a reserved payment through the payments component, before the response or in a
//! task after it, and recording the outcome in the ledger.

use std::future::Future;
use std::sync::Arc;

use base64::Engine as _;

use crate::clock::unix_seconds;
use crate::error::ApiError;
use crate::metrics::{Metrics, PaymentOutcome};
use crate::pipeline::Pipeline;
use crate::plugins::payments::{
    self as wit, PaidResource, PaymentHeader, Payments, Price, ProtocolVersion, SettlementHeader,
    VerifiedPayment,
};
use crate::storage::StorageError;
use crate::storage::payments::{NewPayment, PaymentLedger};

/// The answer when another replica took a reservation over (this run looked dead to it): that
/// replica decides the payment's fate, and this run's result is not delivered.
pub(super) fn taken_over() -> ApiError {
    ApiError::PaymentsFailed(
        "the payment's reservation was taken over by another replica; retry".into(),
    )
}

/// What settling one payment takes, owned, so that it can also run after the response.
pub(super) struct Settlement {
    pub(super) payments: Arc<Payments>,
    pub(super) ledger: Arc<dyn PaymentLedger>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) header: PaymentHeader,
    pub(super) resource: PaidResource,
    pub(super) price: Price,
    /// A metered payment's tariff (JSON) and the amount to settle.
    pub(super) metered: Option<(String, String)>,
    pub(super) key: String,
    /// The sign-in access this payment buys once settled on chain (x402 sign-in-with-x).
    pub(super) access: Option<super::sign_in::PaidAccess>,
}

/// Whether a settled payment buys the agent's sign-in window (x402 sign-in-with-x): a fixed
/// price does; a metered run only when it was charged the whole maximum, the price the grants
/// name. (Before, a metered run charged one unit opened the whole window: up to a year of
/// free calls.)
fn buys_access(price: &Price, metered: Option<&(String, String)>) -> bool {
    metered.is_none_or(|(_, charged)| *charged == price.amount)
}

impl Settlement {
    /// Asks the component to settle: the successful settlement, or the error to answer with
    /// (a refusal or an unreachable facilitator, recorded in the ledger as `write` says, and
    /// counted).
    async fn ask(&self, write: Write) -> Result<wit::Settlement, ApiError> {
        let settled = match &self.metered {
            None => {
                self.payments
                    .settle(&self.header, &self.resource, &self.price)
                    .await
            }
            Some((tariff, charged)) => {
                self.payments
                    .metered_settle(&self.header, &self.resource, &self.price, tariff, charged)
                    .await
            }
        };
        let settled = settled.map_err(|e| {
            self.metrics.payment(PaymentOutcome::Unavailable);
            ApiError::PaymentsFailed(e.to_string())
        })?;
        let key = self.key.clone();
        match settled {
            Ok(s) if s.success => Ok(s),
            Ok(s) => {
                self.metrics.payment(PaymentOutcome::SettlementFailed);
                let reason = s
                    .error_reason
                    .unwrap_or_else(|| "unexpected_settle_error".into());
                let (ledger, why) = (self.ledger.clone(), reason.clone());
                write
                    .record("failed settlement", async move {
                        ledger.settlement_failed(&key, &why, unix_seconds()).await
                    })
                    .await;
                Err(ApiError::SettlementFailed {
                    reason,
                    header: Box::new(SettlementHeader::new(
                        self.header.version,
                        s.response_header,
                    )),
                })
            }
            Err(e) => {
                self.metrics.payment(PaymentOutcome::Unavailable);
                let (ledger, why) = (self.ledger.clone(), e.reason.clone());
                write
                    .record("failed settlement", async move {
                        ledger.settlement_failed(&key, &why, unix_seconds()).await
                    })
                    .await;
                Err(ApiError::PaymentsFailed(format!(
                    "{}: {}",
                    e.reason, e.message
                )))
            }
        }
    }

    /// Settles a payment marked `settling`, records the outcome as `write` says, and gives the
    /// settlement header or the error to answer with.
    pub(super) async fn run(self, write: Write) -> Result<SettlementHeader, ApiError> {
        let s = self.ask(write).await?;
        self.metrics.payment(PaymentOutcome::Settled);
        let (ledger, key, tx) = (self.ledger.clone(), self.key.clone(), s.transaction.clone());
        write
            .record("settlement", async move {
                ledger.settled(&key, &tx, unix_seconds()).await
            })
            .await;
        tracing::info!(payer = %s.payer, transaction = %s.transaction, "payment settled");
        // Money moved: the payer may come back without paying, as the agent's grants say. (A
        // metered run charged 0 moved nothing: no transaction, no access.)
        if let Some(access) = &self.access
            && !s.transaction.is_empty()
            && buys_access(&self.price, self.metered.as_ref())
        {
            access.record(&s.payer).await;
        }
        Ok(SettlementHeader::new(
            self.header.version,
            s.response_header,
        ))
    }

    /// Settles a verify-only payment recorded after its run
    /// ([`super::Verified::reserve`]): the component gives the settlement header, and the
    /// ledger records `payment` `settled` in one write, durable before the answer. `None`
    /// when its replay key was recorded meanwhile (the same payment presented on another
    /// replica at once, answered there): this run's answer must be withheld.
    pub(super) async fn recorded_after_run(
        self,
        payment: &NewPayment<'_>,
    ) -> Result<Option<SettlementHeader>, ApiError> {
        // Nothing is in the ledger for this payment: a refused settlement marks nothing (the
        // row under its key, if any, is another run's).
        let s = self.ask(Write::Nothing).await?;
        if !self.ledger.record_settled(payment).await? {
            return Ok(None);
        }
        self.metrics.payment(PaymentOutcome::Settled);
        Ok(Some(SettlementHeader::new(
            self.header.version,
            s.response_header,
        )))
    }

    /// Settles in verify-only mode, where nothing leaves the host: the component gives the
    /// settlement header (recorded for later settlement), and the ledger records the payment
    /// `settled` in one write (no `settling` step: there is no outside settlement for a crash
    /// to interrupt). The write is durable before the answer goes out, unless the payment may
    /// be recorded after the response (`after_response`, a permit from
    /// [`Pipeline::deferral`]): then the answer goes out at once and the mark follows (if the
    /// host dies first, the payment is found `reserved` and released: that run goes unpaid).
    /// Counted `settled` once the mark is written.
    pub(super) async fn locally(
        self,
        pipeline: &Pipeline,
        after_response: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<SettlementHeader, ApiError> {
        let s = self.ask(Write::Detached).await?;
        let run = pipeline.identity.run.clone();
        let answer = SettlementHeader::new(self.header.version, s.response_header);
        let Self {
            ledger,
            metrics,
            key,
            ..
        } = self;
        let Some(permit) = after_response else {
            if !ledger.settled_at_once(&key, &run, unix_seconds()).await? {
                return Err(taken_over());
            }
            metrics.payment(PaymentOutcome::Settled);
            return Ok(answer);
        };
        // Detached: the task holds the permit until the mark is committed.
        Write::Detached
            .record("settlement", async move {
                let marked = ledger.settled_at_once(&key, &run, unix_seconds()).await;
                drop(permit);
                if marked? {
                    metrics.payment(PaymentOutcome::Settled);
                } else {
                    // Another replica took the reservation over meanwhile (this run looked
                    // dead to it) and released it: the run was delivered unpaid.
                    tracing::warn!("a payment recorded after its response had been taken over");
                }
                Ok(())
            })
            .await;
        Ok(answer)
    }
}

/// The `PAYMENT-RESPONSE` of a v2 payment settled after the response: x402's
/// SettlementResponse with `success: true` and an empty `transaction` (the payment is recorded
/// and its settlement under way), as verify-only mode answers.
pub(super) fn pending_header(verified: &VerifiedPayment) -> SettlementHeader {
    let body = serde_json::json!({
        "success": true,
        "transaction": "",
        "network": verified.network,
        "payer": verified.payer,
    });
    let value = base64::engine::general_purpose::STANDARD.encode(body.to_string());
    SettlementHeader::new(ProtocolVersion::V2, value)
}

/// How a settlement's outcome reaches the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Write {
    /// In a task of its own, so that nobody waits for its fsync: for a settlement before the
    /// response. The replay key is already durable (see [`Verified::reserve`]), so losing this
    /// update in a crash leaves the payment unfinished (settled again from the ledger), never
    /// reusable.
    ///
    /// [`Verified::reserve`]: super::Verified::reserve
    Detached,
    /// Awaited: for a settlement after the response, whose task holds a
    /// `deferred_settlements_max` permit until the outcome is committed, so that the shutdown
    /// (which waits for every permit) also waits for the outcome.
    Awaited,
    /// Not written: the payment is not in the ledger (recorded after its run, and not yet).
    Nothing,
}

impl Write {
    /// Writes an outcome (`what` names it in the log if the write fails).
    async fn record(
        self,
        what: &'static str,
        write: impl Future<Output = Result<(), StorageError>> + Send + 'static,
    ) {
        let logged = async move {
            if let Err(e) = write.await {
                tracing::error!(error = %e, "recording a payment's {what} failed");
            }
        };
        match self {
            Self::Detached => drop(tokio::spawn(logged)),
            Self::Awaited => logged.await,
            Self::Nothing => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_full_price_buys_the_sign_in_window() {
        let price = Price {
            amount: "1000000".into(),
            asset: String::new(),
            network: String::new(),
            pay_to: String::new(),
            eip712_name: String::new(),
            eip712_version: String::new(),
            max_timeout_seconds: 60,
        };
        assert!(buys_access(&price, None), "a fixed price");
        let metered = |charged: &str| Some(("{}".to_string(), charged.to_string()));
        assert!(
            buys_access(&price, metered("1000000").as_ref()),
            "the whole maximum"
        );
        assert!(
            !buys_access(&price, metered("1").as_ref()),
            "one unit of it"
        );
        assert!(!buys_access(&price, metered("999999").as_ref()));
    }
}
