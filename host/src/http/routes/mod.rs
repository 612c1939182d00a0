//! Route handlers: extract, call the pipeline, respond.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hypervisor_protocol::wire::{CreateKeypairRequest, ExecuteRequest};

use super::AppState;
use super::extract::JsonBody;
use crate::error::ApiError;

/// `GET /ping` → `pong`.
pub async fn ping() -> &'static str {
    "pong"
}

/// `POST /encrypt/create_keypair`.
pub async fn create_keypair(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<CreateKeypairRequest>,
) -> Result<Response, ApiError> {
    let resp = state.pipeline.create_session(&req)?;
    Ok((StatusCode::OK, Json(resp)).into_response())
}

/// `POST /test/execute/wasm`.
pub async fn execute_wasm(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<ExecuteRequest>,
) -> Result<Response, ApiError> {
    let outcome = state.pipeline.execute_wasm(req).await?;
    Ok((StatusCode::OK, Json(outcome.result)).into_response())
}

/// Unknown route.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_string())
}

/// Known route, wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
