//! Outgoing HTTP (`wasi:http/outgoing-handler`): denied by default, granted per store to an
//! explicit list of origins.
//!
//! Every component links against `wasi:http`, so a component built for the `wasi:http/proxy`
//! world instantiates; but a request leaves the host only when its origin (scheme, host and
//! port, compared exactly) is on the store's allow-list, its role's [`super::Egress`] (see the
//! table on [`super::Capabilities`]). An empty list, the default, fails every request with
//! `HTTP-request-denied`.

use std::sync::Arc;

use http::uri::Uri;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::net::Origin;

/// The outgoing-request hooks of one store: the origins it may reach.
#[derive(Debug, Default)]
pub struct OutgoingHttp {
    allowed: Arc<[Origin]>,
}

impl OutgoingHttp {
    /// Grants requests to `origins` (replacing any earlier grant).
    pub fn allow(&mut self, origins: Arc<[Origin]>) {
        self.allowed = origins;
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
        if !self.permits(request.uri()) {
            // Not the URI: a confidential guest chooses it, and could put plaintext in it.
            tracing::debug!("outgoing HTTP request denied (origin not granted)");
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        wasmtime_wasi_http::default_hooks().send_request(request, options, fut)
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
