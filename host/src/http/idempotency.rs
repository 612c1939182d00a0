//! Keeps the answers of identified paid requests (x402 `payment-identifier`,
//! `pipeline::x402::identifier`) on the routes whose answers are whole documents: the paid code
//! routes and `/agents/{name}/invoke`. The request runs with a [`KeepSlot`]; when the pipeline
//! reserved an identified payment for it, the answer is kept (sealed, in the ledger, before it
//! is sent), so that a retry of the same payment gets it again from any replica.

use std::sync::Arc;

use axum::body::Body;
use axum::body::HttpBody as _;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use hypervisor_protocol::routes::Route;

use super::AppState;
use crate::error::ReplayedAnswer;
use crate::pipeline::{KeepSlot, keeping};

/// The routes whose answers are kept.
const KEEPING: [Route; 4] = [
    Route::ExecuteWasmPaid,
    Route::ExecuteWasmVerifiablePaid,
    Route::ExecutePythonPaid,
    Route::AgentInvoke,
];

/// The middleware (see the module's text).
pub async fn keep(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let keeps = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|m| KEEPING.iter().any(|r| r.path() == m.as_str()));
    if !keeps {
        return next.run(request).await;
    }
    let slot = Arc::new(KeepSlot::default());
    let response = keeping(slot.clone(), next.run(request)).await;
    let Some(replay_key) = slot.reserved() else {
        return response;
    };
    let max = state
        .pipeline
        .config()
        .payments
        .payment_identifier
        .max_answer_bytes;
    let (parts, body) = response.into_parts();
    // Only a body of known size within the bound is read here (every answer of these routes
    // is one document); another is sent as it comes, and recorded as not kept.
    let within = body.size_hint().exact().is_some_and(|n| n <= max as u64);
    let (body, answer) = if within {
        match axum::body::to_bytes(body, max).await {
            Ok(bytes) => {
                let answer = ReplayedAnswer {
                    status: parts.status.as_u16(),
                    headers: parts
                        .headers
                        .iter()
                        .filter(|(name, _)| {
                            ![
                                header::CONTENT_LENGTH,
                                header::TRANSFER_ENCODING,
                                header::CONNECTION,
                            ]
                            .contains(name)
                        })
                        .filter_map(|(name, value)| {
                            Some((name.to_string(), value.to_str().ok()?.to_string()))
                        })
                        .collect(),
                    body: bytes.to_vec(),
                };
                (Body::from(bytes), Some(answer))
            }
            Err(e) => {
                tracing::error!(error = %e, "reading an identified payment's answer failed");
                (Body::empty(), None)
            }
        }
    } else {
        (body, None)
    };
    if let Err(e) = state
        .pipeline
        .keep_answer(replay_key, answer.as_ref())
        .await
    {
        // Delivered all the same: its retries get `payment_identifier_in_progress`.
        tracing::error!(error = %e, "keeping an identified payment's answer failed");
    }
    Response::from_parts(parts, body)
}
