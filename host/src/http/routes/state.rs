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
use hypervisor_protocol::state::{ConfigUpload, StateExportRequest, StateImportRequest};

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

/// `/agents/{name}/state/export`: `POST` with a signed [`StateExportRequest`] exports the
/// agent's key-value state sealed to the owner's session (on an HTTP agent, with
/// `x-agent-owner`).
pub async fn export(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    if request.method() == Method::POST
        && (request.headers().contains_key(OWNER_KEY_HEADER) || !is_http_agent(&state, &name)?)
    {
        let JsonBody(req) = JsonBody::<StateExportRequest>::from_request(request, &state).await?;
        let p = state.pipeline.clone();
        let exported = blocking(move || p.export_agent_state(&name, req)).await?;
        return Ok(Json(exported).into_response());
    }
    not_the_owners(&state, &name, "/state/export", request).await
}

/// `/agents/{name}/state/import`: `POST` with a signed [`StateImportRequest`] imports state
/// sealed to the owner's session into the agent (on an HTTP agent, with `x-agent-owner`).
pub async fn import(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    if request.method() == Method::POST
        && (request.headers().contains_key(OWNER_KEY_HEADER) || !is_http_agent(&state, &name)?)
    {
        let JsonBody(req) = JsonBody::<StateImportRequest>::from_request(request, &state).await?;
        let p = state.pipeline.clone();
        let imported = blocking(move || p.import_agent_state(&name, req)).await?;
        return Ok(Json(imported).into_response());
    }
    not_the_owners(&state, &name, "/state/import", request).await
}
