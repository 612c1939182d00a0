//! `POST /agents/{name}/invoke`: handler and CLI agents, each invocation in a fresh instance.
//!
//! - **Clear** (public agents): the event (handler) or arguments and stdin (CLI) in the JSON
//!   body; the answer in the clear ([`InvokeResponse`]); stderr kept as the agent's log.
//! - **Encrypted**: see [`super::sealed`].
//!
//! Either way the invocation is recorded (`GET /executions/{id}`) before the answer is sent.

use bytes::Bytes;
use hypervisor_protocol::agents::{HandlerFailure, InvokeRequest, InvokeResponse};
use hypervisor_protocol::wire::{ExitStatus, Limits};
use hypervisor_protocol::{EncodedPublicKey, sha256};
use uuid::Uuid;

use super::now_ms;
use crate::engine::{
    Capabilities, CommandInput, ComponentKind, HandlerContext, HandlerOutcome, Role, RunLimits,
    RunOutcome,
};
use crate::error::ApiError;
use crate::pipeline::SettlementHeader;
use crate::pipeline::admission::{Admission, Subject};
use crate::pipeline::payment::{Charge, Paid};
use crate::pipeline::request::ExecuteOutcome;
use crate::pipeline::{Pipeline, resolve_limits};
use crate::plugins::payments::PaymentHeader;
use crate::plugins::policy::ProgramKind;
use crate::storage::agents::AgentRecord;
use crate::storage::records::ExecutionRecord;

/// The route bound into invocation receipts and records.
pub(super) const INVOKE: &str = "/agents/{name}/invoke";

/// The answer to an invocation.
#[derive(Debug)]
pub enum Invoked {
    /// A clear invocation's answer, with the payment's settlement for a paid agent.
    Clear {
        /// The answer.
        response: Box<InvokeResponse>,
        /// The settlement header.
        settlement: Option<SettlementHeader>,
    },
    /// An encrypted invocation's sealed result (and receipt on a verifiable session).
    Sealed(Box<ExecuteOutcome>),
}

/// What the guest received, in the clear (after opening, for encrypted invocations).
pub(super) struct Input {
    /// Handler event.
    pub(super) event: Vec<u8>,
    /// CLI arguments (without `argv[0]`).
    pub(super) args: Vec<String>,
    /// CLI stdin.
    pub(super) stdin: Vec<u8>,
}

/// What ran: one of the two kinds' outcomes.
pub(super) enum Ran {
    Handler(HandlerOutcome),
    Cli(RunOutcome),
}

impl Ran {
    pub(super) fn run(&self) -> &RunOutcome {
        match self {
            Self::Handler(h) => &h.run,
            Self::Cli(r) => r,
        }
    }
}

/// The agent's limits, with what the caller asked for taking precedence field by field.
fn merged_limits(agent: &AgentRecord, asked: Option<&Limits>) -> Limits {
    let base: Limits = serde_json::from_str(&agent.latest.limits).unwrap_or_default();
    let asked = asked.copied().unwrap_or_default();
    Limits {
        time_ms: asked.time_ms.or(base.time_ms),
        memory_bytes: asked.memory_bytes.or(base.memory_bytes),
        fuel: asked.fuel.or(base.fuel),
    }
}

