//! A2A at `POST /agents/{name}/a2a` (one agent) and `POST /a2a` (any agent, named by the
//! message's `metadata.skill`), with the cards at `/.well-known/agent-card.json` and
//! `/agents/{name}/.well-known/agent-card.json` ([`card`]); `docs/PROTOCOL.md` §21.
//!
//! One JSON-RPC endpoint serves A2A 1.0 and 0.3, chosen by the `A2A-Version` header (or query
//! parameter; absent means 0.3), each answered in its own version's shapes
//! (`hypervisor_protocol::a2a`). Messages become tasks run through the pipeline ([`tasks`]);
//! priced agents are paid with the x402 extension ([`payment`]). As in the reference server,
//! every JSON-RPC answer is HTTP 200 (a body that cannot be read keeps its HTTP status);
//! streams are SSE, one JSON-RPC response per event.
//!
//! Callers: a request with `Authorization: Bearer <secret>` acts as SHA-256(secret); one
//! without is anonymous. A task is visible only to the caller that created it; anonymous tasks
//! are reachable by their (random) id alone and never listed.

pub mod card;
mod live;
mod payment;
pub mod tasks;

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method as HttpMethod, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use hypervisor_protocol::a2a::model::{Message, Shape, Task, Wire, message_into_v1, to_v03};
use hypervisor_protocol::a2a::{
    EXTENSIONS_HEADER, LEGACY_EXTENSIONS_HEADER, Method, TaskState, VERSION_HEADER, Version,
    X402_EXTENSION, X402_EXTENSION_LEGACY, codes,
};
use hypervisor_protocol::agents::AgentKind;
use hypervisor_protocol::jsonrpc::{
    self, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, Id, Incoming, METHOD_NOT_FOUND, RpcError,
};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use self::tasks::{Event, Tasks};
use super::AppState;
use super::extract::PathParams;
use super::routes::agents::{payment_of, serve_http_agent};
use crate::error::ApiError;
use crate::storage::agents::AgentRecord;
use crate::storage::tasks::TaskFilter;

/// The largest page of `ListTasks`, and the page size when none is asked for.
const MAX_PAGE: u32 = 100;
const DEFAULT_PAGE: u32 = 50;

/// An A2A or JSON-RPC error, before it knows the request's id.
#[derive(Debug)]
pub struct Fault {
    /// The JSON-RPC code.
    pub code: i64,
    /// The message.
    pub message: String,
}

impl Fault {
    /// A fault with `code`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Bad parameters.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    /// The host failed (details in its log only).
    pub fn internal() -> Self {
        Self::new(INTERNAL_ERROR, "the host failed; see its log")
    }

    /// A pipeline error: the client's (4xx) as bad parameters with the stable code, the host's
    /// as an internal error.
    pub fn from_api(e: &ApiError) -> Self {
        let (status, code) = e.status_and_code();
        if status.is_server_error() {
            tracing::warn!(error = %e, "A2A request failed");
            return Self::new(
                INTERNAL_ERROR,
                format!("the host failed: {}", code.as_str()),
            );
        }
        Self::invalid_params(format!("{}: {e}", code.as_str()))
    }

    fn answer(self, id: Option<Id>) -> RpcError {
        RpcError::new(id, self.code, self.message)
    }
}

/// One request's context.
struct Call<'a> {
    state: &'a AppState,
    tasks: &'a Arc<Tasks>,
    version: Version,
    id: Id,
    caller: String,
    /// The endpoint's agent (`None` at `/a2a`).
    agent: Option<AgentRecord>,
    /// Whether the client activated the x402 extension.
    x402: bool,
}

/// `GET /.well-known/agent-card.json`.
pub async fn host_card(State(state): State<AppState>) -> Result<Response, ApiError> {
    let agents = state.pipeline.all_agents()?;
    let card = card::host_card(&state.pipeline, &agents)?;
    Ok(Json(card).into_response())
}

/// The skill `name`, for a request to its A2A path `rest` that must use `method`; or, for an
/// HTTP agent, the agent's own answer at that path (`Err`'s `Ok`).
async fn skill(
    state: &AppState,
    name: &str,
    rest: &str,
    method: HttpMethod,
    request: Request,
) -> Result<(AgentRecord, Request), Result<Response, ApiError>> {
    let agent = state.pipeline.agent_record(name).map_err(Err)?;
    if agent.latest.kind == AgentKind::Http {
        let payment = payment_of(&request).map_err(Err)?;
        // (Boxed: an HTTP agent's serving is large, and the A2A skills' path never holds it.)
        return Err(Box::pin(serve_http_agent(state, name, rest, request, payment)).await);
    }
    if request.method() != method {
        return Err(Err(ApiError::MethodNotAllowed));
    }
    if !card::is_skill(&agent) {
        return Err(Err(ApiError::AgentNotPublic(name.to_string())));
    }
    Ok((agent, request))
}

