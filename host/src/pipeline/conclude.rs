//! The last step of every code route: the run's record, then the payment's settlement.
//!
//! [`Pipeline::conclude`] is the only place a reservation is settled, so every front (the
//! execute and Python routes, handler and CLI invocations clear or encrypted, HTTP agents, and
//! whatever front comes next) records and settles the same way: the record first (it must
//! exist before the answer is sent), then the settlement (whose header goes back with the
//! answer). A reservation that never reaches this step is released when dropped.

use hypervisor_protocol::wire::{ExecutionResult, ExitStatus};

use super::Pipeline;
use super::x402::Reservation;
use crate::engine::RunOutcome;
use crate::error::ApiError;
use crate::plugins::payments::SettlementHeader;
use crate::storage::records::ExecutionRecord;

/// What one run leaves in the records, besides its outcome.
pub(super) struct RecordOf<'a> {
    /// The execution's id (`GET /executions/{id}`).
    pub id: &'a str,
    /// The route (template) it ran on.
    pub route: String,
    /// The agent and version, for invocations.
    pub agent: Option<(&'a str, u32)>,
    /// SHA-256 of the code that ran.
    pub code_hash: [u8; 32],
    /// Hex SHA-256 of the caller's key (empty if anonymous).
    pub caller_hash: String,
    /// When it started, Unix milliseconds.
    pub started_ms: u64,
    /// The result's commitment, when there is one.
    pub commitment: Option<String>,
    /// The payment's receipt field, on paid runs.
    pub payment: Option<String>,
}

impl RecordOf<'_> {
    /// The record of `run`.
    pub fn of(self, run: &RunOutcome) -> ExecutionRecord {
        let duration_us = u64::try_from(run.duration.as_micros()).unwrap_or(u64::MAX);
        self.with(run.status, run.exit_code, duration_us)
    }

    /// The record of a run described by its result document.
    pub fn of_document(self, doc: &ExecutionResult) -> ExecutionRecord {
        self.with(doc.status, doc.exit_code, doc.duration_us)
    }

    fn with(self, status: ExitStatus, exit_code: Option<i32>, duration_us: u64) -> ExecutionRecord {
        ExecutionRecord {
            id: self.id.to_string(),
            route: self.route,
            agent: self.agent.map(|(name, _)| name.to_string()),
            agent_version: self.agent.map(|(_, version)| version),
            code_hash: hex::encode(self.code_hash),
            caller_hash: self.caller_hash,
            started_ms: self.started_ms,
            duration_us,
            status: status_name(status),
            exit_code,
            commitment: self.commitment,
            payment: self.payment,
        }
    }
}

impl Pipeline {
    /// Concludes a run: writes its record (awaited: it exists before the answer is sent; an
    /// HTTP agent's follows when its guest finishes, see [`Self::record_later`]), then settles
    /// the reservation of a paid run, returning the settlement's header. (A run that is not to
    /// be charged, such as a paid agent's failure under its default charge rule, drops its
    /// reservation before this step, which releases it.)
    ///
    /// # Errors
    /// [`ApiError::Internal`] if the record cannot be written (the reservation is then
    /// released: no answer goes out), and the settlement's errors.
    pub(super) async fn conclude(
        &self,
        record: Option<ExecutionRecord>,
        reservation: Option<Reservation<'_>>,
    ) -> Result<Option<SettlementHeader>, ApiError> {
        // A paid run's x402 receipt states the run as its record does.
        let receipt = match (&reservation, &record) {
            (Some(r), Some(record)) => Some((r.terms(), record.clone())),
            _ => None,
        };
        if let Some(record) = record {
            self.record(record).await?;
        }
        match reservation {
            Some(r) => {
                let header = r.settle().await?;
                Ok(Some(match receipt {
                    Some((terms, record)) => self.with_receipt(header, &terms, &record),
                    None => header,
                }))
            }
            None => Ok(None),
        }
    }
}

/// The wire name of a status (`exited`, `time_limit_exceeded`, …).
fn status_name(status: ExitStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