impl Pipeline {
    /// Invokes a handler or CLI agent.
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`], [`ApiError::WrongAgentKind`] for an HTTP agent,
    /// [`ApiError::AgentNotPublic`] for a clear invocation of a private agent,
    /// [`ApiError::InvalidRequest`] for fields of the wrong kind or a mix of clear and
    /// encrypted fields, session and envelope errors, limits errors.
    pub async fn invoke_agent(
        &self,
        name: &str,
        req: InvokeRequest,
        payment: Option<PaymentHeader>,
    ) -> Result<Invoked, ApiError> {
        let agent = self.find_agent(name)?;
        let kind = match agent.latest.kind.as_str() {
            "handler" => ComponentKind::Handler,
            "cli" => ComponentKind::Cli,
            _ => {
                return Err(ApiError::WrongAgentKind(format!(
                    "{name} is an HTTP agent: send requests to /agents/{name}/"
                )));
            }
        };
        let encrypted = req.encrypted_event.is_some()
            || req.encrypted_arguments.is_some()
            || req.encrypted_stdin.is_some();
        let clear = req.event.is_some() || req.args.is_some() || req.stdin.is_some();
        if encrypted && clear {
            return Err(ApiError::InvalidRequest(
                "mix of clear and encrypted fields: send one or the other".into(),
            ));
        }
        let wrong = match kind {
            ComponentKind::Handler => {
                req.args.is_some()
                    || req.stdin.is_some()
                    || req.encrypted_arguments.is_some()
                    || req.encrypted_stdin.is_some()
            }
            _ => req.event.is_some() || req.encrypted_event.is_some(),
        };
        if wrong {
            return Err(ApiError::InvalidRequest(format!(
                "{name} is a {} agent: {}",
                kind.as_str(),
                if kind == ComponentKind::Handler {
                    "send `event` (or `encrypted_event`)"
                } else {
                    "send `args`/`stdin` (or their encrypted forms)"
                }
            )));
        }
        let limits = resolve_limits(
            Some(&merged_limits(&agent, req.limits.as_ref())),
            &self.config.limits,
            self.engine.fuel_enabled(),
        )?;
        // A paid agent's payment is verified before anything else, as on the paid routes.
        let paid = self
            .verify_payment(self.agent_charge(&agent)?, payment)
            .await?;
        if encrypted {
            return self.invoke_sealed(&agent, kind, &req, limits, paid).await;
        }
        if !agent.public {
            return Err(ApiError::AgentNotPublic(name.to_string()));
        }
        let args = req.args.as_deref().unwrap_or_default();
        self.check_argument_count(args.len())?;
        let key = req
            .public_key
            .as_deref()
            .map(|k| EncodedPublicKey::from_hex("public_key", k))
            .transpose()?;
        let input = Input {
            event: req
                .event
                .as_ref()
                .map(|e| e.to_string().into_bytes())
                .unwrap_or_else(|| b"null".to_vec()),
            args: args.to_vec(),
            stdin: req.stdin.clone().unwrap_or_default().into_bytes(),
        };
        self.invoke_clear(&agent, kind, input, key, limits, paid)
            .await
    }

    /// The charge of a paid agent (`None` for a free one).
    pub(super) fn agent_charge(&self, agent: &AgentRecord) -> Result<Option<Charge>, ApiError> {
        match &agent.price {
            None => Ok(None),
            Some(_) if self.payments.is_none() => Err(ApiError::PaymentsUnavailable),
            Some(amount) => Ok(Some(
                self.charge(&INVOKE.replace("{name}", &agent.name), amount),
            )),
        }
    }

    /// The policy's decision on an invocation, then the payment's durable record.
    pub(super) async fn admit_invocation(
        &self,
        agent: &AgentRecord,
        key: Option<&EncodedPublicKey>,
        verifiable: bool,
        input: &Input,
        limits: RunLimits,
        paid: Option<&Paid>,
    ) -> Result<Admission, ApiError> {
        let path = INVOKE.replace("{name}", &agent.name);
        let sizes = input.event.len()
            + input.stdin.len()
            + input.args.iter().map(String::len).sum::<usize>();
        let info = self.request_info(Subject {
            route: &path,
            verifiable,
            kind: ProgramKind::WasmComponent,
            program_hash: code_hash(agent)?,
            program_size: agent.latest.size,
            agent: Some(&agent.name),
            caller_key: key.map(EncodedPublicKey::to_hex).unwrap_or_default(),
            argument_count: input.args.len(),
            input_size: u64::try_from(sizes).unwrap_or(u64::MAX),
            limits,
            paid,
        });
        let admission = self.decide(&info, verifiable, limits).await?;
        if let Some(paid) = paid {
            self.reserve_payment(paid).await?;
        }
        Ok(admission)
    }

    /// Runs one invocation in a fresh instance.
    pub(super) async fn run_agent(
        &self,
        agent: &AgentRecord,
        kind: ComponentKind,
        input: &Input,
        id: &str,
        caller: &str,
        limits: RunLimits,
    ) -> Result<Ran, ApiError> {
        let prepared = self.agent_code(&agent.latest).await?;
        let mut argv = Vec::with_capacity(input.args.len() + 1);
        argv.push(agent.name.clone());
        argv.extend(input.args.iter().cloned());
        let command = CommandInput {
            args: argv,
            stdin: Bytes::from(input.stdin.clone()),
            limits,
        };
        Ok(match kind {
            ComponentKind::Handler => {
                let capabilities = Capabilities::of(Role::HandlerAgent);
                let ctx = HandlerContext {
                    execution_id: id.to_string(),
                    agent_name: agent.name.clone(),
                    agent_version: agent.latest.version,
                    caller: caller.to_string(),
                };
                Ran::Handler(
                    self.engine
                        .run_handler(&capabilities, &prepared, &input.event, &ctx, command)
                        .await?,
                )
            }
            _ => {
                let capabilities = Capabilities::of(Role::CliAgent);
                Ran::Cli(
                    self.engine
                        .run_command(&capabilities, &prepared, command)
                        .await?,
                )
            }
        })
    }

    async fn invoke_clear(
        &self,
        agent: &AgentRecord,
        kind: ComponentKind,
        input: Input,
        key: Option<EncodedPublicKey>,
        limits: RunLimits,
        paid: Option<Paid>,
    ) -> Result<Invoked, ApiError> {
        let Admission { limits, .. } = self
            .admit_invocation(agent, key.as_ref(), false, &input, limits, paid.as_ref())
            .await?;
        let caller = key
            .map(|k| hex::encode(sha256(k.as_bytes())))
            .unwrap_or_default();
        let id = Uuid::now_v7().to_string();
        let started = now_ms();
        let ran = self
            .run_agent(agent, kind, &input, &id, &caller, limits)
            .await;
        let ran = self.or_release(paid.as_ref(), ran)?;
        let run = ran.run();
        let mut response = InvokeResponse {
            execution_id: id.clone(),
            agent: agent.name.clone(),
            version: agent.latest.version,
            status: run.status,
            ok: false,
            result: None,
            error: None,
            exit_code: None,
            stdout: None,
            stderr: String::from_utf8_lossy(&run.stderr).into_owned(),
            duration_us: u64::try_from(run.duration.as_micros()).unwrap_or(u64::MAX),
        };
        match &ran {
            Ran::Handler(h) => match &h.returned {
                Some(Ok(bytes)) => {
                    response.ok = true;
                    response.result = Some(serde_json::from_slice(bytes).unwrap_or_else(|_| {
                        serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned())
                    }));
                }
                Some(Err(e)) => {
                    response.error = Some(HandlerFailure {
                        code: e.code.clone(),
                        message: e.message.clone(),
                    });
                }
                None => {}
            },
            Ran::Cli(r) => {
                response.ok = r.status == ExitStatus::Exited && r.exit_code == Some(0);
                response.exit_code = r.exit_code;
                response.stdout = Some(String::from_utf8_lossy(&r.stdout).into_owned());
            }
        }
        let commitment = {
            let doc = serde_json::to_vec(&response).unwrap_or_default();
            hex::encode(sha256(&doc))
        };
        self.keep_log(&agent.name, &id, &run.stderr);
        let payment = paid.as_ref().map(Paid::receipt_field);
        self.record(record(
            agent,
            &id,
            &caller,
            started,
            run,
            Some(commitment),
            payment,
        ))
        .await?;
        let settlement = match &paid {
            Some(p) => Some(self.settle_payment(p).await?),
            None => None,
        };
        Ok(Invoked::Clear {
            response: Box::new(response),
            settlement,
        })
    }
}

pub(super) fn code_hash(agent: &AgentRecord) -> Result<[u8; 32], ApiError> {
    hex::decode(&agent.latest.code_hash)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ApiError::Internal("corrupt code hash in the registry".into()))
}

pub(super) fn record(
    agent: &AgentRecord,
    id: &str,
    caller: &str,
    started_ms: u64,
    run: &RunOutcome,
    commitment: Option<String>,
    payment: Option<String>,
) -> ExecutionRecord {
    ExecutionRecord {
        id: id.to_string(),
        route: INVOKE.replace("{name}", &agent.name),
        agent: Some(agent.name.clone()),
        agent_version: Some(agent.latest.version),
        code_hash: agent.latest.code_hash.clone(),
        caller_hash: caller.to_string(),
        started_ms,
        duration_us: u64::try_from(run.duration.as_micros()).unwrap_or(u64::MAX),
        status: crate::pipeline::execute::status_name(run.status),
        exit_code: run.exit_code,
        commitment,
        payment,
    }
}
