//! Encrypted invocations: the event (role event) or arguments and stdin (roles argument and
//! stdin) sealed to the caller's session, opened by the pipeline's one door like an
//! execution's fields. The answer is an encrypted result exactly like an execution's, whose
//! commitment binds the agent's code hash as the program digest and the event where stdin is
//! (and, on a verifiable session, a signed receipt naming it). Nothing of an encrypted
//! invocation is logged.

use hypervisor_protocol::wire::{ExecutionResult, ScriptException};

use super::invoke::{Invoked, Ran, Run, invocation_record, invoke_route};
use crate::error::ApiError;
use crate::pipeline::Pipeline;
use crate::pipeline::call::calls_of;
use crate::pipeline::open::Opened;
use crate::pipeline::seal::{SealAs, result_document};
use crate::pipeline::x402::Reservation;
use crate::storage::agents::AgentRecord;

impl Pipeline {
    /// The encrypted answer to an invocation that ran: the result document sealed for the
    /// caller's session (with a signed receipt on a verifiable session), recorded before the
    /// answer whether the guest exited or was stopped, then the settlement.
    pub(super) async fn answer_encrypted(
        &self,
        agent: &AgentRecord,
        opened: &Opened,
        run: &Run,
        ran: &Ran,
        reservation: Option<Reservation<'_>>,
    ) -> Result<Invoked, ApiError> {
        let mut doc = result_document(ran.run(), &run.limits);
        if let Ran::Handler(h) = ran {
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
        // The receipt names the agent's actual route, not the template.
        let route = invoke_route(&agent.name);
        let mut outcome = self.seal(
            opened,
            &doc,
            SealAs {
                route: &route,
                verifiable: run.verifiable,
                policy: run.policy.clone(),
                payment: reservation.as_ref().map(Reservation::receipt_field),
                calls: calls_of(&run.calls),
            },
            run.id.clone(),
        )?;
        let commitment = Some(outcome.result.result_commitment.clone());
        let record = invocation_record(agent, run, opened, commitment, &reservation).of(ran.run());
        outcome.settlement = self.conclude(Some(record), reservation).await?;
        Ok(Invoked::Encrypted(Box::new(outcome.into_result()?)))
    }
}
