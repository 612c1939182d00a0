//! Serving one HTTP request with a `wasi:http/proxy` component: a fresh store and instance per
//! request (as `wasmtime serve` does), in an execution slot, under the request's limits.
//!
//! The guest runs in a task of its own: it may keep streaming the response body after it has
//! set the response, so the response is returned as soon as the guest sets it, and the run's
//! outcome (status, stderr, duration) arrives when the guest finishes.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hypervisor_protocol::wire::ExitStatus;
use tokio::task::JoinHandle;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::run::{RunLimits, RunOutcome, classify_error};
use super::{Engine, EngineError, Prepared};

/// The guest's response.
pub type HttpResponse = http::Response<HyperOutgoingBody>;

/// Why the guest produced no response.
#[derive(Debug, thiserror::Error)]
pub enum HttpAgentError {
    /// The engine could not run it.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The guest answered with a `wasi:http` error code instead of a response.
    #[error("the agent failed the request: {0:?}")]
    Guest(ErrorCode),
    /// The guest stopped (trap, limits) before setting a response.
    #[error("the agent stopped before responding ({0:?})")]
    Stopped(ExitStatus),
}

impl Engine {
    /// Serves `request` with the prepared proxy component, in a store with `capabilities`
    /// (those of [`super::Role::HttpAgent`], with the agent's egress). Returns the response as soon as the
    /// guest sets it, and a handle that yields the run's outcome when the guest finishes.
    ///
    /// The guest reads at most `max_body` bytes of the request body: past that its body stream
    /// fails with `HTTP-request-body-size`, the standard `wasi:http` error.
    ///
    /// # Errors
    /// [`HttpAgentError`] when there is no response to return.
    pub async fn serve_http<B>(
        self: &Arc<Self>,
        capabilities: &super::Capabilities,
        prepared: Arc<Prepared>,
        request: http::Request<B>,
        max_body: usize,
        limits: RunLimits,
    ) -> Result<(HttpResponse, JoinHandle<RunOutcome>), HttpAgentError>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if prepared.http.is_none() {
            return Err(EngineError::NotAnHttpAgent.into());
        }
        let slot = self.owned_execution_slot().await?;
        let mut sandbox = self.sandbox(capabilities, Default::default(), limits, prepared.hash)?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let internal = |e: wasmtime::Error| EngineError::Internal(e.to_string());
        // A body over the bound is `HTTP-request-body-size`; a client that fails mid-body is an
        // I/O error on the guest's body stream.
        let request = request.map(|body| {
            BodyExt::map_err(Limited::new(body, max_body), move |e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    ErrorCode::HttpRequestBodySize(Some(max_body as u64))
                } else {
                    ErrorCode::InternalError(Some(e.to_string()))
                }
            })
        });
        let view = sandbox.store().data_mut();
        let req = view
            .http()
            .new_incoming_request(Scheme::Http, request)
            .map_err(internal)?;
        let out = view
            .http()
            .new_response_outparam(sender)
            .map_err(internal)?;
        let engine = self.clone();
        let run = tokio::spawn(async move {
            let _slot = slot;
            let (result, duration) = sandbox
                .run(&engine, async |store| {
                    let Some(pre) = &prepared.http else {
                        return Err(wasmtime::Error::msg("not an HTTP agent"));
                    };
                    let proxy = pre.instantiate_async(&mut *store).await?;
                    proxy
                        .wasi_http_incoming_handler()
                        .call_handle(&mut *store, req, out)
                        .await
                })
                .await;
            let (status, trap) = match result {
                None => (ExitStatus::TimeLimitExceeded, None),
                Some(Ok(())) => (ExitStatus::Exited, None),
                Some(Err(e)) => classify_error(&e, sandbox.memory_refused()),
            };
            let code = (status == ExitStatus::Exited).then_some(0);
            sandbox.finish(status, code, trap, duration)
        });
        match receiver.await {
            Ok(Ok(response)) => Ok((response, run)),
            Ok(Err(code)) => {
                drop(run);
                Err(HttpAgentError::Guest(code))
            }
            // The guest dropped the outparam without setting it: it stopped.
            Err(_) => {
                let outcome = run
                    .await
                    .map_err(|e| EngineError::Internal(format!("agent task failed: {e}")))?;
                Err(HttpAgentError::Stopped(outcome.status))
            }
        }
    }
}
