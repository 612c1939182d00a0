//! A2A tasks over the pipeline: each message to an agent becomes a task whose run is one
//! invocation through the pipeline's one door (`Pipeline::invoke_agent`, as
//! `POST /agents/{name}/invoke` in the clear), never a second way to run code.
//!
//! A task is stored ([`TaskStore`]) before it runs and after every change, so it survives a
//! restart (one left running by a stopped host is failed at start-up: the run died with it);
//! except a new task whose sender waits for its end, which on a store that can hold its room
//! under the bounds meanwhile is stored once, with its outcome (PROTOCOL.md §21.3).
//! Runs are spawned, so a client that disconnects does not stop them; streams and blocking
//! sends follow them through a per-task broadcast of [`Event`]s. Only the caller that created
//! a task sees it.

use std::sync::Arc;

use hypervisor_protocol::a2a::model::{
    Artifact, Content, Message, Part, Task, TaskStatus, timestamp,
};
use hypervisor_protocol::a2a::{TaskState, codes, x402 as keys};
use hypervisor_protocol::agents::{AgentKind, InvokeRequest, InvokeResponse};
use hypervisor_protocol::wire::Receipt;
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;
use tokio::sync::broadcast;

use super::Fault;
pub use super::live::Event;
use super::live::{Place, Running, detached};
use super::payment;
use crate::clock::unix_millis;
use crate::error::ApiError;
use crate::pipeline::Pipeline;
use crate::pipeline::agents::invoke::{ClearReceipt, Invoked};
use crate::plugins::payments::PaymentHeader;
use crate::storage::StorageError;
use crate::storage::agents::AgentRecord;
use crate::storage::tasks::{HeldRoom, QuotaExceeded, TaskFilter, TaskRow, TaskStore};

/// Metadata key of the execution that ran a task (on its artifact).
pub const EXECUTION_KEY: &str = "wasm-hypervisor/execution-id";
/// Task metadata key of the run's signed receipt (`docs/PROTOCOL.md` §14, §21).
pub const RECEIPT_KEY: &str = "wasm-hypervisor/receipt";
/// Task metadata key of the invocation's answer document, as JSON text: the receipt's
/// `result_commitment` is its SHA-256.
pub const INVOCATION_KEY: &str = "wasm-hypervisor/invocation";
/// Task metadata key of the agent's input (the event as JSON text, or stdin): the receipt's
/// `stdin_sha256` is its SHA-256.
pub const INPUT_KEY: &str = "wasm-hypervisor/input";

/// A task just sent: its state now, and (when it runs) its events and its run.
pub struct Sent {
    /// The task as stored when the send returned.
    pub task: Task,
    /// Its events from here on, when it runs and its sender follows them.
    pub events: Option<broadcast::Receiver<Event>>,
    /// Its run, when it runs: the task as it ended (`None` when canceled meanwhile).
    pub run: Option<tokio::task::JoinHandle<Option<Task>>>,
}

/// What a task's run is given.
struct Run {
    kind: AgentKind,
    input: InvokeRequest,
    payment: Option<PaymentHeader>,
    /// The room held for a new task stored only with its outcome.
    room: Option<HeldRoom>,
    /// Whether the run first reads its stored state ([`check_first`]).
    check_first: bool,
}

/// Whether a run reads its task's stored state before it starts, in case a cancellation on
/// another replica came between the stored `WORKING` and the start (one on this replica takes
/// the task's place, and the run never starts): for a task stored before its run that
/// another replica can cancel at a cost, a continuation or a paid task. A free new task
/// canceled there runs, its outcome refused (no payment is involved); a new task whose room
/// is held is not stored yet, and no one knows its id.
fn check_first(new: bool, stored_before_run: bool, paid: bool) -> bool {
    stored_before_run && (!new || paid)
}

/// The tasks: stored, and followed while they run.
pub struct Tasks {
    store: TaskStore,
    pipeline: Arc<Pipeline>,
    running: Running,
}

fn quota(e: QuotaExceeded) -> Fault {
    Fault::new(codes::TASK_QUOTA_EXCEEDED, e.to_string())
}

fn storage(e: StorageError) -> Fault {
    tracing::warn!(error = %e, "A2A task storage failed");
    Fault::internal()
}

