//! Agent routes: deploy, list, show, delete, logs, search, invoke, the HTTP agents' paths, and
//! the execution records.
//!
//! `/agents/{name}/invoke` and `/agents/{name}/logs` belong to the host for handler and CLI
//! agents; for an HTTP agent every path under `/agents/{name}/` is the agent's, except
//! `GET …/logs` carrying the owner-signature headers.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hypervisor_protocol::agents::{
    AgentKind, DeployRequest, InvokeRequest, OWNER_KEY_HEADER, OWNER_SEQUENCE_HEADER,
    OWNER_SIGNATURE_HEADER, OWNER_SIGNED_AT_HEADER, SearchRequest,
};
use hypervisor_protocol::wire::VerifiableResult;
use serde::Deserialize;

use crate::error::ApiError;
use crate::http::AppState;
use crate::http::error::add_settlement_header;
use crate::http::extract::{
    JsonBody, PathParams, Payment, QueryParams, declared_length, payment_header,
};
use crate::http::upload::Upload;
use crate::pipeline::agents::Reader;
use crate::pipeline::agents::invoke::Invoked;
use crate::pipeline::agents::owner::Proof;
use crate::pipeline::call::CallFrame;
use crate::plugins::payments::PaymentHeader;

/// `POST /agent/deploy` → `201` with the agent and its versions.
pub async fn deploy(
    State(state): State<AppState>,
    upload: Upload<DeployRequest>,
) -> Result<Response, ApiError> {
    let detail = state
        .pipeline
        .deploy_agent(upload.request, upload.binary)
        .await?;
    Ok((StatusCode::CREATED, Json(detail)).into_response())
}

/// Query of `GET /agents`.
#[derive(Debug, Deserialize)]
pub struct Listing {
    /// The names after this one (the previous page's `next`).
    #[serde(default)]
    after: String,
    /// Most agents (default 100, at most 1000).
    #[serde(default)]
    limit: Option<u32>,
}

/// `GET /agents?after=&limit=`: one page of agents, by name, with the cursor of the next.
pub async fn list(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<Listing>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let agents = state.pipeline.list_agents(&q.after, limit)?;
    let next = (agents.len() == limit as usize)
        .then(|| agents.last().map(|a| a.name.clone()))
        .flatten();
    Ok(Json(serde_json::json!({ "agents": agents, "next": next })).into_response())
}

/// `GET /agents/{name}`.
pub async fn show(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.pipeline.agent(&name)?).into_response())
}

/// The owner's signature headers, if the request carries them.
pub(super) fn proof(headers: &HeaderMap) -> Result<Option<Proof>, ApiError> {
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        headers
            .get(name)
            .map(|v| {
                v.to_str().map(str::to_string).map_err(|_| {
                    ApiError::OwnerSignature(format!("the {name} header is not ASCII"))
                })
            })
            .transpose()
    };
    let Some(signature) = text(OWNER_SIGNATURE_HEADER)? else {
        return Ok(None);
    };
    let number = |name: &str, what: &str| -> Result<u64, ApiError> {
        text(name)?
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| ApiError::OwnerSignature(format!("{name} ({what}) is missing")))
    };
    Ok(Some(Proof {
        key: text(OWNER_KEY_HEADER)?,
        signature,
        signed_at: number(OWNER_SIGNED_AT_HEADER, "Unix seconds")?,
        sequence: number(OWNER_SEQUENCE_HEADER, "a decimal sequence number")?,
    }))
}

pub(super) fn required(headers: &HeaderMap) -> Result<Proof, ApiError> {
    proof(headers)?.ok_or_else(|| {
        ApiError::OwnerSignature(format!(
            "send {OWNER_SIGNATURE_HEADER}, {OWNER_SIGNED_AT_HEADER} and \
             {OWNER_SEQUENCE_HEADER} signed by the owner's key"
        ))
    })
}

/// `DELETE /agents/{name}`, by the owner.
pub async fn delete(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = state.pipeline.clone();
    let proof = required(&headers)?;
    let n = name.clone();
    tokio::task::spawn_blocking(move || p.delete_agent(&n, &proof))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(Json(serde_json::json!({ "deleted": name })).into_response())
}

