//! `POST /agents/{name}/invoke`: handler and CLI agents, each invocation in a fresh instance.
//!
//! - **Clear** (public agents): the event (handler) or arguments and stdin (CLI) in the JSON
//!   body; the answer in the clear ([`InvokeResponse`]); stderr kept as the agent's log.
//! - **Encrypted**: see [`super::encrypted`].
//!
//! Both enter the pipeline through its one door ([`crate::pipeline`]'s `open` / `Opened`):
//! the program is the agent's stored code, the input its event or stdin. Either way the
//! invocation is recorded (`GET /executions/{id}`) before the answer is sent.

use std::time::Instant;

use bytes::Bytes;
use hypervisor_protocol::agents::{
    AgentKind, HandlerFailure, InvokeRequest, InvokeResponse, RISCV_WORLD,
};
use hypervisor_protocol::state::{STATE_QUOTA_EXCEEDED, StateRefusal};
use hypervisor_protocol::tariff::Meter;
use hypervisor_protocol::wire::{ExitStatus, Limits, Receipt};
use hypervisor_protocol::{EncodedPublicKey, sha256};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::clock::unix_millis;
use crate::engine::{
    Capabilities, CommandInput, HandlerContext, HandlerOutcome, Role, RunLimits, RunOutcome,
    StateAccess,
};
use crate::error::ApiError;
use crate::pipeline::admission::{Admission, Admitted, Subject};
use crate::pipeline::call::{CallFrame, CallLog, RunContext, calls_of};
use crate::pipeline::conclude::RecordOf;
use crate::pipeline::open::{
    AskedLimits, Caller, EncryptedRequest, InputKind, Opened, Program, ProgramSource,
};
use crate::pipeline::route::RouteKind;
use crate::pipeline::seal::{ExecuteOutcome, ReceiptOf, limits_applied};
use crate::pipeline::x402::{Charge, Reservation, Verified};
use crate::pipeline::{Pipeline, resolve_limits};
use crate::plugins::payments::{PaymentHeader, SettlementHeader};
use crate::plugins::policy::ProgramKind;
use crate::storage::agents::AgentRecord;

/// The route template of invocations (policy, payment challenges).
pub(super) const INVOKE: &str = "/agents/{name}/invoke";

/// The invocation route of agent `name`, as receipts, records and challenges name it.
pub(super) fn invoke_route(name: &str) -> String {
    INVOKE.replace("{name}", name)
}

/// A receipt asked for a clear invocation (an A2A task's): the id and route it names.
#[derive(Debug, Clone)]
pub struct ClearReceipt {
    /// Named where a session's receipt names its session (an A2A task's id).
    pub id: Uuid,
    /// The route named (`/agents/{name}/a2a`).
    pub route: String,
}

/// The answer to an invocation.
#[derive(Debug)]
pub enum Invoked {
    /// A clear invocation's answer, with the payment's settlement for a paid agent and the
    /// receipt when one was asked for ([`ClearReceipt`]).
    Clear {
        /// The answer.
        response: Box<InvokeResponse>,
        /// The settlement header.
        settlement: Option<SettlementHeader>,
        /// The signed receipt: its `result_commitment` is the SHA-256 of `response` as JSON
        /// (`serde_json::to_vec`), its `stdin_sha256` that of the input the agent got.
        receipt: Option<Box<Receipt>>,
    },
    /// An encrypted invocation's sealed result (and receipt on a verifiable session).
    Encrypted(Box<ExecuteOutcome>),
}

/// What ran: one of the two kinds' outcomes.
pub(super) enum Ran {
    Handler(HandlerOutcome),
    Cli(RunOutcome),
}

