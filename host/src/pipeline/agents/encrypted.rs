//! Encrypted invocations: the event (role event) or arguments and stdin (roles argument and
//! stdin) sealed to the caller's session, opened by the pipeline's one door like an
//! execution's fields. The answer is an encrypted result exactly like an execution's, whose
//! commitment binds the agent's code hash as the program digest and the event where stdin is
//! (and, on a verifiable session, a signed receipt naming it). Nothing of an encrypted
//! invocation is logged.

use hypervisor_protocol::agents::AgentKind;
use hypervisor_protocol::wire::{ExecutionResult, ScriptException};
use uuid::Uuid;

use super::invoke::{INVOKE, Invoked, Ran, invocation_record};
use crate::clock::unix_millis;
use crate::error::ApiError;
use crate::pipeline::Pipeline;
use crate::pipeline::admission::{Admission, Admitted};
use crate::pipeline::open::Opened;
use crate::pipeline::seal::{SealAs, result_document};
use crate::pipeline::x402::{Reservation, Verified};
use crate::storage::agents::AgentRecord;

impl Pipeline {
    /// Runs an opened encrypted invocation and seals its result for the caller's session;
    /// verifiable (a signed receipt) when the session is.
    pub(super) async fn invoke_encrypted(
        &self,
        agent: &AgentRecord,
        kind: AgentKind,
        opened: Opened,
        verified: Option<Verified>,
    ) -> Result<Invoked, ApiError> {
        let verifiable = opened.session().is_some_and(|s| s.attested.is_some());
        let Admitted {
            opened,
            admission: Admission { limits, policy },
            reservation,
        } = self
            .admit_invocation(agent, opened, verifiable, verified)
            .await?;
        let id = Uuid::now_v7().to_string();
        let started = unix_millis();
        // A failure without a result drops, and so releases, the reservation.
        let ran = self.run_agent(agent, kind, &opened, &id, limits).await?;
        let mut doc = result_document(ran.run(), &limits);
        if let Ran::Handler(h) = &ran {
            match &h.returned {
                Some(Ok(bytes)) => doc.stdout = ExecutionResult::encode_output(bytes),
                Some(Err(e)) => {
                    doc.exception = Some(ScriptException {
                        kind: e.code.clone(),
                        message: e.message.clone(),
                        traceback: String::new(),
                    });
                }
                None => {}
            }
        }
        let mut outcome = self.seal(
            &opened,
            &doc,
            SealAs {
                route: INVOKE,
                verifiable,
                policy,
                payment: reservation.as_ref().map(Reservation::receipt_field),
            },
            id.clone(),
        )?;
        // Recorded before the answer, whether the guest exited or was stopped.
        let commitment = Some(outcome.result.result_commitment.clone());
        let record =
            invocation_record(agent, &id, &opened, started, commitment, &reservation).of(ran.run());
        outcome.settlement = self.conclude(Some(record), reservation).await?;
        Ok(Invoked::Encrypted(Box::new(outcome.into_result()?)))
    }
}
