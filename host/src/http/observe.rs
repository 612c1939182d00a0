//! What every request passes through on its way in and out: a request id (taken from a sane
//! `x-request-id` header, or made here) returned in `x-request-id` and carried by the tracing
//! span of everything the request logs; the request counted and timed by route template; on a
//! host running simulated attestation, the label [`ATTESTATION`] on every answer; and
//! `GET /metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::AppState;
use crate::attestation::TeeKind;
use crate::error::ApiError;

/// The request id header (in and out).
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// On a host whose attestation is simulated, every answer carries this header with the value
/// `simulated-not-for-production`: a client that never looks at evidence still sees it.
pub static ATTESTATION: HeaderName = HeaderName::from_static("x-attestation");

/// The replica of a cluster that answered ([`hypervisor_protocol::host::REPLICA_HEADER`]).
pub static REPLICA: HeaderName = HeaderName::from_static(hypervisor_protocol::host::REPLICA_HEADER);

/// The longest request id accepted from a client.
const MAX_REQUEST_ID: usize = 64;

/// A client's request id is kept if it is short and plain (letters, digits, `-`, `_`, `.`,
/// `:`), so it is safe in logs; otherwise a new one is made.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_REQUEST_ID
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_string)
}

/// Lets a request to an operator route through: any request when no `http.operator_token` is
/// set, else one with `Authorization: Bearer <token>` (compared in constant time).
///
/// # Errors
/// [`ApiError::Unauthorized`].
pub fn operator(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.http.operator_token.is_none() || is_operator(state, headers) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Whether the request carries the configured `http.operator_token` (`false` when none is
/// configured: then nobody is the operator, and the operator routes are simply open).
pub fn is_operator(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = &state.http.operator_token else {
        return false;
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    token.matches(presented.trim())
}

/// The middleware: request id, span, metrics, access log (at `debug`).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&request);
    // The route template, not the path: bounded label values, and no agent names or ids in
    // the metrics.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = request.method().clone();
    let span = tracing::info_span!("request", id = %id, method = %method, route = %route);
    let mut response = next.run(request).instrument(span.clone()).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    state
        .pipeline
        .metrics()
        .http_request(route, &method, status, took);
    span.in_scope(|| {
        tracing::debug!(status, micros = took.as_micros(), "request answered");
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    if let Some(replica) = state.pipeline.replica_label()
        && let Ok(v) = HeaderValue::from_str(replica)
    {
        response.headers_mut().insert(REPLICA.clone(), v);
    }
    if state.pipeline.attestor().kind() == TeeKind::Simulated {
        response.headers_mut().insert(
            ATTESTATION.clone(),
            HeaderValue::from_static("simulated-not-for-production"),
        );
    }
    response
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = operator(&state, &headers) {
        return e.into_response();
    }
    let text = state.pipeline.render_metrics();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
