//! The answers kept for identified payments (x402 `payment-identifier`, `identifier.rs`): an
//! identifier checked against the ledger before its payment is, the answer sealed and kept
//! for retries, opened for one, and forgotten after its time.

use std::sync::Arc;

use super::Charge;
use super::identifier::{
    EXTENSION, KeepSlot, PaymentIdentifier, Reserved, UNANSWERED_GRACE_SECONDS, current_slot,
    decode, encode, judge, of_header, purpose,
};
use crate::clock::unix_seconds;
use crate::config::IdentifierMode;
use crate::error::ApiError;
use crate::pipeline::Pipeline;
use crate::plugins::payments::{PaymentHeader, ProtocolVersion};

impl Pipeline {
    /// The payment identifier of `header` for `charge`, where the request's front keeps answers
    /// and the charge takes identifiers; checked against the ledger before the payment is:
    /// a retry of an answered payment gets its answer (as the error), a conflict its 409.
    pub(super) async fn identify(
        &self,
        charge: &Charge,
        header: &PaymentHeader,
    ) -> Result<Option<(PaymentIdentifier, Arc<KeepSlot>)>, ApiError> {
        let Some(slot) = current_slot() else {
            return Ok(None);
        };
        if charge.identifier == IdentifierMode::Off {
            return Ok(None);
        }
        let Some(found) = of_header(header, &charge.path)? else {
            if charge.identifier == IdentifierMode::Required {
                return Err(ApiError::PaymentIdentifierRequired(
                    if header.version == ProtocolVersion::V2 {
                        format!(
                            "{} requires a payment identifier: add extensions[\"{}\"].info.id to the payment",
                            charge.path, EXTENSION
                        )
                    } else {
                        format!(
                            "{} requires a payment identifier, which an x402 v1 payment (X-PAYMENT) cannot carry: pay with x402 v2 (PAYMENT-SIGNATURE)",
                            charge.path
                        )
                    },
                ));
            }
            return Ok(None);
        };
        if let Some(entry) = self.ledger.identified(&found.id).await? {
            return Err(judge(entry, &found, |key, identifier, sealed| {
                self.open_answer(key, identifier, sealed)
            }));
        }
        Ok(Some((found, slot)))
    }

    /// Forgets the answers kept longer than `payments.payment_identifier.keep_seconds`, and
    /// gives up on the answers of payments no longer `reserved` that none was kept for within
    /// [`UNANSWERED_GRACE_SECONDS`] of their last change (their request ended without one: the
    /// client went away while it settled, the host stopped, keeping it failed): how many.
    ///
    /// # Errors
    /// The ledger's.
    pub async fn forget_kept_answers(&self) -> Result<u64, ApiError> {
        let keep = self.config.payments.payment_identifier.keep_seconds;
        let now = unix_seconds();
        Ok(self
            .ledger
            .forget_answers(
                now.saturating_sub(keep),
                now.saturating_sub(UNANSWERED_GRACE_SECONDS),
            )
            .await?)
    }

    /// Opens an answer kept for the identified payment `replay_key`.
    pub(super) fn open_answer(
        &self,
        replay_key: &str,
        identifier: &PaymentIdentifier,
        sealed: &[u8],
    ) -> Result<crate::error::ReplayedAnswer, ApiError> {
        let bytes = self
            .sealing
            .open(
                &purpose(replay_key, &identifier.id, &identifier.fingerprint),
                sealed,
            )
            .map_err(|e| ApiError::Internal(format!("a kept answer does not open: {e}")))?;
        decode(&bytes)
    }

    /// Keeps `answer`, the answer to the request that reserved the identified payment
    /// `reserved`, for its retries: sealed, unless it is `None` (larger than
    /// `payments.payment_identifier.max_answer_bytes`, streamed, or a server error after the
    /// payment was used): then recorded as not kept.
    ///
    /// # Errors
    /// The ledger's, or sealing's.
    pub async fn keep_answer(
        &self,
        reserved: &Reserved,
        answer: Option<&crate::error::ReplayedAnswer>,
    ) -> Result<(), ApiError> {
        let sealed = match answer {
            Some(answer) => self
                .sealing
                .seal(
                    &purpose(
                        &reserved.replay_key,
                        &reserved.identifier.id,
                        &reserved.identifier.fingerprint,
                    ),
                    &encode(answer),
                )
                .map_err(|e| ApiError::Internal(format!("sealing a kept answer failed: {e}")))?,
            None => Vec::new(),
        };
        self.ledger
            .keep_answer(&reserved.replay_key, &sealed, unix_seconds())
            .await?;
        Ok(())
    }
}
