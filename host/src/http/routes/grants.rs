//! The owner's egress routes: `/agents/{name}/grants` (`GET` reads, `PUT` replaces),
//! `/agents/{name}/calls` (`GET` lists the outgoing calls and payments) and
//! `/agents/{name}/wallet` (`GET` reads, `PUT` attaches). For an HTTP agent, a request to these
//! paths without the owner's signature headers (or, for a `PUT`, without `x-agent-owner`) is
//! the agent's own path.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use hypervisor_protocol::agents::{AgentKind, OWNER_KEY_HEADER};
use hypervisor_protocol::grants::GrantsUpdate;
use hypervisor_protocol::wallet::WalletUpload;
use serde::Deserialize;

use super::agents::{proof, required, serve_http_agent};
use crate::error::ApiError;
use crate::http::AppState;
use crate::http::extract::{JsonBody, PathParams, QueryParams, payment_header};
use crate::pipeline::Pipeline;
use crate::pipeline::agents::owner::Proof;

/// Whether `name` is an HTTP agent, whose paths these are unless the owner signs.
pub(super) fn is_http_agent(state: &AppState, name: &str) -> Result<bool, ApiError> {
    Ok(state.pipeline.agent_record(name)?.latest.kind == AgentKind::Http)
}

/// Whether `request` is the owner's `PUT`: on an HTTP agent only with `x-agent-owner` (else
/// it is the agent's own `PUT`).
pub(super) fn is_owners_put(
    state: &AppState,
    name: &str,
    request: &Request,
) -> Result<bool, ApiError> {
    Ok(request.method() == Method::PUT
        && (request.headers().contains_key(OWNER_KEY_HEADER) || !is_http_agent(state, name)?))
}

/// A request to `suffix` that is not the owner's: an HTTP agent's own path; for any other
/// agent a `GET` without the owner's headers is `owner_signature_invalid`, other methods
/// `method_not_allowed`.
pub(super) async fn not_the_owners(
    state: &AppState,
    name: &str,
    suffix: &str,
    request: Request,
) -> Result<Response, ApiError> {
    if is_http_agent(state, name)? {
        let payment = payment_header(request.headers())?;
        return serve_http_agent(state, name, suffix, request, payment).await;
    }
    if request.method() == Method::GET {
        required(request.headers())?;
    }
    Err(ApiError::MethodNotAllowed)
}

/// Runs a blocking pipeline call (SQLite, signature checks) off the async workers.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
}

/// `/agents/{name}/grants`: `GET` with the owner's signature headers reads the grants; `PUT`
/// with a signed [`GrantsUpdate`] replaces them.
pub async fn grants(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    if request.method() == Method::GET
        && let Some(proof) = proof(request.headers())?
    {
        let grants = state.pipeline.agent_grants(&name, &proof)?;
        return Ok(Json(serde_json::json!({ "agent": name, "grants": grants })).into_response());
    }
    if is_owners_put(&state, &name, &request)? {
        let key = request
            .headers()
            .get(OWNER_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let JsonBody(update) = JsonBody::<GrantsUpdate>::from_request(request, &state).await?;
        let (p, n) = (state.pipeline.clone(), name.clone());
        let grants = blocking(move || p.update_grants(&n, key, update)).await?;
        return Ok(Json(serde_json::json!({ "agent": name, "grants": grants })).into_response());
    }
    not_the_owners(&state, &name, "/grants", request).await
}

/// Query of `GET /agents/{name}/calls`.
#[derive(Debug, Deserialize)]
struct CallsQuery {
    /// Most calls (default 100, at most 1000).
    #[serde(default)]
    limit: Option<u32>,
}

/// `/agents/{name}/calls`: `GET` with the owner's signature headers lists the agent's newest
/// outgoing calls, newest first.
pub async fn calls(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    if request.method() == Method::GET
        && let Some(proof) = proof(request.headers())?
    {
        let (mut parts, _) = request.into_parts();
        let QueryParams(query) =
            QueryParams::<CallsQuery>::from_request_parts(&mut parts, &state).await?;
        let limit = query.limit.unwrap_or(100);
        let calls = state.pipeline.agent_calls(&name, &proof, limit).await?;
        return Ok(Json(serde_json::json!({ "agent": name, "calls": calls })).into_response());
    }
    not_the_owners(&state, &name, "/calls", request).await
}

/// An owner's resource at `/agents/{name}{suffix}`: `GET` with the owner's signature headers
/// answers `read`, the owner's `PUT` (see [`is_owners_put`]) answers `replace` with its JSON
/// body, anything else is [`not_the_owners`]. Both run off the async workers.
pub(super) async fn read_or_replace<R, B>(
    state: AppState,
    name: String,
    suffix: &str,
    request: Request,
    read: fn(&Pipeline, &str, &Proof) -> Result<R, ApiError>,
    replace: fn(&Pipeline, &str, B) -> Result<R, ApiError>,
) -> Result<Response, ApiError>
where
    R: serde::Serialize + Send + 'static,
    B: serde::de::DeserializeOwned + Send + 'static,
{
    if request.method() == Method::GET
        && let Some(proof) = proof(request.headers())?
    {
        let p = state.pipeline.clone();
        let answer = blocking(move || read(&p, &name, &proof)).await?;
        return Ok(Json(answer).into_response());
    }
    if is_owners_put(&state, &name, &request)? {
        let JsonBody(body) = JsonBody::<B>::from_request(request, &state).await?;
        let p = state.pipeline.clone();
        let answer = blocking(move || replace(&p, &name, body)).await?;
        return Ok(Json(answer).into_response());
    }
    not_the_owners(&state, &name, suffix, request).await
}

/// `/agents/{name}/wallet`: `GET` with the owner's signature headers reads the wallet (never
/// its key); `PUT` with a signed [`WalletUpload`] attaches or replaces it.
pub async fn wallet(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    read_or_replace::<_, WalletUpload>(
        state,
        name,
        "/wallet",
        request,
        Pipeline::agent_wallet,
        Pipeline::attach_wallet,
    )
    .await
}
