//! Route handlers: extract, call the pipeline, respond.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hypervisor_protocol::wire::{
    CreateKeypairRequest, ExecuteRequest, PythonRequest, VerifiableResult,
};

use super::AppState;
use super::extract::JsonBody;
use crate::error::ApiError;
use crate::pipeline::{ExecuteOutcome, RouteKind};

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
    let outcome = state.pipeline.execute_wasm(req, RouteKind::TEST).await?;
    Ok((StatusCode::OK, Json(outcome.result)).into_response())
}

/// `POST /verifiable/encrypt/create_keypair`.
pub async fn create_verifiable_keypair(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<CreateKeypairRequest>,
) -> Result<Response, ApiError> {
    let resp = state.pipeline.create_verifiable_session(&req)?;
    Ok((StatusCode::OK, Json(resp)).into_response())
}

/// `POST /verifiable/execute/wasm`: like `/test/execute/wasm`, plus a signed receipt.
pub async fn execute_verifiable_wasm(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<ExecuteRequest>,
) -> Result<Response, ApiError> {
    let outcome = state
        .pipeline
        .execute_wasm(req, RouteKind::VERIFIABLE)
        .await?;
    verifiable(outcome)
}

/// `POST /test/policy/unsafe/python`: run an encrypted Python script.
pub async fn execute_python(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<PythonRequest>,
) -> Result<Response, ApiError> {
    let outcome = state
        .pipeline
        .execute_python(req, RouteKind::PYTHON)
        .await?;
    Ok((StatusCode::OK, Json(outcome.result)).into_response())
}

/// `POST /test/policy/unsafe/python/attest`: like the Python route, plus a signed receipt.
pub async fn execute_python_attested(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<PythonRequest>,
) -> Result<Response, ApiError> {
    let outcome = state
        .pipeline
        .execute_python(req, RouteKind::PYTHON_ATTEST)
        .await?;
    verifiable(outcome)
}

/// The body of a verifiable route: the encrypted result and its receipt.
fn verifiable(outcome: ExecuteOutcome) -> Result<Response, ApiError> {
    let receipt = outcome
        .receipt
        .ok_or_else(|| ApiError::Internal("verifiable execution without a receipt".into()))?;
    let body = VerifiableResult {
        result: outcome.result,
        result_quote: receipt,
    };
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// `GET /attestation`: provider kind and, when configured, the attested key and evidence.
pub async fn attestation(State(state): State<AppState>) -> Response {
    let (kind, attestation) = state.pipeline.attestation();
    let body = serde_json::json!({ "provider": kind.name(), "attestation": attestation });
    (StatusCode::OK, Json(body)).into_response()
}

/// Unknown route.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_string())
}

/// Known route, wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
