//! Payments left unfinished by a run that died (a crash, `kill -9`, a replica gone): each
//! reservation in the ledger names its owner run and carries, sealed, what settling it takes
//! ([`seal_pending`]). Another run adopts them ([`Pipeline::adopt_orphaned_payments`]; at
//! start-up for the previous process's, and periodically for dead replicas'):
//! - `reserved`: the work never gave a result (settlement is marked before it is asked for),
//!   so nothing was delivered: the reservation is released and the payer may present the
//!   payment again. The exception, a risk the operator accepts up to
//!   `payments.settle_after_response_up_to`: a payment settled (or in verify-only mode marked
//!   settled) after its response whose run died between the answer and the mark;
//! - `settling`: the work gave a result and its settlement was being asked for: it is settled
//!   again from the sealed payment. An EIP-3009 authorization moves money at most once, so if
//!   the dead run's settlement did reach the chain, this one fails harmlessly and the ledger
//!   says so.

use serde::{Deserialize, Serialize};

use super::Pipeline;
use crate::clock::{unix_millis, unix_seconds};
use crate::crypto::at_rest::SealingKey;
use crate::error::ApiError;
use crate::plugins::payments::{PaidResource, PaymentHeader, Price, ProtocolVersion};

/// The replay keys of metered (x402 `upto`) payments: Permit2 authorizations
/// (`permit2:<chain>:<from>:<nonce>`, the payments component's).
const METERED_KEY_PREFIX: &str = "permit2:";

/// Sealing purpose of a pending settlement (the replay key follows it).
const PURPOSE: &[u8] = b"wasm-hypervisor/v1/pending-settlement";

/// Adopted at most per pass.
const BATCH: u32 = 64;

/// What settling a payment takes, as sealed in its reservation.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    /// 1 or 2: which header carried the payment.
    version: u8,
    /// The header's value.
    value: String,
    url: String,
    description: String,
    mime_type: String,
    amount: String,
    asset: String,
    network: String,
    pay_to: String,
    eip712_name: String,
    eip712_version: String,
    max_timeout_seconds: u32,
}

fn purpose(replay_key: &str) -> Vec<u8> {
    let mut p = PURPOSE.to_vec();
    p.push(0);
    p.extend_from_slice(replay_key.as_bytes());
    p
}

/// Seals what settling the payment of `replay_key` takes.
///
/// # Errors
/// [`ApiError::Internal`] if sealing fails.
pub(super) fn seal_pending(
    key: &SealingKey,
    replay_key: &str,
    header: &PaymentHeader,
    resource: &PaidResource,
    price: &Price,
) -> Result<Vec<u8>, ApiError> {
    let pending = Pending {
        version: match header.version {
            ProtocolVersion::V1 => 1,
            ProtocolVersion::V2 => 2,
        },
        value: header.value.clone(),
        url: resource.url.clone(),
        description: resource.description.clone(),
        mime_type: resource.mime_type.clone(),
        amount: price.amount.clone(),
        asset: price.asset.clone(),
        network: price.network.clone(),
        pay_to: price.pay_to.clone(),
        eip712_name: price.eip712_name.clone(),
        eip712_version: price.eip712_version.clone(),
        max_timeout_seconds: price.max_timeout_seconds,
    };
    let json = serde_json::to_vec(&pending).map_err(|e| ApiError::Internal(e.to_string()))?;
    key.seal(&purpose(replay_key), &json)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

fn open_pending(
    key: &SealingKey,
    replay_key: &str,
    sealed: &[u8],
) -> Option<(PaymentHeader, PaidResource, Price)> {
    let json = key.open(&purpose(replay_key), sealed).ok()?;
    let p: Pending = serde_json::from_slice(&json).ok()?;
    Some((
        PaymentHeader {
            version: if p.version == 1 {
                ProtocolVersion::V1
            } else {
                ProtocolVersion::V2
            },
            value: p.value,
        },
        PaidResource {
            url: p.url,
            description: p.description,
            mime_type: p.mime_type,
        },
        Price {
            amount: p.amount,
            asset: p.asset,
            network: p.network,
            pay_to: p.pay_to,
            eip712_name: p.eip712_name,
            eip712_version: p.eip712_version,
            max_timeout_seconds: p.max_timeout_seconds,
        },
    ))
}

/// What a pass of [`Pipeline::adopt_orphaned_payments`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Adoption {
    /// Reservations released (their work gave no result).
    pub released: usize,
    /// Settlements finished (settled now, or refused now: already settled, or invalid).
    pub settled: usize,
    /// Settlements that could not be asked for (no payments component, facilitator down):
    /// the payments stay `settling`, adopted by this run, for the next pass.
    pub pending: usize,
}