/// What a message gives a run, per agent kind: a handler's event is the first data part (or
/// the text parts as `{"text": …}`); a CLI agent's stdin is its text parts (or the first data
/// part's JSON).
fn input_of(kind: AgentKind, message: &Message) -> Result<InvokeRequest, Fault> {
    let mut data = None;
    let mut texts = Vec::new();
    for part in &message.parts {
        match &part.content {
            Content::Data(v) => {
                data.get_or_insert(v);
            }
            Content::Text(t) => texts.push(t.as_str()),
            Content::Raw(_) | Content::Url(_) => {
                return Err(Fault::new(
                    codes::CONTENT_TYPE_NOT_SUPPORTED,
                    "file parts (raw bytes or URLs) are not taken: send a data or text part",
                ));
            }
        }
    }
    if data.is_none() && texts.is_empty() {
        return Err(Fault::invalid_params(
            "the message has no data or text part",
        ));
    }
    let text = texts.join("\n");
    let mut request = InvokeRequest::default();
    match kind {
        AgentKind::Handler => {
            let event = match data {
                Some(v) => serde_json::value::to_raw_value(v),
                None => serde_json::value::to_raw_value(&json!({ "text": text })),
            };
            request.event = Some(event.map_err(|e| Fault::invalid_params(e.to_string()))?);
        }
        _ => {
            request.stdin = Some(match data {
                Some(v) if texts.is_empty() => v.to_string(),
                _ => text,
            });
        }
    }
    Ok(request)
}

/// The parts of a successful run's answer: JSON as a data part, anything else as text.
fn result_parts(kind: AgentKind, response: &InvokeResponse) -> Vec<Part> {
    match kind {
        AgentKind::Handler => match response.result_json() {
            Some(Value::String(s)) => vec![Part::text(s)],
            Some(v) => vec![Part::data(v)],
            None => Vec::new(),
        },
        _ => {
            let out = response.stdout.clone().unwrap_or_default();
            match serde_json::from_str::<Value>(&out) {
                Ok(v) if v.is_object() || v.is_array() => vec![Part::data(v)],
                _ => vec![Part::text(out)],
            }
        }
    }
}

/// A new task's id and a context id (used when the client named none), from one read of the
/// system's generator. The task id is a version 7 UUID: its creation time in milliseconds,
/// then 74 random bits. Task ids are capabilities for anonymous callers, and 74 bits from the
/// system's generator are as far out of a guesser's reach as 122 (2^74 ≈ 1.9 × 10^22 tries);
/// ids in time order are written near one another in the table's index of ids, where random
/// ones each dirtied a page of it per task (PERFORMANCE.md). The context id is random (version
/// 4): nothing indexes it.
fn random_ids() -> Result<(String, String), Fault> {
    let mut bytes = [0u8; 26];
    getrandom::fill(&mut bytes).map_err(|_| Fault::internal())?;
    let (time_random, context) = bytes.split_at(10);
    let mut counter = [0u8; 10];
    counter.copy_from_slice(time_random);
    let id = uuid::Builder::from_unix_timestamp_millis(unix_millis(), &counter).into_uuid();
    let mut random = [0u8; 16];
    random.copy_from_slice(context);
    let context = uuid::Builder::from_random_bytes(random).into_uuid();
    Ok((id.to_string(), context.to_string()))
}

/// What a new task whose room is held counts against `a2a.max_task_bytes` until it is
/// stored: the task as it is then (its message included) and 1 KiB for its outcome and seal.
fn held_bytes(task: &Task) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len() as u64;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // (A task in the model always serialises; were it not to, the 1 KiB alone is counted.)
    let _ = serde_json::to_writer(&mut count, task);
    count.0 + 1024
}

fn status(state: TaskState, message: Option<Message>) -> TaskStatus {
    TaskStatus {
        state,
        message,
        timestamp: timestamp(unix_millis()),
    }
}

/// An agent's message on `task`: text, with metadata.
fn say(task: &Task, text: &str, metadata: Option<Map<String, Value>>) -> Message {
    Message::agent(
        task,
        uuid::Uuid::now_v7().to_string(),
        vec![Part::text(text)],
        metadata,
    )
}

