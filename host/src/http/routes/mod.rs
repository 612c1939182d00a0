//! Route handlers: extract, call the pipeline, respond.

pub mod agents;
pub mod discovery;
pub mod environments;
pub mod grants;
pub mod state;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hypervisor_protocol::host::HostInfo;
use hypervisor_protocol::wire::{
    CreateKeypairRequest, ExecuteRequest, PythonRequest, VerifiableResult,
};

use super::AppState;
use super::extract::{JsonBody, QueryParams};
use super::upload::Upload;
use crate::error::ApiError;
use crate::pipeline::{ExecuteOutcome, RouteKind};
use crate::plugins::payments::PaymentHeader;

/// `GET /ping` → `pong`.
pub async fn ping() -> &'static str {
    "pong"
}

/// `GET /host`: the audience owners sign for, the attestation provider, the version, how
/// RISC-V programs run.
pub async fn host(State(state): State<AppState>) -> Json<HostInfo> {
    Json(HostInfo {
        audience: state.pipeline.audience().to_string(),
        provider: state.pipeline.tee_kind().name().to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        riscv: state.pipeline.riscv_info().await,
    })
}

/// `POST /encrypt/create_keypair`.
pub async fn create_keypair(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<CreateKeypairRequest>,
) -> Result<Response, ApiError> {
    let resp = state.pipeline.create_session(&req)?;
    Ok((StatusCode::OK, Json(resp)).into_response())
}

/// `POST /verifiable/encrypt/create_keypair`.
pub async fn create_verifiable_keypair(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<CreateKeypairRequest>,
) -> Result<Response, ApiError> {
    let resp = state.pipeline.create_verifiable_session(&req)?;
    Ok((StatusCode::OK, Json(resp)).into_response())
}

/// The code routes that run a WebAssembly component: `/test/execute/wasm`,
/// `/verifiable/execute/wasm` and their paid twins under `/x402_execute/`.
pub async fn execute_wasm(
    state: AppState,
    route: RouteKind,
    payment: Option<PaymentHeader>,
    upload: Upload<ExecuteRequest>,
) -> Result<Response, ApiError> {
    let outcome = state
        .pipeline
        .execute_wasm(upload.request, upload.binary, route, payment)
        .await?;
    respond(outcome, route)
}

/// The code routes that run a Python script: `/test/policy/unsafe/python`, its `/attest`
/// variant and the paid `/x402_policy/unsafe/python`.
pub async fn execute_python(
    state: AppState,
    route: RouteKind,
    payment: Option<PaymentHeader>,
    upload: Upload<PythonRequest>,
) -> Result<Response, ApiError> {
    let outcome = state
        .pipeline
        .execute_python(upload.request, upload.binary, route, payment)
        .await?;
    respond(outcome, route)
}

/// The body of a finished execution (with the receipt on verifiable routes) and, on paid
/// routes, the settlement header.
fn respond(outcome: ExecuteOutcome, route: RouteKind) -> Result<Response, ApiError> {
    let mut response = if route.verifiable {
        let receipt = outcome
            .receipt
            .ok_or_else(|| ApiError::Internal("verifiable execution without a receipt".into()))?;
        let body = VerifiableResult {
            result: outcome.result,
            result_quote: receipt,
        };
        (StatusCode::OK, Json(body)).into_response()
    } else {
        (StatusCode::OK, Json(outcome.result)).into_response()
    };
    if let Some(s) = outcome.settlement {
        crate::http::error::add_settlement_header(response.headers_mut(), &s);
    }
    add_execution_id(&mut response, &outcome.execution_id);
    Ok(response)
}

/// Adds `x-execution-id` (the execution's record, `GET /executions/{id}`).
pub(crate) fn add_execution_id(response: &mut Response, id: &str) {
    if let Ok(value) = axum::http::HeaderValue::from_str(id) {
        response.headers_mut().insert("x-execution-id", value);
    }
}

/// `GET /attestation`: provider kind and, when configured, the attested key and evidence.
pub async fn attestation(State(state): State<AppState>) -> Response {
    let (kind, attestation) = state.pipeline.attestation();
    let body = serde_json::json!({ "provider": kind.name(), "attestation": attestation });
    (StatusCode::OK, Json(body)).into_response()
}

/// Query of `GET /attestation/channel`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelQuery {
    /// The client's nonce, 32 bytes, hex.
    nonce: String,
}

/// `GET /attestation/channel?nonce=HEX`: the host's attested key signs this TLS connection's
/// exporter value, the client's nonce and the certificate it presented
/// (`hypervisor_protocol::tls`).
pub async fn attestation_channel(
    State(state): State<AppState>,
    channel: Option<axum::Extension<std::sync::Arc<crate::net::TlsChannel>>>,
    QueryParams(q): QueryParams<ChannelQuery>,
) -> Result<Response, ApiError> {
    use hypervisor_protocol::attest::StatementKind;
    use hypervisor_protocol::tls::{CHANNEL_NONCE_LEN, channel_fields};
    let axum::Extension(channel) = channel.ok_or(ApiError::TlsRequired)?;
    let nonce: [u8; CHANNEL_NONCE_LEN] = hypervisor_protocol::wire::decode_hex("nonce", &q.nonce)
        .map_err(|e| ApiError::MalformedHex(e.to_string()))?
        .try_into()
        .map_err(|_| ApiError::InvalidRequest("nonce must be 32 bytes (64 hex digits)".into()))?;
    let key = state
        .pipeline
        .attestor()
        .current()
        .ok_or(ApiError::AttestationUnavailable)?;
    let audience = state.pipeline.audience();
    let signature = key
        .sign(
            StatementKind::TlsChannel,
            &channel_fields(
                &channel.exporter,
                &nonce,
                &channel.certificate_sha256,
                audience,
            ),
        )
        .map_err(|e| ApiError::Internal(format!("channel binding: {e}")))?;
    let body = hypervisor_protocol::wire::ChannelBinding {
        attestation: key.attestation().clone(),
        nonce: hex::encode(nonce),
        certificate_sha256: hex::encode(channel.certificate_sha256),
        certificate_generated: channel.certificate_generated,
        audience: audience.to_string(),
        signature: hex::encode(signature),
    };
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// Unknown route.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_string())
}

/// Known route, wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