impl Ran {
    /// What the host measured of the run (a metered agent's charge): fuel, whole
    /// milliseconds, and the bytes of its answer (the handler's returned value or error, a
    /// command's stdout).
    pub(super) fn meter(&self) -> Meter {
        let run = self.run();
        let output = match self {
            Self::Handler(h) => match &h.returned {
                Some(Ok(bytes)) => bytes.len(),
                Some(Err(e)) => e.code.len() + e.message.len(),
                None => 0,
            },
            Self::Cli(r) => r.stdout.len(),
        };
        // What the caller gets back includes the run's stderr.
        let output = output.saturating_add(run.stderr.len());
        Meter {
            fuel: run.fuel_consumed.unwrap_or(0),
            ms: u64::try_from(run.duration.as_millis()).unwrap_or(u64::MAX),
            output_bytes: u64::try_from(output).unwrap_or(u64::MAX),
        }
    }

    pub(super) fn run(&self) -> &RunOutcome {
        match self {
            Self::Handler(h) => &h.run,
            Self::Cli(r) => r,
        }
    }

    /// Whether the run succeeded: the handler returned a value, or the command exited 0.
    pub(super) fn succeeded(&self) -> bool {
        match self {
            Self::Handler(h) => matches!(h.returned, Some(Ok(_))),
            Self::Cli(r) => r.status == ExitStatus::Exited && r.exit_code == Some(0),
        }
    }
}

