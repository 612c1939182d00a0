//! Cross-origin calls from browsers (`http.cors_origins`): the layer that answers preflights and
//! marks responses readable by the listed origins, and the origin test the MCP endpoint shares.
//!
//! The protocol carries no ambient credentials (no cookies; owner and payment proofs are in
//! explicit headers and bodies), so credentials are never allowed, request headers are allowed
//! as a preflight asks (agents' own HTTP routes take headers of their choosing), and every
//! response header is exposed (`PAYMENT-REQUIRED`, `PAYMENT-RESPONSE`, `x-execution-id`, …).
//!
//! tower-http's [`CorsLayer`] does the Fetch standard's part. Around it, [`CorsPolicyLayer`]:
//! - hands it only real preflights (`OPTIONS` with `Origin` and
//!   `Access-Control-Request-Method`): any other `OPTIONS` goes to its route, which answers as
//!   it answers without CORS (405 on the API's routes, the agent's own answer under
//!   `/agents/{name}/`), with no CORS headers;
//! - removes every `Access-Control-*` header a handler (an HTTP agent) set itself, so that only
//!   the operator's policy speaks: an agent cannot allow credentials or other origins.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, header};
use tower::{Layer, Service};
use tower_http::cors::{AllowHeaders, AllowOrigin, Cors, CorsLayer, ExposeHeaders};

use crate::config::HttpConfig;

/// How long browsers may cache a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The CORS layer for `config.cors_origins`, or `None` when the list is empty (no CORS headers
/// at all). The list was checked by `Config::validate`; an entry that is not a header value
/// (impossible after that check) is left out.
pub fn layer(config: &HttpConfig) -> Option<CorsPolicyLayer> {
    if config.cors_origins.is_empty() {
        return None;
    }
    let origin = if any_origin(config) {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            config
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    Some(CorsPolicyLayer(
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::DELETE,
                Method::PATCH,
            ])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(ExposeHeaders::any())
            .max_age(PREFLIGHT_MAX_AGE),
    ))
}

/// Whether `origin` (an `Origin` header's value) is one `config.cors_origins` lets in.
pub fn allowed(config: &HttpConfig, origin: &str) -> bool {
    any_origin(config) || config.cors_origins.iter().any(|o| o == origin)
}

fn any_origin(config: &HttpConfig) -> bool {
    config.cors_origins.iter().any(|o| o == "*")
}

/// [`CorsLayer`] for real preflights and for every other request but `OPTIONS`, over routes
/// whose own `Access-Control-*` headers are removed (see the module's text).
#[derive(Clone)]
pub struct CorsPolicyLayer(CorsLayer);

impl<S: Clone> Layer<S> for CorsPolicyLayer {
    type Service = CorsPolicy<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let plain = Stripped(inner);
        CorsPolicy {
            cors: self.0.layer(plain.clone()),
            plain,
        }
    }
}

/// See [`CorsPolicyLayer`].
#[derive(Clone)]
pub struct CorsPolicy<S> {
    cors: Cors<Stripped<S>>,
    plain: Stripped<S>,
}

/// Whether `request` is a CORS preflight (Fetch standard: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`).
fn preflight<B>(request: &Request<B>) -> bool {
    request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ORIGIN)
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl<S> Service<Request<Body>> for CorsPolicy<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        match self.cors.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.plain.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, request: Request<Body>) -> Answer {
        if request.method() == Method::OPTIONS && !preflight(&request) {
            Box::pin(self.plain.call(request))
        } else {
            Box::pin(self.cors.call(request))
        }
    }
}

/// A route whose answers lose the `Access-Control-*` headers it set.
#[derive(Clone)]
struct Stripped<S>(S);