/// `/agents/{name}/.well-known/agent-card.json`: a skill's card (`GET`), or the HTTP agent's
/// own path.
pub async fn agent_card(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let rest = "/.well-known/agent-card.json";
    match skill(&state, &name, rest, HttpMethod::GET, request).await {
        Ok((agent, _)) => Ok(Json(card::agent_card(&state.pipeline, &agent)?).into_response()),
        Err(answer) => answer,
    }
}

/// `POST /a2a`.
pub async fn host_endpoint(State(state): State<AppState>, request: Request) -> Response {
    endpoint(state, None, request).await
}

/// `/agents/{name}/a2a`: a skill's endpoint (`POST`), or the HTTP agent's own path.
pub async fn agent_endpoint(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    match skill(&state, &name, "/a2a", HttpMethod::POST, request).await {
        Ok((agent, request)) => Ok(endpoint(state, Some(agent), request).await),
        Err(answer) => answer,
    }
}

fn rpc_error(status: StatusCode, error: &RpcError) -> Response {
    (status, Json(error.body())).into_response()
}

/// The caller: SHA-256 (hex) of a bearer credential, or empty.
fn caller_of(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, secret) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim())
        })
        .filter(|s| !s.is_empty())
        .map(|s| hex::encode(hypervisor_protocol::sha256(s.as_bytes())))
        .unwrap_or_default()
}

/// The extension URIs the client activated (either header name).
fn activated(headers: &HeaderMap) -> Vec<String> {
    [EXTENSIONS_HEADER, LEGACY_EXTENSIONS_HEADER]
        .iter()
        .flat_map(|name| headers.get_all(*name))
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect()
}

/// The `A2A-Version`: the header, else the query parameter.
fn version_asked(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(v.to_string());
    }
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case(VERSION_HEADER))
        .map(|(_, v)| v.to_string())
}

async fn endpoint(state: AppState, agent: Option<AgentRecord>, request: Request) -> Response {
    let headers = request.headers();
    let asked = version_asked(headers, request.uri().query());
    let json_body = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            let t = t.trim();
            t.eq_ignore_ascii_case("application/json")
                || t.eq_ignore_ascii_case("application/a2a+json")
        });
    if !json_body {
        let error = RpcError::new(None, INVALID_REQUEST, "the body must be application/json");
        return rpc_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, &error);
    }
    // What the answer needs of the headers, read before the body takes the request.
    let activated = activated(headers);
    let caller = caller_of(headers);
    let body = match super::extract::body_bytes(request, &state).await {
        Ok(body) => body,
        Err(e) => {
            let (status, _) = e.status_and_code();
            return rpc_error(status, &RpcError::new(None, INVALID_REQUEST, e.to_string()));
        }
    };
    let (id, method, params) = match jsonrpc::parse_raw(&body) {
        Ok(Incoming::Request { id, method, params }) => (id, method, params),
        Ok(Incoming::Notification { .. }) => {
            let error = RpcError::new(None, INVALID_REQUEST, "A2A takes requests: give an id");
            return rpc_error(StatusCode::OK, &error);
        }
        Err(error) => return rpc_error(StatusCode::OK, &error),
    };
    let version = match Version::from_header(asked.as_deref()) {
        Ok(v) => v,
        Err(v) => {
            let mut error = RpcError::new(
                Some(id),
                codes::VERSION_NOT_SUPPORTED,
                format!("A2A version {v} is not supported: send A2A-Version 1.0 or 0.3"),
            );
            error.data = Some(json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "VERSION_NOT_SUPPORTED",
                "domain": "a2a-protocol.org",
                "metadata": {"supported": "1.0,0.3", "requested": v},
            }]));
            return rpc_error(StatusCode::OK, &error);
        }
    };
    let Some(a2a) = state.a2a.clone() else {
        return rpc_error(StatusCode::OK, &Fault::internal().answer(Some(id)));
    };
    let x402 = activated
        .iter()
        .any(|u| u == X402_EXTENSION || u == X402_EXTENSION_LEGACY);
    let call = Call {
        state: &state,
        tasks: &a2a,
        version,
        id: id.clone(),
        caller,
        agent,
        x402,
    };
    let mut response = match dispatch(&call, &method, params).await {
        Ok(response) => response,
        Err(fault) => rpc_error(StatusCode::OK, &fault.answer(Some(id))),
    };
    // The extensions this answer used.
    if x402 {
        let used: Vec<&str> = activated
            .iter()
            .map(String::as_str)
            .filter(|u| *u == X402_EXTENSION || *u == X402_EXTENSION_LEGACY)
            .collect();
        if let Ok(v) = HeaderValue::from_str(&used.join(", ")) {
            let name = match version {
                Version::V1_0 => EXTENSIONS_HEADER,
                Version::V0_3 => LEGACY_EXTENSIONS_HEADER,
            };
            response.headers_mut().insert(name, v);
        }
    }
    response
}