/// The agent's limits, with what the caller asked for taking precedence field by field.
fn merged_limits(agent: &AgentRecord, asked: Option<&Limits>) -> Limits {
    let base = agent.latest.limits;
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
        frame: Option<CallFrame>,
    ) -> Result<Invoked, ApiError> {
        self.invoke_agent_with(name, req, payment, frame, None)
            .await
    }

    /// [`Self::invoke_agent`], with a signed receipt for a clear invocation when `receipt` is
    /// given (by the host's current attested key; the policy sees a verifiable request).
    ///
    /// # Errors
    /// As [`Self::invoke_agent`]; [`ApiError::AttestationUnavailable`] when a receipt is asked
    /// for on a host without an attested key.
    pub async fn invoke_agent_with(
        &self,
        name: &str,
        req: InvokeRequest,
        payment: Option<PaymentHeader>,
        frame: Option<CallFrame>,
        receipt: Option<ClearReceipt>,
    ) -> Result<Invoked, ApiError> {
        self.invoke_inner(name, req, payment, frame, receipt, None)
            .await
    }

    /// A clear invocation of a private agent by its owner, in process: how the environments
    /// adapter (`super::super::environments`) runs the agents it deployed, with the key only it
    /// holds. Otherwise [`Self::invoke_agent`] (limits, policy, record, log).
    ///
    /// # Errors
    /// As [`Self::invoke_agent`]; [`ApiError::NotOwner`] when `owner` does not own `name`.
    pub(crate) async fn invoke_own_agent(
        &self,
        name: &str,
        owner: &EncodedPublicKey,
        req: InvokeRequest,
    ) -> Result<Invoked, ApiError> {
        self.invoke_inner(name, req, None, None, None, Some(owner))
            .await
    }

    async fn invoke_inner(
        &self,
        name: &str,
        req: InvokeRequest,
        payment: Option<PaymentHeader>,
        frame: Option<CallFrame>,
        receipt: Option<ClearReceipt>,
        owner: Option<&EncodedPublicKey>,
    ) -> Result<Invoked, ApiError> {
        let agent = self.find_agent(name)?;
        let by_owner = match owner {
            None => false,
            Some(key) if super::owner::same_key(&key.to_hex(), &agent.owner_key) => true,
            Some(_) => return Err(ApiError::NotOwner(name.to_string())),
        };
        let kind = agent.latest.kind;
        if kind == AgentKind::Http {
            return Err(ApiError::WrongAgentKind(format!(
                "{name} is an HTTP agent: send requests to /agents/{name}/"
            )));
        }
        // Another agent's call: the callee's side of it (owner as granted, callers, time).
        let time_left = frame.as_ref().map(|f| f.admit(&agent)).transpose()?;
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
            AgentKind::Handler => {
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
                if kind == AgentKind::Handler {
                    "send `event` (or `encrypted_event`)"
                } else {
                    "send `args`/`stdin` (or their encrypted forms)"
                }
            )));
        }
        let mut limits = resolve_limits(
            Some(&merged_limits(&agent, req.limits.as_ref())),
            &self.config.limits,
            self.engine.fuel_enabled(),
        )?;
        // A callee never outlives its caller.
        if let Some(left) = time_left {
            limits.time = limits.time.min(left);
        }
        // A paid agent's payment is verified before anything else, as on the paid routes.
        // A client may sign in instead (x402 sign-in-with-x) where the agent's grants say.
        let verified = self
            .verify_or_sign_in(self.agent_charge(&agent)?, payment, frame.is_none())
            .await?;
        // A metered run's limits are the agent's own, not its caller's: a caller's lower fuel,
        // time or memory limit would stop the run short of its meter's end, and a run that
        // does not succeed is not charged (under the default charge rule) while its output is
        // still answered: free work, again and again with the same authorization. It stops
        // at its maximum's worth of fuel (and is charged the maximum then).
        if let Some(v) = verified.as_ref().filter(|v| v.is_metered()) {
            let own = resolve_limits(
                Some(&merged_limits(&agent, None)),
                &self.config.limits,
                self.engine.fuel_enabled(),
            )?;
            limits.fuel = match v.fuel_cap() {
                Some(cap) => own.fuel.map(|fuel| fuel.min(cap)),
                None => own.fuel,
            };
            limits.memory_bytes = own.memory_bytes;
            limits.time = match time_left {
                // (A callee still never outlives its caller.)
                Some(left) => own.time.min(left),
                None => own.time,
            };
        }
        // A metered run ends while its authorization can still be settled.
        if let Some(v) = &verified
            && let Some(within) = self.metered_time(v).await?
        {
            limits.time = limits.time.min(within);
        }
        let input_kind = match kind {
            AgentKind::Handler => InputKind::Event,
            _ => InputKind::Stdin,
        };
        let hash = agent.latest.code_hash;
        if encrypted {
            let public_key = req.public_key.as_deref().ok_or_else(|| {
                ApiError::InvalidRequest("an encrypted invocation needs `public_key`".into())
            })?;
            let input = match input_kind {
                InputKind::Event => req
                    .encrypted_event
                    .as_deref()
                    .map(|e| ("encrypted_event", e)),
                InputKind::Stdin => req
                    .encrypted_stdin
                    .as_deref()
                    .map(|e| ("encrypted_stdin", e)),
            };
            let opened = self.open(
                EncryptedRequest {
                    program: ProgramSource::Stored {
                        hash,
                        size: agent.latest.size,
                    },
                    arguments: req.encrypted_arguments.as_deref().unwrap_or_default(),
                    input,
                    input_kind,
                    public_key,
                    session_id: req.session_id,
                    limits: AskedLimits::Resolved(limits),
                },
                // Verifiable when the session is (see `invoke_encrypted`).
                RouteKind {
                    path: INVOKE,
                    verifiable: false,
                    paid: verified.is_some(),
                },
            )?;
            return self
                .invoke_opened(&agent, kind, opened, verified, frame.as_ref(), None)
                .await;
        }
        // A private agent takes clear requests only from the agents it names as callers.
        if !agent.public && !by_owner && !frame.as_ref().is_some_and(|f| f.named_by(&agent.grants))
        {
            return Err(ApiError::AgentNotPublic(name.to_string()));
        }
        let args = req.args.unwrap_or_default();
        self.check_argument_count(args.len())?;
        // An agent is who its frame says, whatever key its request names.
        let caller = match (&frame, owner, req.public_key.as_deref()) {
            (Some(f), _, _) => Caller::Agent(f.caller_owner),
            (None, Some(owner), _) => Caller::Key(*owner),
            (None, None, Some(k)) => Caller::Key(EncodedPublicKey::from_hex("public_key", k)?),
            (None, None, None) => Caller::Anonymous,
        };
        let input = match input_kind {
            InputKind::Event => req.event.map_or_else(
                || hypervisor_protocol::agents::NO_EVENT.to_vec(),
                |e| String::from(Box::<str>::from(e)).into_bytes(),
            ),
            InputKind::Stdin => req.stdin.unwrap_or_default().into_bytes(),
        };
        let opened = Opened::clear(
            caller,
            Program::Stored {
                hash,
                size: agent.latest.size,
            },
            args,
            crate::crypto::plaintext::bytes(input),
            limits,
        );
        self.invoke_opened(
            &agent,
            kind,
            opened,
            verified,
            frame.as_ref(),
            receipt.as_ref(),
        )
        .await
    }

    /// The charge of a paid agent (`None` for a free one).
    pub(in crate::pipeline) fn agent_charge(
        &self,
        agent: &AgentRecord,
    ) -> Result<Option<Charge>, ApiError> {
        match &agent.price {
            None => Ok(None),
            Some(_) if self.payments.is_none() => Err(ApiError::PaymentsUnavailable),
            // Deployed metered, but this host (as configured now) cannot meter or settle it.
            Some(_)
                if agent.tariff.as_ref().is_some_and(|t| {
                    !self.payments.as_ref().is_some_and(|p| p.serves_metered())
                        || (t.per_million_fuel != "0" && !self.engine.fuel_enabled())
                }) =>
            {
                Err(ApiError::MeteredUnavailable)
            }
            Some(amount) => Ok(Some(
                self.charge_for(
                    &invoke_route(&agent.name),
                    hypervisor_protocol::paid::PaidRoute::Agent { name: &agent.name },
                    match &agent.tariff {
                        None => format!(
                            "one invocation of agent {} on WASM Hypervisor, {}",
                            agent.name,
                            agent.charge.describe()
                        ),
                        Some(tariff) => format!(
                            "one invocation of agent {} on WASM Hypervisor, {}, {}",
                            agent.name,
                            tariff.describe(amount),
                            agent.charge.describe()
                        ),
                    },
                    amount,
                )
                .with_tariff(agent.tariff.as_ref())
                .with_discovery(super::super::x402::bazaar::agent(
                    agent.latest.kind,
                    agent.schemas.as_ref(),
                ))
                .with_sign_in(agent),
            )),
        }
    }

    /// The capabilities of one run of `agent` as `role`: the role's, with the run's
    /// outgoing-request hook from the dispatcher (its grants; none without a dispatcher).
    pub(super) fn agent_capabilities(
        &self,
        role: Role,
        agent: &AgentRecord,
        execution_id: &str,
        frame: Option<&CallFrame>,
        deadline: Instant,
        calls: &CallLog,
    ) -> Capabilities {
        let store = &self.agents;
        let mut capabilities = Capabilities::of(role).with_state(StateAccess {
            store: store.state.clone(),
            config: store.config.clone(),
            agent: agent.name.as_str().into(),
            owner_key: agent.owner_key.as_str().into(),
        });
        if let Some(dispatcher) = self.dispatcher.get() {
            let run = RunContext::of(agent, execution_id, frame, deadline, calls.clone());
            capabilities.egress.hook(dispatcher.hook(run));
        }
        capabilities
    }

    /// Admits an invocation through the door: the policy sees the agent's route and name.
    pub(super) async fn admit_invocation<'p>(
        &'p self,
        agent: &AgentRecord,
        opened: Opened,
        verifiable: bool,
        verified: Option<Verified>,
    ) -> Result<Admitted<'p>, ApiError> {
        let path = invoke_route(&agent.name);
        let subject = Subject {
            route: &path,
            verifiable,
            kind: if agent.latest.world == RISCV_WORLD {
                ProgramKind::RiscvProgram
            } else {
                ProgramKind::WasmComponent
            },
            agent: Some(&agent.name),
        };
        self.admit(opened, subject, verified).await
    }

    /// Runs one invocation in a fresh instance.
    pub(super) async fn run_agent(
        &self,
        agent: &AgentRecord,
        kind: AgentKind,
        opened: &Opened,
        run: &Run,
        frame: Option<&CallFrame>,
    ) -> Result<Ran, ApiError> {
        let (id, limits) = (run.id.as_str(), run.limits);
        let prepared = self.agent_code(&agent.latest).await?;
        let deadline = Instant::now() + limits.time;
        let mut argv = Vec::with_capacity(opened.args.len() + 1);
        argv.push(agent.name.clone());
        argv.extend(opened.args.iter().cloned());
        let handler = kind == AgentKind::Handler;
        let command = CommandInput {
            args: argv,
            // A handler's input is its event, not its stdin.
            stdin: if handler {
                Bytes::new()
            } else {
                opened.input.clone()
            },
            limits,
        };
        Ok(if handler {
            let ctx = HandlerContext {
                execution_id: id.to_string(),
                agent_name: agent.name.clone(),
                agent_version: agent.latest.version,
                // An anonymous client that signed in with its wallet (x402 sign-in-with-x) is
                // that account (CAIP-10); an agent's call is its caller's.
                caller: match opened.caller.key_hash() {
                    hash if hash.is_empty() && frame.is_none() => {
                        crate::pipeline::x402::sign_in::signed_in().unwrap_or_default()
                    }
                    hash => hash,
                },
            };
            let capabilities =
                self.agent_capabilities(Role::HandlerAgent, agent, id, frame, deadline, &run.calls);
            Ran::Handler(
                self.engine
                    .run_handler(&capabilities, &prepared, &opened.input, &ctx, command)
                    .await?,
            )
        } else {
            let capabilities =
                self.agent_capabilities(Role::CliAgent, agent, id, frame, deadline, &run.calls);
            Ran::Cli(
                self.engine
                    .run_command(&capabilities, &prepared, command)
                    .await?,
            )
        })
    }

    /// Runs an opened invocation (clear or encrypted) through admission and a fresh instance,
    /// then answers it the way it came: sealed for the caller's session (see
    /// [`super::encrypted`]) or in the clear.
    pub(super) async fn invoke_opened(
        &self,
        agent: &AgentRecord,
        kind: AgentKind,
        opened: Opened,
        verified: Option<Verified>,
        frame: Option<&CallFrame>,
        receipt: Option<&ClearReceipt>,
    ) -> Result<Invoked, ApiError> {
        // An encrypted invocation is verifiable when its session is; a clear one when a
        // receipt is asked for.
        let verifiable =
            opened.session().is_some_and(|s| s.attested.is_some()) || receipt.is_some();
        let Admitted {
            opened,
            admission: Admission { limits, policy },
            reservation,
        } = self
            .admit_invocation(agent, opened, verifiable, verified)
            .await?;
        let run = Run {
            id: Uuid::now_v7().to_string(),
            started_ms: unix_millis(),
            limits,
            verifiable,
            policy,
            calls: CallLog::default(),
        };
        // A failure without a result drops, and so releases, the reservation; a run that does
        // not succeed releases it too, unless the agent charges every run.
        let ran = self.run_agent(agent, kind, &opened, &run, frame).await?;
        // A metered run stopped by its maximum's worth of fuel used all it was paid for: it is
        // charged whatever the charge rule.
        let capped = reservation.as_ref().is_some_and(|r| {
            r.is_metered()
                && ran.run().status == ExitStatus::FuelExhausted
                && run.limits.fuel.is_some()
                && run.limits.fuel == r.fuel_cap()
        });
        let mut reservation = reservation
            .and_then(|r| r.charged_or_released(capped || agent.charge.charges(ran.succeeded())));
        if let Some(r) = &mut reservation {
            r.meter(ran.meter(), capped);
        }
        if opened.session().is_some() {
            self.answer_encrypted(agent, &opened, &run, &ran, reservation)
                .await
        } else {
            self.answer_clear(agent, &opened, &run, &ran, reservation, receipt)
                .await
        }
    }

    /// The clear answer: the response document, the agent's log, the record, the settlement.
    async fn answer_clear(
        &self,
        agent: &AgentRecord,
        opened: &Opened,
        run: &Run,
        ran: &Ran,
        reservation: Option<Reservation<'_>>,
        asked: Option<&ClearReceipt>,
    ) -> Result<Invoked, ApiError> {
        let response = clear_response(agent, &run.id, ran);
        let commitment = sha256(&serde_json::to_vec(&response).unwrap_or_default());
        let receipt = match asked {
            None => None,
            Some(asked) => {
                let key = self
                    .attestor
                    .current()
                    .ok_or(ApiError::AttestationUnavailable)?;
                let receipt = self.sign_receipt(
                    &key,
                    ReceiptOf {
                        id: asked.id,
                        sequence: 1,
                        route: &asked.route,
                        digests: &opened.digests(),
                        commitment,
                        status: ran.run().status,
                        limits: limits_applied(&run.limits),
                        policy: run.policy.clone(),
                        payment: reservation.as_ref().map(Reservation::receipt_field),
                        calls: calls_of(&run.calls),
                    },
                )?;
                Some(Box::new(receipt))
            }
        };
        let commitment = hex::encode(commitment);
        self.keep_log(&agent.name, &run.id, &ran.run().stderr);
        let record =
            invocation_record(agent, run, opened, Some(commitment), &reservation).of(ran.run());
        let settlement = self.conclude(Some(record), reservation).await?;
        Ok(Invoked::Clear {
            response: Box::new(response),
            settlement,
            receipt,
        })
    }
}

