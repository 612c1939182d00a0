//! Uploads: a request that carries a component (or an envelope of one) arrives either as the
//! JSON body of [`super::extract::JsonBody`], with the bytes as hex or base64 text, or as a
//! `multipart/form-data` body whose `request` part is that JSON without the field and whose
//! one binary part, named after the field, carries the bytes themselves (docs/PROTOCOL.md,
//! "Binary uploads").
//!
//! The multipart form is what large components need: no hex or base64 inflation, the whole
//! upload bounded by `http.max_upload_bytes` instead of `http.max_body_bytes`, and the binary
//! part written to a sealed, unnamed spool file ([`crate::storage::spool`]) as it arrives, so
//! a slow upload holds a file, not its bytes. The parts are parsed by `multer` (what axum's own
//! `Multipart` wraps), with the part names on an allow-list and a size limit per part.

use std::time::Duration;

use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use hypervisor_protocol::agents::DeployRequest;
use hypervisor_protocol::wire::{ExecuteRequest, PythonRequest};
use serde::de::DeserializeOwned;

use super::AppState;
use super::extract::{JsonBody, declared_length, parse_json};
use crate::error::ApiError;
use crate::pipeline::BinaryField;
use crate::storage::spool::Spool;

/// The name of the part that holds the JSON request.
pub const REQUEST_PART: &str = "request";

/// A request type that may arrive as a multipart upload, and the fields its binary part may
/// stand for.
pub trait Uploadable: DeserializeOwned + Send {
    /// The names a binary part may have on this route.
    const BINARY_FIELDS: &'static [&'static str];
}

impl Uploadable for ExecuteRequest {
    const BINARY_FIELDS: &'static [&'static str] = &["encrypted_wasm"];
}

impl Uploadable for PythonRequest {
    const BINARY_FIELDS: &'static [&'static str] = &["encrypted_python"];
}

impl Uploadable for DeployRequest {
    const BINARY_FIELDS: &'static [&'static str] = &["component", "encrypted_component"];
}

/// A request that may carry a binary part: the JSON request and, from a multipart upload, the
/// field sent as bytes.
pub struct Upload<T> {
    /// The request (its binary field left out when `binary` carries it).
    pub request: T,
    /// The binary part, if the request was a multipart upload with one.
    pub binary: Option<BinaryField>,
}

impl<T: Uploadable> FromRequest<AppState> for Upload<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let is_multipart = content_type
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("multipart/form-data"));
        if !is_multipart {
            let JsonBody(request) = JsonBody::<T>::from_request(req, state).await?;
            return Ok(Self {
                request,
                binary: None,
            });
        }
        let boundary = multer::parse_boundary(content_type).map_err(|e| {
            ApiError::InvalidRequest(format!("the multipart content type has no boundary: {e}"))
        })?;
        let limit = state.http.max_upload_bytes;
        if declared_length(req.headers()).is_some_and(|n| n > limit) {
            return Err(too_large(limit));
        }
        let timeout_ms = state.http.upload_timeout_ms;
        let spool_dir = state.pipeline.config().data_dir.join("uploads");
        let (json, spool) = tokio::time::timeout(
            Duration::from_millis(timeout_ms),
            read_parts::<T>(req, boundary, state, &spool_dir),
        )
        .await
        .map_err(|_| ApiError::BodyTimeout(timeout_ms))??;
        let request = parse_json::<T>(&json)?;
        let binary = match spool {
            None => None,
            Some((name, spool)) => {
                let spooled = spool.finish().map_err(spool_error)?;
                let sha256 = spooled.sha256();
                // Back into memory in one buffer, off the async threads.
                let bytes = tokio::task::spawn_blocking(move || spooled.read())
                    .await
                    .map_err(spool_error)?
                    .map_err(spool_error)?;
                Some(BinaryField {
                    name,
                    bytes,
                    sha256,
                })
            }
        };
        Ok(Self { request, binary })
    }
}