/// `/agents/{name}/logs`: the owner's log read (`GET` with signature headers), else a path of
/// an HTTP agent.
pub async fn logs(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    if request.method() == Method::GET
        && let Some(proof) = proof(request.headers())?
    {
        let logs = state.pipeline.agent_logs(&name, &proof).await?;
        return Ok(Json(serde_json::json!({ "agent": name, "logs": logs })).into_response());
    }
    if state.pipeline.agent_record(&name)?.latest.kind == AgentKind::Http {
        return serve_http_agent(&state, &name, "/logs", request, None).await;
    }
    Err(ApiError::OwnerSignature(format!(
        "reading logs needs {OWNER_SIGNATURE_HEADER} and {OWNER_SIGNED_AT_HEADER} signed by the owner's key"
    )))
}

/// `/agents/{name}/invoke`: `POST` invokes a handler or CLI agent; an HTTP agent gets the
/// request as its own `/invoke`.
pub async fn invoke(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    if state.pipeline.agent_record(&name)?.latest.kind == AgentKind::Http {
        let payment = payment_of(&request)?;
        return serve_http_agent(&state, &name, "/invoke", request, payment).await;
    }
    if request.method() != Method::POST {
        return Err(ApiError::MethodNotAllowed);
    }
    let (mut parts, body) = request.into_parts();
    let Payment(payment) = Payment::from_request_parts(&mut parts, &state).await?;
    let frame = parts.extensions.get::<CallFrame>().cloned();
    let request = Request::from_parts(parts, body);
    let signed_in = crate::http::sign_in::presented(request.headers());
    let JsonBody(req) = JsonBody::<InvokeRequest>::from_request(request, &state).await?;
    // A client may sign in with its wallet instead of paying (x402 sign-in-with-x).
    let invoked = crate::http::sign_in::scoped(
        signed_in,
        state.pipeline.invoke_agent(&name, req, payment, frame),
    );
    match invoked.await? {
        Invoked::Clear {
            response,
            settlement,
            ..
        } => {
            let id = response.execution_id.clone();
            let mut response = Json(*response).into_response();
            super::add_execution_id(&mut response, &id);
            if let Some(s) = settlement {
                add_settlement_header(response.headers_mut(), &s);
            }
            Ok(response)
        }
        Invoked::Encrypted(outcome) => {
            let id = outcome.execution_id.clone();
            let settlement = outcome.settlement.clone();
            let mut response = match outcome.receipt {
                Some(receipt) => Json(VerifiableResult {
                    result: outcome.result,
                    result_quote: receipt,
                })
                .into_response(),
                None => Json(outcome.result).into_response(),
            };
            super::add_execution_id(&mut response, &id);
            if let Some(s) = &settlement {
                add_settlement_header(response.headers_mut(), s);
            }
            Ok(response)
        }
    }
}

/// Any other path under `/agents/{name}/`: the HTTP agent's. The agent gets the rest of the
/// path as the client sent it, still percent-encoded (`%2F`, `%3F`, even `%FF` stay what they
/// were), so neither the router's decoded `{*rest}` nor its decoding errors are used: both
/// segments come from the raw path. Agent names are `[a-z0-9-]` and never need encoding.
pub async fn agent_path(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let payment = payment_of(&request)?;
    // "/agents/{name}/{rest}": the router matched this shape.
    let mut parts = request.uri().path().splitn(4, '/').skip(2);
    let name = parts.next().unwrap_or_default().to_string();
    let rest = format!("/{}", parts.next().unwrap_or_default());
    serve_http_agent(&state, &name, &rest, request, payment).await
}

/// `/agents/{name}/`: the HTTP agent's root.
pub async fn agent_root(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let payment = payment_of(&request)?;
    serve_http_agent(&state, &name, "/", request, payment).await
}