async fn dispatch(
    call: &Call<'_>,
    method: &str,
    params: Option<Box<RawValue>>,
) -> Result<Response, Fault> {
    let Some(m) = Method::parse(call.version, method) else {
        let other = match call.version {
            Version::V1_0 => Version::V0_3,
            Version::V0_3 => Version::V1_0,
        };
        let hint = if Method::parse(other, method).is_some() {
            format!(
                ": {method} is an A2A {} method (send A2A-Version: {})",
                other.as_str(),
                other.as_str()
            )
        } else {
            String::new()
        };
        return Err(Fault::new(
            METHOD_NOT_FOUND,
            format!("no method {method} in A2A {}{hint}", call.version.as_str()),
        ));
    };
    let agent = call.agent.as_ref().map(|a| a.name.as_str());
    match m {
        Method::SendMessage | Method::SendStreamingMessage => send(call, m, params).await,
        Method::GetTask => {
            let params = object(params)?;
            let id = task_id(&params)?;
            let task = call.tasks.get(&id, &call.caller, agent)?;
            let history = history_length(&params)?;
            Ok(call.result_of(&task.wire_view(call.version, history, true)))
        }
        Method::ListTasks => list(call, &object(params)?),
        Method::CancelTask => {
            let id = task_id(&object(params)?)?;
            let task = call.tasks.cancel(&id, &call.caller, agent).await?;
            Ok(call.result_of(&task.wire_view(call.version, None, true)))
        }
        Method::SubscribeToTask => {
            let id = task_id(&object(params)?)?;
            let (task, events) = call.tasks.subscribe(&id, &call.caller, agent)?;
            Ok(stream_response(
                call.version,
                call.id.clone(),
                task,
                Some(events),
            ))
        }
        Method::PushNotificationConfig => Err(Fault::new(
            codes::PUSH_NOTIFICATION_NOT_SUPPORTED,
            "push notifications are not offered: stream the task or poll it",
        )),
        Method::ExtendedAgentCard => Err(Fault::new(
            codes::EXTENDED_CARD_NOT_CONFIGURED,
            "there is no extended agent card",
        )),
    }
}

impl Call<'_> {
    /// The answer `result`, written straight into the body.
    fn result_of<T: serde::Serialize + ?Sized>(&self, result: &T) -> Response {
        let body: Box<str> = jsonrpc::result_of(&self.id, result).into();
        (
            StatusCode::OK,
            [(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            String::from(body),
        )
            .into_response()
    }
}

/// Parameters read from their text as `T` (absent: `T`'s default): a send's
/// [`SendParams`], any other method's JSON object.
fn params_as<T: serde::de::DeserializeOwned + Default>(
    params: Option<Box<RawValue>>,
) -> Result<T, Fault> {
    match params {
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|e| Fault::invalid_params(format!("params: {e}"))),
        None => Ok(T::default()),
    }
}

/// Parameters other than a send's: a JSON object.
fn object(params: Option<Box<RawValue>>) -> Result<Map<String, Value>, Fault> {
    params_as(params)
}

/// `params.id`.
fn task_id(params: &Map<String, Value>) -> Result<String, Fault> {
    match params.get("id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        _ => Err(Fault::invalid_params(
            "params.id must be the task's id, a string",
        )),
    }
}

/// `params.historyLength` (`params.configuration.historyLength` for a send).
fn history_length(params: &Map<String, Value>) -> Result<Option<usize>, Fault> {
    match params.get("historyLength") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| Fault::invalid_params("historyLength must be a non-negative integer")),
    }
}

/// A task as a send's answer (and a stream's first event) carries it: `{"task": …}` in 1.0,
/// bare in 0.3 (as in both versions' `GetTask`).
#[derive(serde::Serialize)]
#[serde(untagged)]
enum SentTask<'a> {
    V1 { task: Wire<'a> },
    V03(Wire<'a>),
}

fn sent_task(version: Version, task: &Task, history: Option<usize>) -> SentTask<'_> {
    let task = task.wire_view(version, history, true);
    match version {
        Version::V1_0 => SentTask::V1 { task },
        Version::V0_3 => SentTask::V03(task),
    }
}

