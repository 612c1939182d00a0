//! Assist TEE's environments routes (`docs/PROTOCOL.md` §25), in Assist's own terms: its
//! request and response bodies, its error body `{"error", "code"}`, its optional shared bearer
//! token (`javascript.environments_token`; a request without it gets `401` and the text
//! `Unauthorized`, as Assist answers). What they do is [`crate::pipeline::environments`]'s.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hypervisor_protocol::environments::EnvironmentError as Body;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::http::AppState;
use crate::http::extract::PathParams;
use crate::pipeline::Pipeline;
use crate::pipeline::environments::{EnvironmentError, Environments};

/// An environments error as Assist's body and a status.
fn reply(status: StatusCode, code: &str, error: impl Into<String>) -> Response {
    (
        status,
        Json(Body {
            error: error.into(),
            code: code.to_string(),
        }),
    )
        .into_response()
}

impl IntoResponse for EnvironmentError {
    fn into_response(self) -> Response {
        match self {
            EnvironmentError::Validation(m) => {
                reply(StatusCode::BAD_REQUEST, "validation_error", m)
            }
            EnvironmentError::SetupRefused(m) => reply(StatusCode::BAD_REQUEST, "setup_failed", m),
            EnvironmentError::InvalidId => reply(
                StatusCode::BAD_REQUEST,
                "invalid_id",
                "invalid environment ID",
            ),
            EnvironmentError::NotFound => reply(
                StatusCode::NOT_FOUND,
                "environment_not_found",
                "environment not found",
            ),
            EnvironmentError::Api(e) => {
                // The pipeline's own code and status (a busy host, storage), Assist's shape.
                let (status, code) = e.status_and_code();
                let message = if status.is_server_error() {
                    tracing::warn!(error = %e, "environments request failed");
                    "internal error".to_string()
                } else {
                    e.to_string()
                };
                reply(status, code.as_str(), message)
            }
        }
    }
}

/// A request refused before the adapter sees it, or the adapter's error.
enum Refused {
    /// No or a wrong bearer token.
    Unauthorized,
    /// `javascript.environments` is off.
    Disabled,
    /// The body is not the JSON asked for.
    Malformed(String),
    /// The body is larger than the limit.
    TooLarge(usize),
    /// The body did not arrive within `http.body_timeout_ms`.
    Slow(u64),
    /// The body could not be read (the connection broke).
    Unreadable(String),
    /// The adapter's error.
    Environment(EnvironmentError),
}

impl From<EnvironmentError> for Refused {
    fn from(e: EnvironmentError) -> Self {
        Self::Environment(e)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            // Assist's `http.Error(w, "Unauthorized", 401)`.
            Refused::Unauthorized => (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response(),
            Refused::Disabled => reply(
                StatusCode::NOT_FOUND,
                "disabled",
                "this host serves no environments (javascript.environments = false)",
            ),
            Refused::Malformed(why) => reply(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("Invalid request body: {why}"),
            ),
            Refused::TooLarge(limit) => reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                format!("the body is larger than {limit} bytes"),
            ),
            Refused::Slow(ms) => reply(
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request",
                format!("the body did not arrive within {ms} ms"),
            ),
            Refused::Unreadable(why) => reply(StatusCode::BAD_REQUEST, "invalid_request", why),
            Refused::Environment(e) => e.into_response(),
        }
    }
}

/// The adapter, once the token (if any) is checked (constant time, as Assist compares it).
fn gate<'a>(state: &'a AppState, headers: &HeaderMap) -> Result<&'a Environments, Refused> {
    if let Some(token) = &state.pipeline.config().javascript.environments_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !presented.is_some_and(|p| token.matches(p)) {
            return Err(Refused::Unauthorized);
        }
    }
    state.environments.as_deref().ok_or(Refused::Disabled)
}

/// The request's JSON body, within the host's body limits (size and receive time), as every
/// other route reads one.
async fn body<T: DeserializeOwned>(state: &AppState, request: Request) -> Result<T, Refused> {
    let bytes = crate::http::extract::body_bytes(request, state)
        .await
        .map_err(|e| match e {
            ApiError::BodyTooLarge(limit) => Refused::TooLarge(limit),
            ApiError::BodyTimeout(ms) => Refused::Slow(ms),
            other => Refused::Unreadable(other.to_string()),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| Refused::Malformed(e.to_string()))
}

/// `POST /environments/setup`.
pub async fn setup(State(state): State<AppState>, request: Request) -> Response {
    let run = async {
        let envs = gate(&state, request.headers())?;
        let req = body(&state, request).await?;
        Ok::<_, Refused>(Json(envs.setup(&state.pipeline, req).await?))
    };
    run.await.into_response()
}

/// `f` with the adapter and the pipeline on a blocking thread (they read the database).
async fn blocking<T: Send + 'static>(
    state: &AppState,
    headers: &HeaderMap,
    f: impl FnOnce(&Environments, &Pipeline) -> Result<T, EnvironmentError> + Send + 'static,
) -> Result<T, Refused> {
    gate(state, headers)?;
    let (envs, pipeline) = (state.environments.clone(), state.pipeline.clone());
    let Some(envs) = envs else {
        return Err(Refused::Disabled);
    };
    tokio::task::spawn_blocking(move || f(&envs, &pipeline))
        .await
        .map_err(|e| EnvironmentError::Api(ApiError::Internal(e.to_string())))?
        .map_err(Refused::from)
}

/// `GET /environments`.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    blocking(&state, &headers, |envs, pipeline| envs.list(pipeline))
        .await
        .map(Json)
        .into_response()
}

/// `POST /environments/{id}/execute`.
pub async fn execute(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    request: Request,
) -> Response {
    let run = async {
        let envs = gate(&state, request.headers())?;
        let req = body(&state, request).await?;
        Ok::<_, Refused>(Json(envs.execute(&state.pipeline, &id, req).await?))
    };
    run.await.into_response()
}

/// `DELETE /environments/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
) -> Response {
    blocking(&state, &headers, move |envs, pipeline| {
        envs.delete(pipeline, &id)
    })
    .await
    .map(|()| StatusCode::NO_CONTENT)
    .into_response()
}