/// Hands `request` to the HTTP agent `name` as its path `rest`, and its answer back to the
/// client with the payment's settlement header.
pub(in crate::http) async fn serve_http_agent(
    state: &AppState,
    name: &str,
    rest: &str,
    request: Request,
    payment: Option<PaymentHeader>,
) -> Result<Response, ApiError> {
    let declared = declared_length(request.headers()).unwrap_or(0);
    // Set only on another agent's in-process call (an extension, never from the network).
    let frame = request.extensions().get::<CallFrame>().cloned();
    let signed_in = crate::http::sign_in::presented(request.headers());
    // A client may sign in with its wallet instead of paying (x402 sign-in-with-x).
    let answer = crate::http::sign_in::scoped(
        signed_in,
        state
            .pipeline
            .serve_agent_http(name, rest, request, declared, payment, frame),
    )
    .await?;
    let mut response = answer.response.map(axum::body::Body::new);
    if let Some(s) = &answer.settlement {
        add_settlement_header(response.headers_mut(), s);
    }
    Ok(response)
}

/// The x402 payment header of a request to an HTTP agent.
pub(in crate::http) fn payment_of(request: &Request) -> Result<Option<PaymentHeader>, ApiError> {
    payment_header(request.headers())
}

/// `POST /search`.
pub async fn search(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<SearchRequest>,
) -> Result<Response, ApiError> {
    let p = state.pipeline.clone();
    let hits = tokio::task::spawn_blocking(move || p.search_agents(&req.query, req.limit))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(Json(serde_json::json!({ "results": hits })).into_response())
}

/// `GET /executions/{id}`.
pub async fn execution(
    State(state): State<AppState>,
    PathParams(id): PathParams<uuid::Uuid>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Any text form of the UUID names the same record (docs/PROTOCOL.md §1).
    let id = id.to_string();
    let reader = records_reader(&state, &headers, &id)?;
    let record = state.pipeline.execution(&id, &reader).await?;
    // The calls the run made: each links to its callee's record (`callee_execution`,
    // `response_sha256` = the callee record's commitment).
    let calls = state.pipeline.calls_of(&id).await?;
    let mut body = serde_json::to_value(record).map_err(|e| ApiError::Internal(e.to_string()))?;
    if !calls.is_empty()
        && let Some(map) = body.as_object_mut()
    {
        map.insert(
            "calls".into(),
            serde_json::to_value(calls).map_err(|e| ApiError::Internal(e.to_string()))?,
        );
    }
    Ok(Json(body).into_response())
}

/// Who reads execution records: the operator (its bearer token, when one is configured), or the
/// key that signs for them (`x-agent-owner` and the owner signature headers, action
/// `read-executions`, name `id`, empty for the listing).
fn records_reader(state: &AppState, headers: &HeaderMap, id: &str) -> Result<Reader, ApiError> {
    if crate::http::observe::is_operator(state, headers) {
        return Ok(Reader::Operator);
    }
    let proof = proof(headers)?.ok_or_else(|| {
        ApiError::OwnerSignature(format!(
            "execution records are shown to the key that ran them and to the agent's owner: \
             send {OWNER_KEY_HEADER}, {OWNER_SIGNATURE_HEADER}, {OWNER_SIGNED_AT_HEADER} and \
             {OWNER_SEQUENCE_HEADER} (action read-executions)"
        ))
    })?;
    state.pipeline.records_reader(id, &proof)
}

/// Query of `GET /executions`.
#[derive(Debug, Deserialize)]
pub struct Audit {
    /// Records started at or after this time, Unix milliseconds (default 0).
    #[serde(default)]
    since_ms: u64,
    /// With `since_ms`, the previous page's last id: records started at `since_ms` exactly
    /// come after it (the previous page's `next`).
    #[serde(default)]
    after: String,
    /// Most records (default 100, at most 1000).
    #[serde(default)]
    limit: Option<u32>,
}

/// `GET /executions`: the audit listing.
pub async fn executions(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<Audit>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let reader = records_reader(&state, &headers, "")?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let records = state
        .pipeline
        .executions(q.since_ms, &q.after, limit, &reader)
        .await?;
    let next = (records.len() == limit as usize)
        .then(|| records.last())
        .flatten()
        .map(|r| serde_json::json!({ "since_ms": r.started_ms, "after": r.id }));
    Ok(Json(serde_json::json!({ "executions": records, "next": next })).into_response())
}