/// `ListTasks`' answer.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TaskPage<'a> {
    tasks: Vec<Wire<'a>>,
    next_page_token: String,
    page_size: u32,
    total_size: u64,
}

/// A send's parameters: the message as its text (read straight into the model in 1.0), the
/// rest as JSON. (A key given twice is refused, as in the envelope.)
#[derive(serde::Deserialize, Default)]
struct SendParams {
    #[serde(default)]
    message: Option<Box<RawValue>>,
    #[serde(default)]
    configuration: Option<Value>,
    #[serde(default)]
    metadata: Option<Value>,
}

/// The message of a send, in the neutral model.
fn message_of(version: Version, raw: Option<&RawValue>) -> Result<Message, Fault> {
    let raw = raw.ok_or_else(|| Fault::invalid_params("params.message is required"))?;
    let bad = |e: serde_json::Error| Fault::invalid_params(format!("params.message: {e}"));
    let message: Message = match version {
        Version::V1_0 => serde_json::from_str(raw.get()).map_err(bad)?,
        Version::V0_3 => {
            let v03 = serde_json::from_str(raw.get()).map_err(bad)?;
            let v1 = message_into_v1(v03).map_err(Fault::invalid_params)?;
            serde_json::from_value(v1).map_err(bad)?
        }
    };
    if message.role != hypervisor_protocol::a2a::model::Role::User {
        return Err(Fault::invalid_params(
            "a client's message has the user role",
        ));
    }
    if message.message_id.is_empty() {
        return Err(Fault::invalid_params("message.messageId is required"));
    }
    Ok(message)
}

/// The agent a send is for: the endpoint's, or the one `metadata.skill` names at `/a2a` (the
/// only skill when there is one).
fn agent_of<'a>(
    call: &'a Call<'_>,
    message: &Message,
    metadata: Option<&Value>,
) -> Result<Cow<'a, AgentRecord>, Fault> {
    if let Some(agent) = &call.agent {
        return Ok(Cow::Borrowed(agent));
    }
    let named = message
        .meta("skill")
        .or_else(|| metadata.and_then(|m| m.get("skill")))
        .and_then(Value::as_str);
    let skills: Vec<AgentRecord> = call
        .state
        .pipeline
        .all_agents()
        .map_err(|e| Fault::from_api(&e))?
        .into_iter()
        .filter(card::is_skill)
        .collect();
    let found = match named {
        Some(name) => skills
            .into_iter()
            .find(|a| a.name == name)
            .ok_or_else(|| Fault::invalid_params(format!("no skill {name} on this host"))),
        None if skills.len() == 1 => skills.into_iter().next().ok_or_else(Fault::internal),
        None => Err(Fault::invalid_params(
            "name the skill in the message's metadata: {\"skill\": <its id>}",
        )),
    };
    found.map(Cow::Owned)
}

/// `SendMessage` / `SendStreamingMessage`.
async fn send(
    call: &Call<'_>,
    method: Method,
    params: Option<Box<RawValue>>,
) -> Result<Response, Fault> {
    let params: SendParams = params_as(params)?;
    let message = message_of(call.version, params.message.as_deref())?;
    let agent = agent_of(call, &message, params.metadata.as_ref())?;
    if agent.price.is_some() && !call.x402 {
        return Err(Fault::new(
            codes::EXTENSION_SUPPORT_REQUIRED,
            format!(
                "{} is priced: activate the x402 extension ({X402_EXTENSION}) in the \
                 A2A-Extensions (or X-A2A-Extensions) header",
                agent.name
            ),
        ));
    }
    let configuration = params.configuration.as_ref().and_then(Value::as_object);
    let history = match configuration {
        Some(c) => history_length(c)?,
        None => None,
    };
    let flag = |name: &str| {
        configuration
            .and_then(|c| c.get(name))
            .and_then(Value::as_bool)
    };
    let blocking = method == Method::SendMessage
        && match call.version {
            Version::V1_0 => flag("returnImmediately") != Some(true),
            Version::V0_3 => flag("blocking") != Some(false),
        };
    let streaming = method == Method::SendStreamingMessage;
    let sent = call
        .tasks
        .send(&agent, &call.caller, message, streaming, blocking)
        .await?;
    if streaming {
        return Ok(stream_response(
            call.version,
            call.id.clone(),
            sent.task,
            sent.events,
        ));
    }
    let task = match (blocking, sent.run) {
        (true, Some(run)) => match run.await {
            Ok(Some(task)) => task,
            // Canceled meanwhile: the store has the outcome. (A run that panicked: the store
            // has the task failed, and a task whose room was held was never stored: not found,
            // an internal error.)
            _ => call.tasks.current(&sent.task.id)?,
        },
        _ => sent.task,
    };
    Ok(call.result_of(&sent_task(call.version, &task, history)))
}

