//! Keep-alive connections for requests to granted origins (a plug-in's, such as the payments
//! component's facilitator).
//!
//! `wasmtime-wasi-http`'s own sender opens a connection per request: a TCP handshake, for
//! `https` a TLS handshake (with a client configuration and its root store built anew each
//! time), and the connection closed after one exchange. A paid request in facilitator mode
//! sends one or two such requests, so each paid request paid for one or two connections.
//! Here every granted request goes through one process-wide pool (hyper-util's client over
//! hyper-rustls): an idle connection to the same origin is reused, and a new one is made only
//! when none is idle.
//!
//! What is shared: connections, between stores whose grants name the same origin. A
//! connection carries one exchange at a time (HTTP/1.1), and goes back to the pool only once
//! its response has been read to the end; a response abandoned half-way closes it. Nothing of
//! one exchange (headers, bodies) reaches another. Agents' egress does not come here (it goes
//! through its hook, which checks every address it connects to).
//!
//! Idle connections are closed after [`IDLE`], shorter than the 5-s keep-alive timeout of
//! Node.js servers (the runtime of the official x402 facilitator), so that the pool rarely
//! hands out a connection its server is about to close; at most [`MAX_IDLE_PER_ORIGIN`] are
//! kept per origin. Rarely, not never: a server may close an idle connection at any time, and
//! hyper-util sends a request again on a new connection only if none of it had been written;
//! one written at the moment the server closed fails (`connection-terminated`), as it would
//! on any keep-alive client.

use std::sync::LazyLock;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use crate::net::BetweenBytes;

/// How long an idle connection is kept.
pub const IDLE: Duration = Duration::from_secs(4);

/// Idle connections kept per origin.
pub const MAX_IDLE_PER_ORIGIN: usize = 32;

/// A timeout the guest left unset (`wasmtime-wasi-http`'s default).
const UNSET_TIMEOUT: Duration = Duration::from_secs(600);

/// Longest a new connection (TCP, and TLS for `https`) may take: the connector is shared, so
/// this bound is the pool's, not each request's (the guest's own `connect-timeout` counts in
/// the budget of [`send`]).
pub const CONNECT: Duration = Duration::from_secs(10);

/// The pool every store's granted requests share.
static POOL: LazyLock<Pool> = LazyLock::new(Pool::new);

/// Sends `request` (absolute URI) over a pooled connection to its origin.
///
/// The guest's `connect-timeout` and `first-byte-timeout` bound together the time until the
/// response's head arrives (the connector is shared by every request, so a guest's connect
/// time cannot be bounded on its own; a new connection also gets at most [`CONNECT`]);
/// `between-bytes-timeout` bounds every wait for the next frame of the body.
///
/// # Errors
/// The `wasi:http` error the guest sees.
pub async fn send(
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<http::Response<WasiBody>, Error> {
    let timeout = |t: Option<Duration>| t.unwrap_or(UNSET_TIMEOUT);
    let head = timeout(options.and_then(|o| o.connect_timeout))
        .saturating_add(timeout(options.and_then(|o| o.first_byte_timeout)));
    let between = timeout(options.and_then(|o| o.between_bytes_timeout));
    let response = tokio::time::timeout(head, POOL.client.request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)?
        .map_err(|e| wasi_error(&e))?;
    Ok(response.map(|body| BetweenBytes::new(body, between).boxed_unsync()))
}

/// hyper-util's client over a TLS-or-plain connector.
struct Pool {
    client: Client<HttpsConnector<HttpConnector>, WasiBody>,
}

impl Pool {
    fn new() -> Self {
        let mut tcp = HttpConnector::new();
        // `https` is the TLS layer's to handle.
        tcp.enforce_http(false);
        // Small requests and answers: nothing gained by Nagle's delay.
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(CONNECT));
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(crate::net::tls_client_config().as_ref().clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE)
            .pool_max_idle_per_host(MAX_IDLE_PER_ORIGIN)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Self { client }
    }
}

