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

/// Records, when dropped unanswered (the client went away while the request ran or settled),
/// that the reserved identified payment's answer is not kept: its retries are told so at once
/// instead of waiting on it.
struct Unanswered {
    slot: Arc<KeepSlot>,
    pipeline: Arc<crate::pipeline::Pipeline>,
    answered: bool,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        if let Some(reserved) = self.slot.reserved().cloned() {
            let pipeline = self.pipeline.clone();
            tokio::spawn(async move {
                if let Err(e) = pipeline.keep_answer(&reserved, None).await {
                    tracing::warn!(error = %e, "recording an identified payment's answer as not kept failed");
                }
            });
        }
    }
}

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
    let mut unanswered = Unanswered {
        slot: slot.clone(),
        pipeline: state.pipeline.clone(),
        answered: false,
    };
    let response = keeping(slot.clone(), next.run(request)).await;
    let Some(reserved) = slot.reserved().cloned() else {
        unanswered.answered = true;
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
    // is one document); another is sent as it comes, and recorded as not kept. A server error
    // after the payment was used (its settlement failed to be asked) is not kept either: its
    // retries are told the answer is gone, and to pay again.
    let within = body.size_hint().exact().is_some_and(|n| n <= max as u64);
    let (body, answer) = if within && !parts.status.is_server_error() {
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
    if let Err(e) = state.pipeline.keep_answer(&reserved, answer.as_ref()).await {
        // Delivered all the same; its retries are told it is gone once the grace passes
        // (`forget_kept_answers`).
        tracing::error!(error = %e, "keeping an identified payment's answer failed");
    }
    unanswered.answered = true;
    Response::from_parts(parts, body)
}
