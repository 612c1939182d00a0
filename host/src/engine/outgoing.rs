//! Outgoing HTTP (`wasi:http/outgoing-handler`): denied by default, granted per store to an
//! explicit list of origins.
//!
//! Every component links against `wasi:http`, so a component built for the `wasi:http/proxy`
//! world instantiates; but a request leaves the host only when its origin (scheme, host and
//! port, compared exactly) is on the store's allow-list. Ordinary executions get an empty list:
//! every request fails with `HTTP-request-denied`. The payments component in facilitator mode
//! gets exactly the facilitator's origin.

use std::sync::Arc;

use http::uri::{Scheme, Uri};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// An origin a store may send requests to: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    https: bool,
    host: String,
    port: u16,
}

/// Why a URL is not a usable origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url:?} is not an http(s) origin: {why}")]
pub struct OriginError {
    url: String,
    why: &'static str,
}

impl Origin {
    /// Parses the origin of an absolute `http://` or `https://` URL (its path is ignored).
    ///
    /// # Errors
    /// [`OriginError`] for anything else (another scheme, no host, user info).
    pub fn parse(url: &str) -> Result<Self, OriginError> {
        let err = |why| OriginError {
            url: url.to_string(),
            why,
        };
        let uri: Uri = url.parse().map_err(|_| err("not a URL"))?;
        Self::of(&uri).ok_or_else(|| err("needs http or https, a host and no user info"))
    }

    /// The origin of a request URI, if it has a supported scheme and a host.
    fn of(uri: &Uri) -> Option<Self> {
        let https = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => false,
            _ => return None,
        };
        let authority = uri.authority()?;
        if authority.as_str().contains('@') {
            return None;
        }
        let host = authority.host();
        if host.is_empty() {
            return None;
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        Some(Self {
            https,
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

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
    fn origins_compare_scheme_host_and_port() {
        let o = Origin::parse("http://127.0.0.1:4021/facilitator").unwrap();
        assert_eq!(o.to_string(), "http://127.0.0.1:4021");
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
        let https = Origin::parse("https://Facilitator.Example").unwrap();
        assert_eq!(https.to_string(), "https://facilitator.example:443");
        assert!(Origin::parse("ftp://x").is_err());
        assert!(Origin::parse("http://user@host").is_err());
        assert!(Origin::parse("not a url").is_err());
    }
}
