//! The HTTP front: routes, body extraction, error mapping. It only translates between HTTP and
//! the [`Pipeline`]; no protocol or engine logic lives here.

pub mod error;
pub mod extract;
pub mod observe;
pub mod openapi;
mod routes;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::{MethodRouter, any, get, post};
use hypervisor_protocol::wire::{ExecuteRequest, PythonRequest};

use self::extract::{JsonBody, Payment};
use self::routes::agents;
use crate::config::HttpConfig;
use crate::pipeline::{Pipeline, RouteKind};

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
        .route("/metrics", get(observe::metrics))
        .route("/encrypt/create_keypair", post(routes::create_keypair))
        .route(
            "/verifiable/encrypt/create_keypair",
            post(routes::create_verifiable_keypair),
        )
        .route("/test/execute/wasm", wasm(RouteKind::TEST))
        .route("/verifiable/execute/wasm", wasm(RouteKind::VERIFIABLE))
        .route("/x402_execute/test/wasm", wasm(RouteKind::PAID_TEST))
        .route(
            "/x402_execute/verifiable/wasm",
            wasm(RouteKind::PAID_VERIFIABLE),
        )
        .route("/test/policy/unsafe/python", python(RouteKind::PYTHON))
        .route(
            "/test/policy/unsafe/python/attest",
            python(RouteKind::PYTHON_ATTEST),
        )
        .route("/x402_policy/unsafe/python", python(RouteKind::PAID_PYTHON))
        .route("/attestation", get(routes::attestation))
        .route("/openapi.json", get(openapi::document))
        .route("/agent/deploy", post(agents::deploy))
        .route("/agents", get(agents::list))
        .route("/agents/{name}", get(agents::show).delete(agents::delete))
        .route("/agents/{name}/", any(agents::agent_root))
        .route("/agents/{name}/invoke", any(agents::invoke))
        .route("/agents/{name}/logs", any(agents::logs))
        .route("/agents/{name}/{*rest}", any(agents::agent_path))
        .route("/search", post(agents::search))
        .route("/executions", get(agents::executions))
        .route("/executions/{id}", get(agents::execution))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        // Applied to every route and the fallbacks, after routing (the route template is known).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::track,
        ))
        .with_state(state)
}

/// `POST` handler running a component on `route`.
fn wasm(route: RouteKind) -> MethodRouter<AppState> {
    post(
        move |State(state): State<AppState>,
              Payment(payment): Payment,
              JsonBody(req): JsonBody<ExecuteRequest>| {
            routes::execute_wasm(state, route, payment, req)
        },
    )
}

/// `POST` handler running a Python script on `route`.
fn python(route: RouteKind) -> MethodRouter<AppState> {
    post(
        move |State(state): State<AppState>,
              Payment(payment): Payment,
              JsonBody(req): JsonBody<PythonRequest>| {
            routes::execute_python(state, route, payment, req)
        },
    )
}