/// One invocation's run: its id, start and the limits it ran with.
pub(super) struct Run {
    /// The execution id.
    pub id: String,
    /// When it started, Unix milliseconds.
    pub started_ms: u64,
    /// The admitted limits.
    pub limits: RunLimits,
    /// Whether a receipt is signed (an encrypted invocation on a verifiable session).
    pub verifiable: bool,
    /// The policy's receipt field (verifiable invocations).
    pub policy: Option<String>,
    /// The calls the run made (its receipt binds them).
    pub calls: CallLog,
}

/// The clear answer to an invocation.
fn clear_response(agent: &AgentRecord, id: &str, ran: &Ran) -> InvokeResponse {
    let run = ran.run();
    let mut response = InvokeResponse {
        execution_id: id.to_string(),
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
        state_error: run.state_refusal.as_ref().map(|message| StateRefusal {
            code: STATE_QUOTA_EXCEEDED.to_string(),
            message: message.clone(),
        }),
    };
    match ran {
        Ran::Handler(h) => match &h.returned {
            Some(Ok(bytes)) => {
                response.ok = true;
                // Kept as the text returned (parsing it into a tree would cost many times its
                // size); what is not JSON becomes a JSON string.
                response.result = match serde_json::from_slice::<&RawValue>(bytes) {
                    Ok(raw) => Some(raw.to_owned()),
                    Err(_) => serde_json::value::to_raw_value(&String::from_utf8_lossy(bytes)).ok(),
                };
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
            response.ok = ran.succeeded();
            response.exit_code = r.exit_code;
            response.stdout = Some(String::from_utf8_lossy(&r.stdout).into_owned());
        }
    }
    response
}

/// What an invocation leaves in the records.
pub(super) fn invocation_record<'a>(
    agent: &'a AgentRecord,
    run: &'a Run,
    opened: &Opened,
    commitment: Option<String>,
    reservation: &Option<Reservation<'_>>,
) -> RecordOf<'a> {
    RecordOf {
        id: &run.id,
        route: invoke_route(&agent.name),
        agent: Some((&agent.name, agent.latest.version)),
        code_hash: opened.program.hash(),
        caller_hash: opened.caller.key_hash(),
        started_ms: run.started_ms,
        commitment,
        payment: reservation.as_ref().map(Reservation::receipt_field),
    }
}