impl<S> Service<Request<Body>> for Stripped<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Answer {
        let answer = self.0.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            let own: Vec<_> = response
                .headers()
                .keys()
                .filter(|name| name.as_str().starts_with("access-control-"))
                .cloned()
                .collect();
            for name in own {
                response.headers_mut().remove(name);
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(origins: &[&str]) -> HttpConfig {
        HttpConfig {
            cors_origins: origins.iter().map(|s| s.to_string()).collect(),
            ..HttpConfig::default()
        }
    }

    #[test]
    fn origins_are_checked_in_browsers_form() {
        for ok in [
            &[][..],
            &["*"],
            &["https://app.example.com"],
            &["http://127.0.0.1:5173", "https://xn--bcher-kva.example"],
            &["http://[::1]:8080"],
        ] {
            assert_eq!(config(ok).check_cors_origins(), Ok(()), "{ok:?}");
        }
        for (bad, says) in [
            (&["*", "https://a.example"][..], "only entry"),
            (&["https://a.example/"], "write \"https://a.example\""),
            (&["https://a.example:443"], "write \"https://a.example\""),
            (&["https://A.example"], "write \"https://a.example\""),
            (&["https://a.example/app"], "no path"),
            (&["a.example"], "not an origin"),
            (&["file:///tmp"], "not an http or https origin"),
            (&["null"], "not an origin"),
            (&["https://a.example", "https://a.example"], "listed twice"),
        ] {
            let err = config(bad).check_cors_origins().unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    /// The layer over a route that counts its calls and sets CORS headers of its own (as an
    /// HTTP agent may): `(status, headers, calls)` for `method` with `headers`.
    async fn through_layer(
        method: Method,
        headers: &[(&str, &str)],
    ) -> (u16, axum::http::HeaderMap, usize) {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tower::ServiceExt;
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let route = tower::service_fn(move |_: Request<Body>| {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Infallible>(
                    Response::builder()
                        .status(299)
                        .header("access-control-allow-origin", "*")
                        .header("access-control-allow-credentials", "true")
                        .header("x-agent", "yes")
                        .body(Body::empty())
                        .unwrap(),
                )
            }
        });
        let service = layer(&config(&["https://a.example"])).unwrap().layer(route);
        let mut request = Request::builder().method(method).uri("/agents/x/");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = service
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.headers().clone(),
            calls.load(Ordering::SeqCst),
        )
    }

    fn cors_headers(headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
        headers
            .iter()
            .filter(|(k, _)| k.as_str().starts_with("access-control-"))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect()
    }

    #[tokio::test]
    async fn only_real_preflights_are_answered_by_the_layer_and_routes_cannot_add_cors_headers() {
        let listed = ("origin", "https://a.example");
        // A real preflight: answered here, the route never runs.
        let (status, headers, calls) = through_layer(
            Method::OPTIONS,
            &[listed, ("access-control-request-method", "POST")],
        )
        .await;
        assert_eq!((status, calls), (200, 0));
        assert_eq!(headers["access-control-allow-origin"], "https://a.example");
        // Any other OPTIONS reaches the route (an HTTP agent's own OPTIONS handler), without
        // CORS headers, its own removed too.
        for extra in [&[listed][..], &[]] {
            let (status, headers, calls) = through_layer(Method::OPTIONS, extra).await;
            assert_eq!((status, calls), (299, 1), "{extra:?}");
            assert_eq!(cors_headers(&headers), vec![], "{extra:?}");
            assert_eq!(headers["x-agent"], "yes");
        }
        // A request from the listed origin: the policy's headers only (no credentials, not the
        // agent's `*`).
        let (status, headers, calls) = through_layer(Method::GET, &[listed]).await;
        assert_eq!((status, calls), (299, 1));
        assert_eq!(
            cors_headers(&headers),
            vec![
                (
                    "access-control-allow-origin".into(),
                    "https://a.example".into()
                ),
                ("access-control-expose-headers".into(), "*".into()),
            ]
        );
        // Another origin: the route runs, and its answer is readable by no page.
        let (_, headers, calls) =
            through_layer(Method::GET, &[("origin", "https://b.example")]).await;
        assert_eq!(calls, 1);
        assert!(!headers.contains_key("access-control-allow-origin"));
        assert!(!headers.contains_key("access-control-allow-credentials"));
    }

    #[test]
    fn allowed_origins() {
        assert!(layer(&config(&[])).is_none());
        let listed = config(&["https://a.example"]);
        assert!(allowed(&listed, "https://a.example"));
        assert!(!allowed(&listed, "https://b.example"));
        assert!(!allowed(&listed, "https://a.example.evil"));
        assert!(allowed(&config(&["*"]), "https://b.example"));
        assert!(!allowed(&config(&[]), "https://a.example"));
    }
}