/// The task's metadata for a run with a receipt: the receipt, and the two texts whose hashes
/// it signs (the invocation's answer document and the agent's input).
fn receipt_metadata(
    receipt: &Receipt,
    response: &InvokeResponse,
    input: String,
) -> Map<String, Value> {
    let document = serde_json::to_string(response).unwrap_or_default();
    [
        (RECEIPT_KEY.to_string(), json!(receipt)),
        (INVOCATION_KEY.to_string(), json!(document)),
        (INPUT_KEY.to_string(), json!(input)),
    ]
    .into_iter()
    .collect()
}

impl Tasks {
    /// The tasks in `store`, run through `pipeline`.
    pub fn new(store: TaskStore, pipeline: Arc<Pipeline>) -> Self {
        Self {
            running: Running::new(store.clone()),
            store,
            pipeline,
        }
    }

    /// Fails the tasks a stopped host left submitted or working (their runs died with it).
    /// Returns how many.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn recover(&self, alive_since_ms: u64) -> Result<usize, StorageError> {
        let ids = self.store.unfinished(alive_since_ms)?;
        let mut failed = 0;
        for id in ids {
            // A row that cannot be read (tampered with, or stored by a host that read it
            // otherwise) is left as it is and said: it must not stop the start, nor the
            // recovery of the others (found by review).
            let row = match self.store.get(&id) {
                Ok(row) => row,
                Err(e) => {
                    tracing::error!(task = %id, error = %e, "an unfinished A2A task cannot be read: it is left as it is");
                    continue;
                }
            };
            if let Some(mut row) = row {
                let note = say(
                    &row.task,
                    "the host running this task stopped before it finished",
                    None,
                );
                row.task.status = status(TaskState::Failed, Some(note));
                row.updated_ms = unix_millis();
                failed += usize::from(self.store.update(&row)?);
            }
        }
        Ok(failed)
    }

    /// Deletes the tasks whose last change is older than `ttl_seconds` and that will not
    /// change again by themselves (finished, or waiting for a payment). Returns how many.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn reap(&self, ttl_seconds: u64) -> Result<usize, StorageError> {
        let before = unix_millis().saturating_sub(ttl_seconds.saturating_mul(1000));
        self.store.reap(before)
    }

    /// The stored task `id` of `caller`, on `agent` when given: any other is not found.
    fn owned(&self, id: &str, caller: &str, agent: Option<&str>) -> Result<TaskRow, Fault> {
        let not_found = || Fault::new(codes::TASK_NOT_FOUND, format!("no task {id}"));
        let row = self.store.get(id).map_err(storage)?.ok_or_else(not_found)?;
        let mine = bool::from(row.caller.as_bytes().ct_eq(caller.as_bytes()));
        if !mine || agent.is_some_and(|a| a != row.agent) {
            return Err(not_found());
        }
        Ok(row)
    }

    /// `GetTask`.
    ///
    /// # Errors
    /// [`codes::TASK_NOT_FOUND`] for a task that is not the caller's.
    pub fn get(&self, id: &str, caller: &str, agent: Option<&str>) -> Result<Task, Fault> {
        self.owned(id, caller, agent).map(|r| r.task)
    }

    /// `ListTasks`: one page of the caller's tasks, newest change first, and how many match.
    ///
    /// # Errors
    /// Storage failures (internal).
    pub fn list(
        &self,
        filter: &TaskFilter<'_>,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<Task>, u64), Fault> {
        let (rows, total) = self.store.list(filter, offset, limit).map_err(storage)?;
        Ok((rows.into_iter().map(|r| r.task).collect(), total))
    }

    /// `SendMessage`: a new task for `message` (or the paid continuation of one waiting for
    /// its payment), stored (or, waited for, its room held) and started unless it waits for a
    /// payment; with its events when `follow` (a stream). `blocking`: its sender waits for its
    /// end.
    ///
    /// # Errors
    /// A2A errors: an unknown task, a message to a finished or running task, a message with
    /// nothing to run; [`codes::TASK_QUOTA_EXCEEDED`] for a new task past a bound on stored
    /// tasks.
    pub async fn send(
        self: &Arc<Self>,
        agent: &AgentRecord,
        caller: &str,
        mut message: Message,
        follow: bool,
        blocking: bool,
    ) -> Result<Sent, Fault> {
        let now = unix_millis();
        let kind = agent.latest.kind;
        // The run's input, when it is this message's (a new task's, read before the task
        // exists: a message with nothing to run is an error).
        let (mut row, new, input) = match message.task_id.clone() {
            Some(id) => {
                let row = self.owned(&id, caller, Some(&agent.name))?;
                let state = row.task.status.state;
                if state.is_terminal() {
                    return Err(Fault::new(
                        codes::UNSUPPORTED_OPERATION,
                        format!(
                            "task {id} is {}: send a new message without taskId",
                            state.v03_name()
                        ),
                    ));
                }
                if state != TaskState::InputRequired || row.pending.is_none() {
                    return Err(Fault::new(
                        codes::UNSUPPORTED_OPERATION,
                        format!("task {id} is {}: it takes no message now", state.v03_name()),
                    ));
                }
                message.context_id = Some(row.task.context_id.clone());
                (row, false, None)
            }
            None => {
                let (id, fresh_context) = random_ids()?;
                let context_id = message.context_id.clone().unwrap_or(fresh_context);
                message.task_id = Some(id.clone());
                message.context_id = Some(context_id.clone());
                // (The bounds on stored tasks hold below, in the step that inserts the task or
                // holds its room.)
                let input = input_of(kind, &message)?;
                let task = Task {
                    id,
                    context_id,
                    status: status(TaskState::Submitted, None),
                    artifacts: Vec::new(),
                    history: Vec::new(),
                    metadata: None,
                };
                let row = TaskRow {
                    task,
                    agent: agent.name.clone(),
                    caller: caller.to_string(),
                    pending: None,
                    created_ms: now,
                    updated_ms: now,
                };
                // Stored once its first state is known (below): one write, not two.
                (row, true, Some(input))
            }
        };
        message.task_id = Some(row.task.id.clone());
        let submitted = payment::submitted(&message);
        // What runs: the message waiting for its payment, or this one.
        let waiting = row.pending.take();
        let input = match (input, &waiting) {
            (_, Some(work)) => input_of(kind, work)?,
            (Some(input), None) => input,
            (None, None) => input_of(kind, &message)?,
        };
        let payment = match submitted {
            payment::Submitted::Payload(header) => Some(header),
            payment::Submitted::Declined => {
                row.task.history.push(message);
                let meta = payment::status_only(keys::STATUS_REJECTED);
                let note = say(&row.task, "the client declined the payment", Some(meta));
                row.task.status = status(TaskState::Canceled, Some(note));
                self.persist(&mut row, new).await?;
                return Ok(Sent::idle(row.task));
            }
            payment::Submitted::Nothing => None,
        };
        if agent.price.is_some() && payment.is_none() {
            // A priced agent: ask for the payment; the message waits for it. A new task over a
            // bound on stored tasks is refused before its price is asked for (and again, in
            // the database, when it is inserted).
            let work = waiting.unwrap_or_else(|| message.clone());
            row.task.history.push(message);
            if new {
                let adding = serde_json::to_vec(&work).map_or(0, |m| m.len() as u64);
                self.store
                    .admit(caller, &agent.name, adding)
                    .map_err(storage)?
                    .map_err(quota)?;
            }
            // (Boxed: the probe's invocation is large, and only this rare path holds it.)
            let required = Box::pin(self.requirements(agent, &input)).await?;
            let meta = payment::required(required);
            let note = say(&row.task, "Payment is required.", Some(meta));
            row.task.status = status(TaskState::InputRequired, Some(note));
            row.pending = Some(work);
            self.persist(&mut row, new).await?;
            return Ok(Sent::idle(row.task));
        }
        row.task.history.push(message);
        row.task.status = status(TaskState::Working, None);
        // A new task whose sender waits for its end, and learns its id only then, is stored
        // once, with its outcome, where the store can hold its room meanwhile (the embedded
        // database); any other is stored before it runs. Either way the bounds on stored
        // tasks hold before anything runs (in the step that holds the room, or inserts), so
        // nothing runs for a task that could not be stored, and no outcome is refused storage.
        let room = match new && blocking && !follow {
            true => self
                .store
                .hold(caller, &agent.name, held_bytes(&row.task))
                .map_err(storage)?
                .transpose()
                .map_err(quota)?,
            false => None,
        };
        let unlisted = room.is_some();
        let check_first = check_first(new, !unlisted, payment.is_some());
        let run = Run {
            kind,
            input,
            payment,
            room,
            check_first,
        };
        if unlisted {
            let id = row.task.id.clone();
            return self.start(row, Place::Unlisted(id), run, follow);
        }
        // Any other takes its place among the running tasks first, so that a cancellation
        // after its stored `WORKING` finds it (and the run does not start).
        let reserved = self.running.reserve(&row.task.id).ok_or_else(|| {
            Fault::new(
                codes::UNSUPPORTED_OPERATION,
                format!("task {} is starting already", row.task.id),
            )
        })?;
        // Stored, then started, whether or not its sender is still there: a request dropped
        // while its task is being stored (the client went away) would otherwise leave the task
        // stored `WORKING` with no run.
        let this = self.clone();
        detached(async move {
            this.persist(&mut row, new).await?;
            this.start(row, Place::Reserved(reserved), run, follow)
        })
        .await
        .unwrap_or_else(|| Err(Fault::internal()))
    }

    /// The payment requirements of a priced agent: what its invocation without payment
    /// answers (nothing runs: the pipeline checks the payment first).
    async fn requirements(
        &self,
        agent: &AgentRecord,
        input: &InvokeRequest,
    ) -> Result<Value, Fault> {
        let probe = InvokeRequest {
            event: input.event.clone(),
            stdin: input.stdin.clone(),
            ..InvokeRequest::default()
        };
        match self
            .pipeline
            .invoke_agent(&agent.name, probe, None, None)
            .await
        {
            Err(ApiError::PaymentRequired { challenge, .. }) => {
                crate::http::x402_meta::requirements(&challenge).ok_or_else(Fault::internal)
            }
            Err(e) => Err(Fault::from_api(&e)),
            // A price set and a run that needed no payment: the price was removed meanwhile.
            Ok(_) => Err(Fault::new(
                codes::UNSUPPORTED_OPERATION,
                "the agent's price changed: send the message again",
            )),
        }
    }

    /// Stores a task being sent: a new one is inserted; a waiting one is updated only if it
    /// is still waiting (not canceled, not taken by another message carrying a payment):
    /// otherwise an error, and its work must not run.
    async fn persist(&self, row: &mut TaskRow, new: bool) -> Result<(), Fault> {
        row.updated_ms = unix_millis();
        if new {
            return self
                .store
                .create(row)
                .await
                .map_err(storage)?
                .map_err(quota);
        }
        if self
            .store
            .change(row, Some(TaskState::InputRequired))
            .await
            .map_err(storage)?
        {
            Ok(())
        } else {
            Err(Fault::new(
                codes::UNSUPPORTED_OPERATION,
                format!("task {} changed meanwhile: read it again", row.task.id),
            ))
        }
    }

    /// Spawns the run of a working task in `place`; a task canceled before its run started
    /// answers as stored.
    fn start(
        self: &Arc<Self>,
        row: TaskRow,
        place: Place,
        run: Run,
        follow: bool,
    ) -> Result<Sent, Fault> {
        let (id, task) = (row.task.id.clone(), row.task.clone());
        let this = self.clone();
        match self
            .running
            .start(place, follow, async move { this.run(row, run).await })
        {
            Some((events, run)) => Ok(Sent {
                task,
                events,
                run: Some(run),
            }),
            None => Ok(Sent::idle(self.current(&id)?)),
        }
    }

    /// One run: the invocation, then the task's final state, artifact and payment outcome,
    /// stored (inserted when the task was not stored yet). Returns the task as it ended.
    async fn run(self: Arc<Self>, mut row: TaskRow, run: Run) -> Option<Task> {
        let Run {
            kind,
            input,
            payment,
            room,
            check_first,
        } = run;
        let id = row.task.id.clone();
        if check_first && !self.running.may_run(&row).await {
            return None;
        }
        self.running.emit(&id, || Event::Status {
            status: row.task.status.clone(),
            last: false,
        });
        let paid = payment.is_some();
        // A receipt when the host has an attested key: it names the task and its route.
        let receipt = self
            .pipeline
            .attestor()
            .current()
            .and_then(|_| uuid::Uuid::parse_str(&id).ok())
            .map(|task| ClearReceipt {
                id: task,
                route: format!("/agents/{}/a2a", row.agent),
            });
        // The input its receipt signs the hash of (kept only when there is one).
        let input_text = receipt
            .as_ref()
            .map(|_| match (&input.event, &input.stdin) {
                (Some(event), _) => event.get().to_string(),
                (None, Some(stdin)) => stdin.clone(),
                (None, None) => String::new(),
            });
        let outcome = self
            .pipeline
            .invoke_agent_with(&row.agent, input, payment, None, receipt)
            .await;
        let (state, note, artifact) = match outcome {
            Ok(Invoked::Clear {
                response,
                settlement,
                receipt,
            }) => {
                if let Some(receipt) = receipt {
                    let input = input_text.unwrap_or_default();
                    row.task.metadata = Some(receipt_metadata(&receipt, &response, input));
                }
                let mut meta = settlement.as_ref().map(payment::completed);
                let ok = response.ok;
                let artifact = ok.then(|| Artifact {
                    artifact_id: uuid::Uuid::now_v7().to_string(),
                    name: Some("result".into()),
                    description: None,
                    parts: result_parts(kind, &response),
                    metadata: Some(
                        [(EXECUTION_KEY.to_string(), json!(response.execution_id))]
                            .into_iter()
                            .collect(),
                    ),
                });
                let text = if ok {
                    "done".to_string()
                } else {
                    match &response.error {
                        Some(f) => format!("{}: {}", f.code, f.message),
                        None if kind == AgentKind::Handler => {
                            format!("the agent stopped: {:?}", response.status)
                        }
                        None => format!(
                            "the command exited with {:?} ({:?}): {}",
                            response.exit_code,
                            response.status,
                            response.stderr.trim()
                        ),
                    }
                };
                if let Some(m) = meta.as_mut() {
                    m.insert(EXECUTION_KEY.into(), json!(response.execution_id));
                }
                let state = if ok {
                    TaskState::Completed
                } else {
                    TaskState::Failed
                };
                (state, say(&row.task, &text, meta), artifact)
            }
            Ok(Invoked::Encrypted(_)) => (
                TaskState::Failed,
                say(&row.task, "the host answered an encrypted result", None),
                None,
            ),
            Err(e) => {
                let meta = paid.then(|| payment::failed(&e)).flatten();
                // (Stored and shown to the client: the host's own failures without detail.)
                let text = format!("{}: {}", e.error_code().as_str(), e.client_message());
                (TaskState::Failed, say(&row.task, &text, meta), None)
            }
        };
        let produced = artifact.is_some();
        row.task.artifacts.extend(artifact);
        row.task.status = status(state, Some(note));
        self.running.conclude(row, produced, room).await
    }

    /// `CancelTask`: a task not yet finished is canceled (its run, if any, stopped).
    ///
    /// # Errors
    /// [`codes::TASK_NOT_FOUND`], [`codes::TASK_NOT_CANCELABLE`] for a finished task.
    pub async fn cancel(&self, id: &str, caller: &str, agent: Option<&str>) -> Result<Task, Fault> {
        let mut row = self.owned(id, caller, agent)?;
        let state = row.task.status.state;
        let refuse = || {
            Fault::new(
                codes::TASK_NOT_CANCELABLE,
                format!("task {id} is {}", state.v03_name()),
            )
        };
        if state.is_terminal() {
            return Err(refuse());
        }
        let note = say(&row.task, "canceled by the client", None);
        row.task.status = status(TaskState::Canceled, Some(note));
        row.pending = None;
        if !self.running.cancel(&mut row).await.map_err(storage)? {
            // Finished meanwhile.
            return Err(refuse());
        }
        Ok(row.task)
    }

    /// `SubscribeToTask`: the task now and its events until it ends.
    ///
    /// # Errors
    /// [`codes::TASK_NOT_FOUND`]; [`codes::UNSUPPORTED_OPERATION`] for a task that is not
    /// running (finished, or waiting for the client).
    pub fn subscribe(
        &self,
        id: &str,
        caller: &str,
        agent: Option<&str>,
    ) -> Result<(Task, broadcast::Receiver<Event>), Fault> {
        // Subscribed before reading, so no change falls between the two.
        let receiver = self.running.subscribe(id);
        let task = self.get(id, caller, agent)?;
        match receiver {
            Some(r) if !task.status.state.is_terminal() => Ok((task, r)),
            _ => Err(Fault::new(
                codes::UNSUPPORTED_OPERATION,
                format!(
                    "task {id} is {}: there is nothing to follow",
                    task.status.state.v03_name()
                ),
            )),
        }
    }

    /// The stored task (after a run, for a blocking send).
    ///
    /// # Errors
    /// Storage failures (internal).
    pub fn current(&self, id: &str) -> Result<Task, Fault> {
        self.store
            .get(id)
            .map_err(storage)?
            .map(|r| r.task)
            .ok_or_else(Fault::internal)
    }
}

