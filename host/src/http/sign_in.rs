//! Hands the `SIGN-IN-WITH-X` header (x402 sign-in-with-x) of a client's request to an agent
//! to the pipeline (`pipeline::x402::sign_in`), which checks it where the agent's grants take
//! sign-ins: on `/agents/{name}/invoke` and on every path an HTTP agent serves. Other fronts
//! (A2A, MCP) do not, and their 402s do not declare the extension.

use std::future::Future;

use axum::http::HeaderMap;

use crate::pipeline::sign_in;

/// The sign-in header of a request's `headers`, if any.
pub fn presented(headers: &HeaderMap) -> Option<String> {
    headers
        .get(x402_siwx::HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Runs `work` (a client's request to an agent) with the sign-in header it `presented`.
pub async fn scoped<F: Future>(presented: Option<String>, work: F) -> F::Output {
    sign_in::with_header(presented, work).await
}
