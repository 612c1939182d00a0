//! What the egress layer hands a guest besides a callee's answer: the host's JSON refusals, an
//! internal `wasi:http` error, a buffered body.

use axum::response::IntoResponse;
use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use crate::error::ApiError;

/// A refusal as the guest sees it: the host's JSON error response (one mapping, `http/error.rs`).
pub(super) fn refusal(error: ApiError) -> Response<WasiBody> {
    let (parts, body) = error.into_response().into_parts();
    Response::from_parts(parts, body.map_err(internal).boxed_unsync())
}

/// A host-side failure, as the `wasi:http` error the guest sees.
pub(super) fn internal(e: impl std::fmt::Display) -> HttpError {
    HttpError::InternalError(Some(e.to_string()))
}

/// A whole body in memory.
pub(super) fn full(bytes: Bytes) -> WasiBody {
    Full::new(bytes).map_err(|e| match e {}).boxed_unsync()
}