impl Sent {
    fn idle(task: Task) -> Self {
        Self {
            task,
            events: None,
            run: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(parts: Vec<Part>) -> Message {
        Message {
            message_id: "m".into(),
            context_id: None,
            task_id: None,
            role: hypervisor_protocol::a2a::model::Role::User,
            parts,
            metadata: None,
            extensions: Vec::new(),
            reference_task_ids: Vec::new(),
        }
    }

    /// A task id is a version 7 UUID of now, 74 of its bits random; the context id a
    /// random one.
    #[test]
    fn a_task_id_is_a_time_ordered_uuid_with_74_random_bits() {
        let before = unix_millis();
        let (a, context) = random_ids().unwrap();
        let (b, _) = random_ids().unwrap();
        let (a, b) = (
            uuid::Uuid::parse_str(&a).unwrap(),
            uuid::Uuid::parse_str(&b).unwrap(),
        );
        assert_eq!(a.get_version_num(), 7);
        assert_eq!(
            uuid::Uuid::parse_str(&context).unwrap().get_version_num(),
            4
        );
        let (secs, nanos) = a.get_timestamp().unwrap().to_unix();
        let ms = secs * 1000 + u64::from(nanos) / 1_000_000;
        assert!((before..=unix_millis()).contains(&ms), "{ms} is not now");
        // Same millisecond or not, the random tails differ.
        assert_ne!(a.as_bytes()[6..], b.as_bytes()[6..]);
    }

    #[test]
    fn a_handler_takes_the_data_part_or_the_text_as_its_event() {
        let m = message(vec![Part::text("hi"), Part::data(json!({"a": 1}))]);
        let req = input_of(AgentKind::Handler, &m).unwrap();
        assert_eq!(req.event.unwrap().get(), r#"{"a":1}"#);
        let m = message(vec![Part::text("a"), Part::text("b")]);
        let req = input_of(AgentKind::Handler, &m).unwrap();
        assert_eq!(req.event.unwrap().get(), r#"{"text":"a\nb"}"#);
    }

    #[test]
    fn a_cli_agent_takes_the_text_as_stdin() {
        let m = message(vec![Part::text("line")]);
        assert_eq!(
            input_of(AgentKind::Cli, &m).unwrap().stdin.as_deref(),
            Some("line")
        );
        let m = message(vec![Part::data(json!([1]))]);
        assert_eq!(
            input_of(AgentKind::Cli, &m).unwrap().stdin.as_deref(),
            Some("[1]")
        );
    }

    /// Continuations and paid new tasks stored before their run check first; a free new
    /// task, and one whose room is held (not stored yet), do not.
    #[test]
    fn which_runs_check_their_task_first() {
        // (new, stored before the run, paid) → checks
        for (new, stored, paid, checks) in [
            (false, true, false, true),
            (false, true, true, true),
            (true, true, true, true),
            (true, true, false, false),
            (true, false, true, false),
            (true, false, false, false),
        ] {
            assert_eq!(
                check_first(new, stored, paid),
                checks,
                "new {new}, stored {stored}, paid {paid}"
            );
        }
    }

    #[test]
    fn files_and_empty_messages_are_refused() {
        let file = Part {
            content: Content::Url("https://x".into()),
            media_type: None,
            filename: None,
            metadata: None,
        };
        let e = input_of(AgentKind::Handler, &message(vec![file])).unwrap_err();
        assert_eq!(e.code, codes::CONTENT_TYPE_NOT_SUPPORTED);
        assert!(input_of(AgentKind::Handler, &message(Vec::new())).is_err());
    }
}
