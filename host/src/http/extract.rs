//! Request extraction: the body under the configured size limit and receive timeout, read into
//! one buffer and parsed strictly (`hypervisor_protocol::strict`: no array for an object, every
//! list bounded while parsed), with JSON errors split into "not JSON" and "wrong shape"; path and query parameters whose rejections
//! are JSON errors like every other (axum's own answer plain text).

use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::http::request::Parts;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use super::AppState;
use crate::error::ApiError;
use crate::plugins::payments::{PaymentHeader, ProtocolVersion};

/// A JSON body of type `T`, read under the host's limits.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        parse_json(&body_bytes(req, state).await?).map(JsonBody)
    }
}

/// A request's whole body under the host's limits (`http.max_body_bytes`,
/// `http.body_timeout_ms`), in one buffer.
///
/// # Errors
/// [`ApiError::BodyTooLarge`], [`ApiError::BodyTimeout`], [`ApiError::BodyRead`].
pub(super) async fn body_bytes(req: Request, state: &AppState) -> Result<Vec<u8>, ApiError> {
    let limit = state.http.max_body_bytes;
    let declared = declared_length(req.headers());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::BodyTooLarge(limit));
    }
    let timeout_ms = state.http.body_timeout_ms;
    tokio::time::timeout(
        Duration::from_millis(timeout_ms),
        read_body(req.into_body(), declared, limit),
    )
    .await
    .map_err(|_| ApiError::BodyTimeout(timeout_ms))?
}

/// Parses a JSON request strictly (a struct is only ever a JSON object, never an array of its
/// fields): text that is not JSON is [`ApiError::MalformedJson`], JSON of the wrong shape
/// [`ApiError::InvalidRequest`].
pub(super) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    hypervisor_protocol::strict::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::InvalidRequest(e.to_string()),
        _ => ApiError::MalformedJson(e.to_string()),
    })
}

/// Reads a whole body of at most `limit` bytes into one buffer, sized up front from the
/// declared length (already checked against `limit`) up to 256 KiB, growing past that as bytes
/// come: a body is held once while it arrives, never as a list of frames and a copy of them.
async fn read_body(
    body: axum::body::Body,
    declared: Option<u64>,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    /// The most set aside before the body's bytes arrive: a declared length is the client's
    /// word, and a request that declares 32 MiB and sends nothing must not hold 32 MiB (per
    /// stream, on HTTP/2).
    const AHEAD: usize = 256 << 10;
    let mut body = std::pin::pin!(body);
    let mut buf = Vec::with_capacity(
        declared
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
            .min(limit)
            .min(AHEAD),
    );
    while let Some(frame) = body.as_mut().frame().await {
        let frame = frame.map_err(|e| ApiError::BodyRead(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if buf.len().saturating_add(data.len()) > limit {
                return Err(ApiError::BodyTooLarge(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf)
}

/// The body length a request declares (`Content-Length`), if it declares a valid one.
pub fn declared_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The x402 payment header of a request: `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT` (v1), v2
/// first when both are present. Header names are case-insensitive.
pub struct Payment(pub Option<PaymentHeader>);

impl<S: Send + Sync> FromRequestParts<S> for Payment {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        payment_header(&parts.headers).map(Self)
    }
}

/// The x402 payment header among `headers`, v2 first.
///
/// # Errors
/// [`ApiError::InvalidRequest`] for a header value that is not ASCII.
pub fn payment_header(headers: &axum::http::HeaderMap) -> Result<Option<PaymentHeader>, ApiError> {
    for (name, version) in [
        ("payment-signature", ProtocolVersion::V2),
        ("x-payment", ProtocolVersion::V1),
    ] {
        if let Some(value) = headers.get(name) {
            let value = value
                .to_str()
                .map_err(|_| ApiError::InvalidRequest(format!("the {name} header is not ASCII")))?;
            return Ok(Some(PaymentHeader {
                version,
                value: value.to_string(),
            }));
        }
    }
    Ok(None)
}

/// Path parameters; a path that does not decode (`%FF` where text is expected) is
/// [`ApiError::InvalidRequest`].
pub struct PathParams<T>(pub T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Self(v))
            .map_err(|e| ApiError::InvalidRequest(e.body_text()))
    }
}

/// Query parameters; a query that does not parse (`?limit=x`) is [`ApiError::InvalidRequest`].
pub struct QueryParams<T>(pub T);

impl<T, S> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|e| ApiError::InvalidRequest(e.body_text()))
    }
}
