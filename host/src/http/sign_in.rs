//! Hands the `SIGN-IN-WITH-X` header (x402 sign-in-with-x) of a request to a paid agent's
//! routes to the pipeline (`pipeline::x402::sign_in`), which checks it where the agent's grants
//! take sign-ins. Other routes ignore the header.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use hypervisor_protocol::routes::Route;

use crate::pipeline::sign_in;

/// The routes on which a client may sign in instead of paying: paid agents'.
const SIGNING_IN: [Route; 3] = [Route::AgentInvoke, Route::AgentRoot, Route::AgentPath];

/// The middleware (see the module's text).
pub async fn hand_over(request: Request, next: Next) -> Response {
    let signs_in = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|m| SIGNING_IN.iter().any(|r| r.path() == m.as_str()));
    let presented = signs_in
        .then(|| request.headers().get(x402_siwx::HEADER))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if presented.is_none() {
        return next.run(request).await;
    }
    sign_in::with_header(presented, next.run(request)).await
}
