//! The HTTP front: routes, body extraction, error mapping. It only translates between HTTP and
//! the [`Pipeline`]; no protocol or engine logic lives here.

pub mod error;
pub mod extract;
mod routes;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::config::HttpConfig;
use crate::pipeline::Pipeline;

/// State shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    /// The request pipeline.
    pub pipeline: Arc<Pipeline>,
    /// HTTP limits.
    pub http: Arc<HttpConfig>,
}

/// The router with every public route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/ping", get(routes::ping))
        .route("/encrypt/create_keypair", post(routes::create_keypair))
        .route("/test/execute/wasm", post(routes::execute_wasm))
        .route(
            "/verifiable/encrypt/create_keypair",
            post(routes::create_verifiable_keypair),
        )
        .route(
            "/verifiable/execute/wasm",
            post(routes::execute_verifiable_wasm),
        )
        .route("/test/policy/unsafe/python", post(routes::execute_python))
        .route(
            "/test/policy/unsafe/python/attest",
            post(routes::execute_python_attested),
        )
        .route("/attestation", get(routes::attestation))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state)
}