/// `ListTasks` (1.0): the caller's tasks (on this endpoint's agent), newest change first.
fn list(call: &Call<'_>, params: &Map<String, Value>) -> Result<Response, Fault> {
    if call.caller.is_empty() {
        return Err(Fault::new(
            codes::UNSUPPORTED_OPERATION,
            "ListTasks needs a bearer credential (Authorization: Bearer …): anonymous tasks are \
             reachable by their id only",
        ));
    }
    let string = |name: &str| -> Result<Option<&str>, Fault> {
        match params.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(Fault::invalid_params(format!("{name} must be a string"))),
        }
    };
    let state = match string("status")? {
        None | Some("TASK_STATE_UNSPECIFIED") => None,
        Some(s) => Some(
            TaskState::parse(s)
                .ok_or_else(|| Fault::invalid_params(format!("unknown task state {s}")))?,
        ),
    };
    if params.get("statusTimestampAfter").is_some() {
        return Err(Fault::invalid_params(
            "statusTimestampAfter is not supported",
        ));
    }
    let page_size = match params.get("pageSize") {
        None | Some(Value::Null) => DEFAULT_PAGE,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| Fault::invalid_params(format!("pageSize must be 1 to {MAX_PAGE}")))?,
    };
    let offset = match string("pageToken")? {
        None => 0,
        Some(t) => t
            .parse::<u64>()
            .map_err(|_| Fault::invalid_params("pageToken is not one this host gave"))?,
    };
    let artifacts = params
        .get("includeArtifacts")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let history = history_length(params)?;
    let filter = TaskFilter {
        caller: &call.caller,
        agent: call.agent.as_ref().map(|a| a.name.as_str()),
        context_id: string("contextId")?,
        state,
        updated_since_ms: None,
    };
    let (tasks, total) = call.tasks.list(&filter, offset, page_size)?;
    let next = offset + tasks.len() as u64;
    let next_token = if next < total {
        next.to_string()
    } else {
        String::new()
    };
    Ok(call.result_of(&TaskPage {
        tasks: tasks
            .iter()
            .map(|t| t.wire_view(call.version, history, artifacts))
            .collect(),
        next_page_token: next_token,
        page_size,
        total_size: total,
    }))
}

/// One stream event's `result`, in `version`'s shape.
fn event_json(version: Version, task: &Task, event: &Event) -> Value {
    match event {
        Event::Status { status, last } => {
            let update = json!({"taskId": task.id, "contextId": task.context_id, "status": status});
            match version {
                Version::V1_0 => json!({ "statusUpdate": update }),
                Version::V0_3 => to_v03(Shape::StatusUpdate { last: *last }, &update),
            }
        }
        Event::Artifact(artifact) => {
            let update = json!({
                "taskId": task.id, "contextId": task.context_id,
                "artifact": artifact, "lastChunk": true,
            });
            match version {
                Version::V1_0 => json!({ "artifactUpdate": update }),
                Version::V0_3 => to_v03(Shape::ArtifactUpdate, &update),
            }
        }
    }
}

/// An SSE stream: the task, then its events until it ends (or nothing more, for a task that
/// does not run). Each event is a JSON-RPC response to the request.
fn stream_response(
    version: Version,
    id: Id,
    task: Task,
    events: Option<broadcast::Receiver<Event>>,
) -> Response {
    let first = jsonrpc::result_of(&id, &sent_task(version, &task, None));
    let frame = move |id: &Id, value: Value| -> Result<SseEvent, Infallible> {
        Ok(SseEvent::default().data(jsonrpc::result(id, value).get()))
    };
    let head = stream::once(async move { Ok(SseEvent::default().data(first.get())) });
    let ends_now = task.status.state.is_terminal() || task.status.state.is_interrupted();
    let rest = follow(if ends_now { None } else { events })
        .map(move |event| frame(&id, event_json(version, &task, &event)));
    Sse::new(head.chain(rest))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The events of a receiver up to and including the last one.
fn follow(events: Option<broadcast::Receiver<Event>>) -> impl Stream<Item = Event> {
    stream::unfold((events, false), |(events, done)| async move {
        if done {
            return None;
        }
        let mut receiver = events?;
        loop {
            match receiver.recv().await {
                Ok(event) => {
                    let last = matches!(event, Event::Status { last: true, .. });
                    return Some((event, (Some(receiver), last)));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}