impl Pipeline {
    /// Adopts the unfinished payments of dead runs (see the [module](self) documentation):
    /// runs silent for `cluster.dead_after_ms`, and on the embedded backend every run but
    /// this one.
    ///
    /// # Errors
    /// [`ApiError::StorageUnavailable`] and other storage errors.
    pub async fn adopt_orphaned_payments(&self) -> Result<Adoption, ApiError> {
        let run = self.identity.run.clone();
        let alive_since = unix_millis().saturating_sub(self.config.cluster.dead_after_ms);
        let adopted = self.ledger.adopt(&run, alive_since, BATCH).await?;
        let mut done = Adoption::default();
        for orphan in adopted {
            let key = orphan.replay_key;
            if orphan.state == "reserved" {
                if self.ledger.release(&key).await? {
                    done.released += 1;
                    tracing::info!(
                        previous_owner = %orphan.previous_owner,
                        "released a payment reservation left by a stopped run (its work gave no result)"
                    );
                }
                continue;
            }
            // A metered (x402 `upto`) payment left `settling`: its charge is in the ledger, but
            // the terms it was offered under (the tariff, part of the requirements a
            // facilitator settles) are not sealed with it. Marked for the operator, who finds on
            // chain whether the stopped run's settlement went through.
            if key.starts_with(METERED_KEY_PREFIX) {
                self.ledger
                    .settlement_failed(&key, "metered_settlement_unknown", unix_seconds())
                    .await?;
                tracing::error!(
                    "a metered payment left settling by a stopped run: its charge is unknown; \
                     marked settlement_failed (check the chain for its Permit2 nonce)"
                );
                done.settled += 1;
                continue;
            }
            let Some((header, resource, price)) = open_pending(&self.sealing, &key, &orphan.sealed)
            else {
                self.ledger
                    .settlement_failed(&key, "unrecoverable_pending_settlement", unix_seconds())
                    .await?;
                tracing::error!(
                    "a payment left settling by a stopped run cannot be opened; marked settlement_failed"
                );
                done.settled += 1;
                continue;
            };
            let Some(payments) = &self.payments else {
                done.pending += 1;
                continue;
            };
            match payments.settle(&header, &resource, &price).await {
                Ok(Ok(s)) if s.success => {
                    self.ledger
                        .settled(&key, &s.transaction, unix_seconds())
                        .await?;
                    tracing::info!(
                        transaction = %s.transaction,
                        "settled a payment left settling by a stopped run"
                    );
                    done.settled += 1;
                }
                Ok(Ok(s)) => {
                    let reason = s
                        .error_reason
                        .unwrap_or_else(|| "unexpected_settle_error".into());
                    self.ledger
                        .settlement_failed(&key, &reason, unix_seconds())
                        .await?;
                    tracing::warn!(%reason, "a payment left settling by a stopped run did not settle (already settled by it?)");
                    done.settled += 1;
                }
                Ok(Err(e)) => {
                    self.ledger
                        .settlement_failed(&key, &e.reason, unix_seconds())
                        .await?;
                    done.settled += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot settle a payment left by a stopped run yet");
                    done.pending += 1;
                }
            }
        }
        Ok(done)
    }
}
