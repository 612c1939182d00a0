//! The HTTP front: routes, body extraction, error mapping. It only translates between HTTP and
//! the [`Pipeline`]; no protocol or engine logic lives here.

pub mod a2a;
pub mod cors;
pub mod error;
pub mod extract;
mod idempotency;
mod mcp;
pub mod observe;
pub mod openapi;
mod paywall;
mod routes;
pub(crate) mod sign_in;
pub mod upload;
pub mod x402_meta;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::{MethodRouter, any, get, post};
use hypervisor_protocol::routes::Route;
use hypervisor_protocol::wire::{ExecuteRequest, PythonRequest};

use self::extract::Payment;
use self::routes::agents;
use self::upload::Upload;
use crate::config::HttpConfig;
use crate::pipeline::{Pipeline, RouteKind};

/// State shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    /// The request pipeline.
    pub pipeline: Arc<Pipeline>,
    /// HTTP limits.
    pub http: Arc<HttpConfig>,
    /// A2A tasks (`None` in front-only tests: the A2A endpoints answer an internal error).
    pub a2a: Option<Arc<a2a::tasks::Tasks>>,
    /// Assist TEE's environments (`None` when `javascript.environments` is off).
    pub environments: Option<Arc<crate::pipeline::environments::Environments>>,
}

/// The router: every route of the protocol's table ([`Route::ALL`]) with its handler, and the
/// fallbacks (`not_found`, `method_not_allowed`); with `http.cors_origins`, the CORS layer
/// inside the observation layer (preflights get request ids and metrics too).
pub fn router(state: AppState) -> Router {
    let routes = public_routes()
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        // A browser navigating to a paid resource gets the x402 payment page.
        .layer(axum::middleware::from_fn(paywall::serve))
        // Answers to identified paid requests are kept for their retries (x402
        // payment-identifier).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::keep,
        ));
    let routes = match cors::layer(&state.http) {
        Some(cors) => routes.layer(cors),
        None => routes,
    };
    routes
        // Applied to every route and the fallbacks, after routing (the route template is known).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::track,
        ))
        .with_state(state)
}

/// Every route of [`Route::ALL`] at its path, with [`handler`].
pub(crate) fn public_routes() -> Router<AppState> {
    Route::ALL.iter().fold(Router::new(), |router, &route| {
        router.route(route.path(), handler(route))
    })
}

/// The handler of `route`. It answers exactly the methods of `route.operations()` (`any` for
/// the routes that have all of [`Method::ALL`](hypervisor_protocol::routes::Method::ALL)), which
/// the tests check against the router's behaviour.
fn handler(route: Route) -> MethodRouter<AppState> {
    match route {
        Route::Ping => get(routes::ping),
        Route::Host => get(routes::host),
        Route::OpenApi => get(openapi::document),
        Route::Metrics => get(observe::metrics),
        Route::CreateKeypair => post(routes::create_keypair),
        Route::CreateVerifiableKeypair => post(routes::create_verifiable_keypair),
        Route::ExecuteWasm => wasm(RouteKind::TEST),
        Route::ExecuteWasmVerifiable => wasm(RouteKind::VERIFIABLE),
        Route::ExecuteWasmPaid => wasm(RouteKind::PAID_TEST),
        Route::ExecuteWasmVerifiablePaid => wasm(RouteKind::PAID_VERIFIABLE),
        Route::ExecutePython => python(RouteKind::PYTHON),
        Route::ExecutePythonVerifiable => python(RouteKind::PYTHON_ATTEST),
        Route::ExecutePythonPaid => python(RouteKind::PAID_PYTHON),
        Route::Attestation => get(routes::attestation),
        Route::AttestationChannel => get(routes::attestation_channel),
        Route::Mcp => post(mcp::endpoint),
        Route::HostAgentCard => get(a2a::host_card),
        Route::A2a => post(a2a::host_endpoint),
        Route::AgentCard => any(a2a::agent_card),
        Route::AgentA2a => any(a2a::agent_endpoint),
        Route::EnvironmentSetup => post(routes::environments::setup),
        Route::Environments => get(routes::environments::list),
        Route::Environment => axum::routing::delete(routes::environments::delete),
        Route::EnvironmentExecute => post(routes::environments::execute),
        Route::DeployAgent => post(agents::deploy),
        Route::Agents => get(agents::list),
        Route::Agent => get(agents::show).delete(agents::delete),
        Route::AgentRoot => any(agents::agent_root),
        Route::AgentInvoke => any(agents::invoke),
        Route::AgentLogs => any(agents::logs),
        Route::AgentGrants => any(routes::grants::grants),
        Route::AgentCalls => any(routes::grants::calls),
        Route::AgentWallet => any(routes::grants::wallet),
        Route::AgentConfig => any(routes::state::config),
        Route::AgentState => any(routes::state::state),
        Route::AgentStateExport => any(routes::state::export),
        Route::AgentStateImport => any(routes::state::import),
        Route::AgentPath => any(agents::agent_path),
        Route::Search => post(agents::search),
        Route::DiscoveryResources => get(routes::discovery::resources),
        Route::DiscoverySearch => get(routes::discovery::search),
        Route::Executions => get(agents::executions),
        Route::Execution => get(agents::execution),
    }
}

/// `POST` handler running a component on `route`.
fn wasm(route: RouteKind) -> MethodRouter<AppState> {
    post(
        move |State(state): State<AppState>,
              Payment(payment): Payment,
              upload: Upload<ExecuteRequest>| {
            routes::execute_wasm(state, route, payment, upload)
        },
    )
}

/// `POST` handler running a Python script on `route`.
fn python(route: RouteKind) -> MethodRouter<AppState> {
    post(
        move |State(state): State<AppState>,
              Payment(payment): Payment,
              upload: Upload<PythonRequest>| {
            routes::execute_python(state, route, payment, upload)
        },
    )
}