/// Reads the parts: the JSON request into memory (at most `http.max_body_bytes`), the one
/// binary part into a spool.
async fn read_parts<T: Uploadable>(
    req: Request,
    boundary: String,
    state: &AppState,
    spool_dir: &std::path::Path,
) -> Result<(Vec<u8>, Option<(&'static str, Spool)>), ApiError> {
    let http = &state.http;
    let max_json = u64::try_from(http.max_body_bytes).unwrap_or(u64::MAX);
    let mut allowed = vec![REQUEST_PART];
    allowed.extend_from_slice(T::BINARY_FIELDS);
    let constraints = multer::Constraints::new()
        .allowed_fields(allowed)
        .size_limit(
            multer::SizeLimit::new()
                .whole_stream(http.max_upload_bytes)
                .for_field(REQUEST_PART, max_json),
        );
    let stream = req.into_body().into_data_stream();
    let mut parts = multer::Multipart::with_constraints(stream, boundary, constraints);

    let mut json: Option<Vec<u8>> = None;
    let mut binary: Option<(&'static str, Spool)> = None;
    while let Some(mut part) = parts
        .next_field()
        .await
        .map_err(|e| multipart_error(e, http))?
    {
        let name = part.name().unwrap_or_default().to_string();
        if name == REQUEST_PART {
            if json.is_some() {
                return Err(ApiError::InvalidRequest(
                    "the multipart upload has two `request` parts".into(),
                ));
            }
            let mut buf = Vec::new();
            while let Some(chunk) = part.chunk().await.map_err(|e| multipart_error(e, http))? {
                buf.extend_from_slice(&chunk);
            }
            json = Some(buf);
            continue;
        }
        let Some(&field) = T::BINARY_FIELDS.iter().find(|f| **f == name) else {
            // multer refuses names off the allow-list; an unnamed part ends here
            return Err(ApiError::InvalidRequest(format!(
                "unexpected multipart part {name:?}: this route takes `request` and one of {}",
                T::BINARY_FIELDS.join(", ")
            )));
        };
        if binary.is_some() {
            return Err(ApiError::InvalidRequest(format!(
                "the multipart upload has more than one binary part (`{field}` again or \
                 another of {})",
                T::BINARY_FIELDS.join(", ")
            )));
        }
        let mut spool = Spool::create(spool_dir).map_err(spool_error)?;
        // (Written inline: a sealed 64 KiB chunk at a time into the page cache, microseconds;
        // the one large read, back into memory, runs on a blocking thread.)
        while let Some(chunk) = part.chunk().await.map_err(|e| multipart_error(e, http))? {
            spool.write(&chunk).map_err(spool_error)?;
        }
        binary = Some((field, spool));
    }
    let json = json.ok_or_else(|| {
        ApiError::InvalidRequest(format!(
            "a multipart upload needs a `{REQUEST_PART}` part: the JSON request"
        ))
    })?;
    Ok((json, binary))
}

/// What a multipart parse error means for the client.
fn multipart_error(e: multer::Error, http: &crate::config::HttpConfig) -> ApiError {
    match e {
        multer::Error::StreamSizeExceeded { .. } => too_large(http.max_upload_bytes),
        multer::Error::FieldSizeExceeded { .. } => ApiError::BodyTooLarge(http.max_body_bytes),
        multer::Error::UnknownField { field_name } => ApiError::InvalidRequest(format!(
            "unexpected multipart part {:?}",
            field_name.unwrap_or_default()
        )),
        multer::Error::StreamReadFailed(e) => ApiError::BodyRead(e.to_string()),
        e => ApiError::InvalidRequest(format!("malformed multipart body: {e}")),
    }
}

/// A spool that could not be written or read back: the host's failure, not the client's.
fn spool_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("upload spool: {e}"))
}

/// 413 for an upload above `limit` bytes.
fn too_large(limit: u64) -> ApiError {
    ApiError::BodyTooLarge(usize::try_from(limit).unwrap_or(usize::MAX))
}
