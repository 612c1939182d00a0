//! The owner's routes over an agent's state and configuration: `/agents/{name}/config`
//! (`GET` reads names, versions and hashes; `PUT` changes), `/agents/{name}/state`
//! (`DELETE` wipes), `/agents/{name}/state/export` (`POST` exports, sealed to the owner's
//! session) and `/agents/{name}/state/import` (`POST` imports, sealed the same way). For an
//! HTTP agent, a request to these paths without the owner's signature headers (or, for a `PUT`
//! or `POST`, without `x-agent-owner`) is the agent's own path.

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use hypervisor_protocol::agents::OWNER_KEY_HEADER;
use hypervisor_protocol::state::ConfigUpload;

use super::agents::{proof, required};
use super::grants::{blocking, is_http_agent, not_the_owners, read_or_replace};
use crate::error::ApiError;
use crate::http::AppState;
use crate::http::extract::{JsonBody, PathParams};
use crate::pipeline::Pipeline;

/// `/agents/{name}/config`: `GET` with the owner's signature headers reads the names,
/// versions and hashes; `PUT` with a signed [`ConfigUpload`] changes the configuration.
pub async fn config(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    read_or_replace::<_, ConfigUpload>(
        state,
        name,
        "/config",
        request,
        Pipeline::agent_config,
        Pipeline::set_agent_config,
    )
    .await
}

/// `/agents/{name}/state`: `DELETE` with the owner's signature headers wipes the agent's
/// key-value state.
pub async fn state(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    if request.method() == Method::DELETE {
        let owners = match proof(request.headers())? {
            Some(p) => Some(p),
            None if !is_http_agent(&state, &name)? => Some(required(request.headers())?),
            None => None,
        };
        if let Some(proof) = owners {
            let p = state.pipeline.clone();
            let wiped = blocking(move || p.wipe_agent_state(&name, &proof)).await?;
            return Ok(Json(wiped).into_response());
        }
    }
    not_the_owners(&state, &name, "/state", request).await
}

/// `/agents/{name}/state/export`: `POST` with a signed [`hypervisor_protocol::state::StateExportRequest`] exports the
/// agent's key-value state sealed to the owner's session (on an HTTP agent, with
/// `x-agent-owner`).
pub async fn export(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    owners_post(
        state,
        name,
        "/state/export",
        request,
        Pipeline::export_agent_state,
    )
    .await
}

/// `/agents/{name}/state/import`: `POST` with a signed [`hypervisor_protocol::state::StateImportRequest`] imports state
/// sealed to the owner's session into the agent (on an HTTP agent, with `x-agent-owner`).
pub async fn import(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    owners_post(
        state,
        name,
        "/state/import",
        request,
        Pipeline::import_agent_state,
    )
    .await
}

/// A `POST` of the owner's signed `Req` to `path` under the agent, answered by `operation`;
/// on an HTTP agent, the owner's only with `x-agent-owner` (the agent's own path otherwise).
async fn owners_post<Req, Resp>(
    state: AppState,
    name: String,
    path: &str,
    request: Request,
    operation: fn(&Pipeline, &str, Req) -> Result<Resp, ApiError>,
) -> Result<Response, ApiError>
where
    Req: serde::de::DeserializeOwned + Send + 'static,
    Resp: serde::Serialize + Send + 'static,
{
    if request.method() == Method::POST
        && (request.headers().contains_key(OWNER_KEY_HEADER) || !is_http_agent(&state, &name)?)
    {
        let JsonBody(req) = JsonBody::<Req>::from_request(request, &state).await?;
        let p = state.pipeline.clone();
        let done = blocking(move || operation(&p, &name, req)).await?;
        return Ok(Json(done).into_response());
    }
    not_the_owners(&state, &name, path, request).await
}