/// The `wasi:http` error for a failed exchange: the first cause in its chain that says more
/// than "failed" (the request body's own error, an I/O error, TLS, hyper's verdict).
fn wasi_error(e: &hyper_util::client::legacy::Error) -> Error {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        // The request body failed (wasmtime checks its `Content-Length`): the guest's cause.
        if let Some(body) = s.downcast_ref::<Error>() {
            return match body {
                Error::HttpRequestBodySize(size) => Error::HttpRequestBodySize(*size),
                other => Error::InternalError(Some(other.to_string())),
            };
        }
        if s.downcast_ref::<rustls::pki_types::InvalidDnsNameError>()
            .is_some()
        {
            return Error::InvalidDnsNameError(rustls::pki_types::InvalidDnsNameError);
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if holds_tls_error(io) {
                return Error::Tls(std::io::Error::new(io.kind(), io.to_string()));
            }
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => Error::ConnectionRefused,
                std::io::ErrorKind::TimedOut => Error::ConnectionTimeout,
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => {
                    Error::ConnectionTerminated
                }
                _ if e.is_connect() => {
                    Error::Connect(std::io::Error::new(io.kind(), io.to_string()))
                }
                _ => Error::InternalError(Some(io.to_string())),
            };
        }
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_user() {
                // The request body's error, if any, is below: keep looking.
                source = s.source();
                continue;
            }
            return if h.is_incomplete_message() {
                Error::HttpResponseIncomplete
            } else if h.is_parse() {
                Error::HttpProtocolError
            } else if h.is_timeout() {
                Error::ConnectionReadTimeout
            } else if h.is_closed() || h.is_canceled() {
                Error::ConnectionTerminated
            } else {
                Error::InternalError(Some(h.to_string()))
            };
        }
        source = s.source();
    }
    if e.is_connect() {
        Error::Connect(std::io::Error::other(e.to_string()))
    } else {
        Error::InternalError(Some(e.to_string()))
    }
}

/// Whether a rustls error is inside `io` (tokio-rustls and hyper-rustls wrap it in one or two
/// `io::Error`s, whose `source` skips the wrapped error itself).
fn holds_tls_error(io: &std::io::Error) -> bool {
    let mut inner = io.get_ref();
    while let Some(e) = inner {
        if e.is::<rustls::Error>() {
            return true;
        }
        inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref);
    }
    false
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty, Full};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn get(url: &str) -> http::Request<WasiBody> {
        http::Request::get(url)
            .body(Empty::new().map_err(|e| match e {}).boxed_unsync())
            .unwrap()
    }

    /// An HTTP/1.1 server on loopback answering `body` to every request; counts connections.
    async fn server(body: &'static str) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                let service = hyper::service::service_fn(move |_| async move {
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                        Bytes::from_static(body.as_bytes()),
                    )))
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        (url, connections)
    }

    #[tokio::test]
    async fn requests_to_one_origin_reuse_its_connection() {
        let (url, connections) = server("pong").await;
        for _ in 0..3 {
            let response = send(get(&format!("{url}/ping")), None).await.unwrap();
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"pong");
        }
        assert_eq!(
            connections.load(Ordering::SeqCst),
            1,
            "one connection, reused"
        );
    }

    #[tokio::test]
    async fn a_response_dropped_unread_closes_its_connection() {
        // Large enough not to arrive with the head: the connection is mid-body when dropped.
        let big: &'static str = Box::leak("x".repeat(4 << 20).into_boxed_str());
        let (url, connections) = server(big).await;
        let response = send(get(&format!("{url}/")), None).await.unwrap();
        drop(response);
        let response = send(get(&format!("{url}/")), None).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.len(), big.len(), "the next exchange is whole");
        assert_eq!(
            connections.load(Ordering::SeqCst),
            2,
            "a connection abandoned mid-body is not reused"
        );
    }

    #[tokio::test]
    async fn a_stalled_body_times_out_between_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 1024];
            let _ = stream.read(&mut head).await;
            // The head and 2 of 10 bytes, then nothing.
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nab")
                .await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let options = RequestOptions {
            between_bytes_timeout: Some(Duration::from_millis(200)),
            ..RequestOptions::default()
        };
        let response = send(get(&url), Some(options)).await.unwrap();
        let error = response.into_body().collect().await.unwrap_err();
        assert!(
            matches!(error, Error::ConnectionReadTimeout),
            "got {error:?}"
        );
    }

    #[tokio::test]
    async fn a_tls_failure_is_a_tls_error() {
        // A plain-HTTP server asked for TLS: the handshake fails on its answer.
        let (url, _) = server("not tls").await;
        let url = url.replace("http://", "https://");
        let error = send(get(&format!("{url}/")), None).await.unwrap_err();
        assert!(matches!(error, Error::Tls(_)), "got {error:?}");
    }

    #[tokio::test]
    async fn a_closed_port_is_connection_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let error = send(get(&url), None).await.unwrap_err();
        assert!(matches!(error, Error::ConnectionRefused), "got {error:?}");
    }
}
