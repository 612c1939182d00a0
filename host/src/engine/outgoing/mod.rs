//! Outgoing HTTP (`wasi:http/outgoing-handler`): denied by default, granted per store to an
//! explicit list of origins, or handed to an [`OutgoingHook`].
//!
//! Every component links against `wasi:http`, so a component built for the `wasi:http/proxy`
//! world instantiates; but a request leaves the host only when its role's [`super::Egress`]
//! (see the table on [`super::Capabilities`]) lets it:
//! - a list of origins (scheme, host and port, compared exactly): a request to one of them is
//!   sent over the network on a keep-alive connection shared with other requests to that origin
//!   ([`pool`]), anything else fails with `HTTP-request-denied`. An empty list, the default,
//!   denies everything;
//! - or a hook: every request goes to it, and it decides. The engine only defines the hook;
//!   agents' egress (grants, in-process calls to other agents, payments) implements it above
//!   the pipeline (`crate::egress`), and the composition root hands it to the stores.

mod pool;

use std::pin::Pin;
use std::sync::Arc;

use http::uri::Uri;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::net::Origin;

/// What an [`OutgoingHook`] answers: the response, or the `wasi:http` error the guest sees.
pub type OutgoingFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<WasiBody>, Error>> + Send>>;

/// Where a store's outgoing requests go when its egress is more than a list of origins.
pub trait OutgoingHook: Send + Sync {
    /// Answers one request the guest sent (its URI is absolute: scheme and authority set).
    fn send(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> OutgoingFuture;
}

/// The outgoing-request hooks of one store: the origins it may reach, or its hook.
#[derive(Default)]
pub struct OutgoingHttp {
    allowed: Arc<[Origin]>,
    hook: Option<Arc<dyn OutgoingHook>>,
}

impl std::fmt::Debug for OutgoingHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingHttp")
            .field("allowed", &self.allowed)
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

impl OutgoingHttp {
    /// Grants requests to `origins` (replacing any earlier grant).
    pub fn allow(&mut self, origins: Arc<[Origin]>) {
        self.allowed = origins;
    }

    /// Hands every request to `hook` (the origins are then not consulted).
    pub fn hook(&mut self, hook: Arc<dyn OutgoingHook>) {
        self.hook = Some(hook);
    }

    fn permits(&self, uri: &Uri) -> bool {
        Origin::of(uri).is_some_and(|o| self.allowed.contains(&o))
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = Result<(), Error>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for OutgoingHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        // `fut` reports how the guest's reading of the response ended; neither path needs it
        // (the pool learns that from the body itself: read to the end, the connection is
        // reused; dropped, closed).
        drop(fut);
        let answer: OutgoingFuture = if let Some(hook) = &self.hook {
            hook.send(request, options)
        } else if self.permits(request.uri()) {
            Box::pin(pool::send(request, options))
        } else {
            // Not the URI: a confidential guest chooses it, and could put plaintext in it.
            tracing::debug!("outgoing HTTP request denied (origin not granted)");
            return Box::new(async { Err(Error::HttpRequestDenied) });
        };
        Box::new(async move {
            // The connection's I/O runs in the pool's or the hook's own tasks: nothing to drive.
            let nothing = Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>;
            Ok((answer.await?, nothing))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_compare_scheme_host_and_port() {
        let o = Origin::parse("http://127.0.0.1:4021/facilitator").unwrap();
        let mut hooks = OutgoingHttp::default();
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert!(
            !hooks.permits(&uri("http://127.0.0.1:4021/verify")),
            "denied by default"
        );
        hooks.allow(Arc::from(vec![o]));
        assert!(hooks.permits(&uri("http://127.0.0.1:4021/verify")));
        assert!(!hooks.permits(&uri("https://127.0.0.1:4021/verify")));
        assert!(!hooks.permits(&uri("http://127.0.0.1:4022/verify")));
        assert!(!hooks.permits(&uri("http://localhost:4021/verify")));
        assert!(!hooks.permits(&uri("/verify")));
    }
}
