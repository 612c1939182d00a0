//! Sealed invocations: the event (role event) or arguments and stdin sealed to the caller's
//! session; the answer is an encrypted result exactly like an execution's, whose commitment
//! binds the agent's code hash as the program digest (and, on a verifiable session, a signed
//! receipt naming it). Nothing of a sealed invocation is logged.

use std::sync::Arc;

use bytes::Bytes;
use hypervisor_protocol::agents::InvokeRequest;
use hypervisor_protocol::wire::{ScriptException, decode_hex};
use hypervisor_protocol::{EncodedPublicKey, Envelope, InputDigests, Role, sha256};
use uuid::Uuid;

use super::invoke::{INVOKE, Input, Invoked, Ran, code_hash, record};
use super::now_ms;
use crate::engine::{ComponentKind, RunLimits};
use crate::error::ApiError;
use crate::pipeline::Pipeline;
use crate::pipeline::admission::Admission;
use crate::pipeline::execute::result_document;
use crate::pipeline::payment::Paid;
use crate::pipeline::request::{Opened, RouteKind};
use crate::storage::agents::AgentRecord;

impl Pipeline {
    pub(super) async fn invoke_sealed(
        &self,
        agent: &AgentRecord,
        kind: ComponentKind,
        req: &InvokeRequest,
        limits: RunLimits,
        paid: Option<Paid>,
    ) -> Result<Invoked, ApiError> {
        let key = req.public_key.as_deref().ok_or_else(|| {
            ApiError::InvalidRequest("an encrypted invocation needs `public_key`".into())
        })?;
        let client_key = EncodedPublicKey::from_hex("public_key", key)?;
        let session = self.sessions.lookup(req.session_id, &client_key)?;
        let envelope = Envelope::new(&session.key, session.id);
        let stdin_field = match kind {
            ComponentKind::Handler => req
                .encrypted_event
                .as_deref()
                .map(|e| ("encrypted_event", e)),
            _ => req
                .encrypted_stdin
                .as_deref()
                .map(|e| ("encrypted_stdin", e)),
        };
        // A handler's event has its own role: a CLI invocation's stdin (or an execution's)
        // does not open as an event, nor an event as stdin.
        let stdin_role = match kind {
            ComponentKind::Handler => Role::Event,
            _ => Role::Stdin,
        };
        let stdin = match stdin_field {
            Some((field, hexed)) => envelope.open(stdin_role, &decode_hex(field, hexed)?)?,
            None => Vec::new(),
        };
        let sealed_args = req.encrypted_arguments.clone().unwrap_or_default();
        self.check_argument_count(sealed_args.len())?;
        let mut raw_args = Vec::with_capacity(sealed_args.len());
        for (i, a) in sealed_args.iter().enumerate() {
            let index = u32::try_from(i)
                .map_err(|_| ApiError::InvalidRequest("too many arguments".into()))?;
            let ct = decode_hex(&format!("encrypted_arguments[{i}]"), a)?;
            raw_args.push(envelope.open(Role::Argument(index), &ct)?);
        }
        let digests = InputDigests {
            program: code_hash(agent)?,
            arguments: raw_args.iter().map(|a| sha256(a)).collect(),
            stdin: sha256(&stdin),
        };
        let args = raw_args
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                String::from_utf8(a).map_err(|_| {
                    ApiError::InvalidArgument(format!("argument {i} is not valid UTF-8"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let caller = hex::encode(sha256(client_key.as_bytes()));
        let input = Input {
            event: stdin.clone(),
            args: args.clone(),
            stdin: if kind == ComponentKind::Handler {
                Vec::new()
            } else {
                stdin.clone()
            },
        };
        let verifiable = session.attested.is_some();
        let Admission { limits, policy } = self
            .admit_invocation(
                agent,
                Some(&client_key),
                verifiable,
                &input,
                limits,
                paid.as_ref(),
            )
            .await?;
        let id = Uuid::now_v7().to_string();
        let started = now_ms();
        let ran = self
            .run_agent(agent, kind, &input, &id, &caller, limits)
            .await;
        let ran = self.or_release(paid.as_ref(), ran)?;
        let mut doc = result_document(ran.run(), &limits);
        if let Ran::Handler(h) = &ran {
            match &h.returned {
                Some(Ok(bytes)) => {
                    doc.stdout = hypervisor_protocol::wire::ExecutionResult::encode_output(bytes);
                }
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
        let route = RouteKind {
            path: INVOKE,
            verifiable,
            paid: paid.is_some(),
        };
        let opened = Opened {
            session,
            client_key,
            program: Arc::new(Vec::new()),
            args,
            stdin: Bytes::from(stdin),
            digests,
            limits,
        };
        let payment = paid.as_ref().map(Paid::receipt_field);
        let mut outcome = self.seal(&opened, route, &doc, policy, payment.clone())?;
        outcome.execution_id = id.clone();
        // Recorded before the answer, whether the guest exited or was stopped.
        self.record(record(
            agent,
            &id,
            &caller,
            started,
            ran.run(),
            Some(outcome.result.result_commitment.clone()),
            payment,
        ))
        .await?;
        if let Some(p) = &paid {
            outcome.settlement = Some(self.settle_payment(p).await?);
        }
        Ok(Invoked::Sealed(Box::new(outcome.into_result()?)))
    }
}
