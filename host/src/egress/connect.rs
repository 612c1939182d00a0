//! Sending a granted request to a remote origin so that a secret can ride on it:
//!
//! - **Addresses**: a name is resolved once ([`Resolve`]; `egress.hosts` pins names to
//!   addresses without DNS), every address is checked ([`is_public`]), and the connection goes
//!   to the address that passed: a DNS answer that changes between check and use (rebinding)
//!   changes nothing. Loopback, private, link-local (cloud metadata endpoints such as
//!   `169.254.169.254` and `fd00:ec2::254`), shared, multicast and reserved addresses are
//!   refused unless the grant names the address itself (an IP-literal origin).
//! - **Redirects** are never followed here (nor anywhere in `wasi:http`): the guest gets the
//!   3xx, and a request it sends to the `Location` is a new request, checked against its grants
//!   like any other.
//! - **TLS** (`https`): rustls with the Mozilla roots, the certificate checked for the name the
//!   guest asked for, on the connection to the checked address.
//! - **Keep-alive** ([`super::pool`]): a connection is reused only by the agent that opened it,
//!   for the same origin; only connections opened here, to a checked address, are pooled.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use super::pool::{Conn, Driver, Origin, Pool, Returning};

/// Resolves names to addresses.
pub trait Resolve: Send + Sync {
    /// The addresses of `host` (a name, never an IP literal) at `port`.
    fn resolve(
        &self,
        host: String,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>;
}

/// The system's resolver, with the operator's pinned names (`egress.hosts`) first.
pub struct SystemResolver {
    hosts: std::collections::BTreeMap<String, Vec<IpAddr>>,
}

impl SystemResolver {
    /// The resolver with `hosts` pinned.
    pub fn new(hosts: std::collections::BTreeMap<String, Vec<IpAddr>>) -> Self {
        Self {
            hosts: hosts
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        }
    }
}

impl Resolve for SystemResolver {
    fn resolve(
        &self,
        host: String,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>> {
        if let Some(pinned) = self.hosts.get(&host.to_ascii_lowercase()) {
            let addrs = pinned.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
            return Box::pin(async move { Ok(addrs) });
        }
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// Whether `ip` is a public unicast address: not loopback, unspecified, private (RFC 1918,
/// unique local), link-local (cloud metadata), shared (RFC 6598), multicast, broadcast,
/// documentation, benchmarking or reserved. IPv4-mapped and NAT64 IPv6 addresses are judged by
/// the IPv4 address inside.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // 64:ff9b::/96 (NAT64): the IPv4 address in the last 32 bits.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            // 2002::/16 (6to4): the IPv4 address in the second and third groups.
            if s[0] == 0x2002 {
                let [a, b] = s[1].to_be_bytes();
                let [c, d] = s[2].to_be_bytes();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            !(v6.is_loopback()
                // 64:ff9b:1::/48, NAT64 for local use (RFC 8215): a gateway may translate it to
                // any IPv4 address, private ones included, at a place the prefix does not say.
                || s[..3] == [0x64, 0xff9b, 1]
                // 2001::/32, Teredo: relayed to an IPv4 address of the relay's choosing.
                || s[..2] == [0x2001, 0]
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7 (fd00:ec2::254)
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation 2001:db8::/32
                || s[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible ::/96
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0.0/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
        || a >= 240) // reserved 240.0.0.0/4
}

/// Why a request was not sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    /// The name resolved only to addresses that are not public.
    #[error(
        "{host} resolves to {addr}, which is not a public address (name the address in a grant to reach it)"
    )]
    NotPublic {
        /// The name.
        host: String,
        /// The first address it resolved to.
        addr: IpAddr,
    },
    /// The name did not resolve.
    #[error("{host} does not resolve: {why}")]
    Unresolved {
        /// The name.
        host: String,
        /// Why.
        why: String,
    },
}

/// The one address to connect to for `host:port`: an IP literal is itself (the grant named
/// it); a name is resolved once, and the first address `allowed` passes ([`is_public`]) is
/// chosen.
///
/// # Errors
/// [`Refusal`].
async fn pick_with(
    resolver: &dyn Resolve,
    host: &str,
    port: u16,
    allowed: fn(IpAddr) -> bool,
) -> Result<SocketAddr, Refusal> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addrs = resolver
        .resolve(host.to_string(), port)
        .await
        .map_err(|e| Refusal::Unresolved {
            host: host.to_string(),
            why: e.to_string(),
        })?;
    match addrs.iter().find(|a| allowed(a.ip())) {
        Some(addr) => Ok(*addr),
        None => match addrs.first() {
            Some(first) => Err(Refusal::NotPublic {
                host: host.to_string(),
                addr: first.ip(),
            }),
            None => Err(Refusal::Unresolved {
                host: host.to_string(),
                why: "no address".into(),
            }),
        },
    }
}

/// How agents reach remote origins: the resolver, the keep-alive pool, and which resolved
/// addresses may be connected to.
pub(crate) struct Remote {
    resolver: Arc<dyn Resolve>,
    pool: Arc<Pool>,
    /// [`is_public`] (the unit tests widen it to reach their loopback servers by name).
    allowed: fn(IpAddr) -> bool,
    /// [`agents_tls`] over Mozilla's roots (the unit tests' over their own).
    tls: Arc<rustls::ClientConfig>,
}

/// The TLS client configuration of agents' connections: `base` without session resumption.
/// Its tickets and session ids would be shared by every agent (rustls keeps one cache per
/// configuration, keyed by server name), so a server could link one agent's new connection to
/// another's by the ticket it presents; connections are per agent ([`super::pool`]) so that
/// it cannot.
pub(crate) fn agents_tls(base: &rustls::ClientConfig) -> Arc<rustls::ClientConfig> {
    let mut config = base.clone();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

impl Remote {
    /// Remote origins reached through `resolver`, connections kept alive in `pool`.
    pub(crate) fn new(resolver: Arc<dyn Resolve>, pool: Pool) -> Self {
        Self {
            resolver,
            pool: Arc::new(pool),
            allowed: is_public,
            tls: agents_tls(&crate::net::tls_client_config()),
        }
    }

    /// The pool's counters.
    #[cfg(test)]
    pub(crate) fn pool_stats(&self) -> super::pool::PoolStats {
        self.pool.stats()
    }
}

/// The parts of a request needed to send it again (on a new connection, when a pooled one
/// turned out closed).
struct Resend {
    method: http::Method,
    uri: Uri,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Resend {
    fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// Sends `request` (absolute URI) for the agent `partition`: on an idle connection of its own
/// to the same origin if one is open (see [`super::pool`]), else on a new one to the address
/// [`pick_with`] chose for the authority.
///
/// # Errors
/// The `wasi:http` error the guest sees: `destination-IP-prohibited` for a
/// [`Refusal::NotPublic`], `DNS-error` for a name that does not resolve, the connection's
/// errors otherwise.
pub(crate) async fn send(
    remote: &Remote,
    partition: Arc<str>,
    request: Request<Bytes>,
    options: Option<RequestOptions>,
) -> Result<Response<WasiBody>, HttpError> {
    let uri = request.uri().clone();
    let https = uri.scheme_str() == Some("https");
    let host = uri
        .host()
        .ok_or(HttpError::HttpRequestUriInvalid)?
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let timeout = |t: Option<Duration>| t.unwrap_or(Duration::from_secs(600));
    let connect_timeout = timeout(options.and_then(|o| o.connect_timeout));
    let first_byte_timeout = timeout(options.and_then(|o| o.first_byte_timeout));
    let between = timeout(options.and_then(|o| o.between_bytes_timeout));
    let (parts, body) = request.into_parts();
    let mut headers = parts.headers;
    // The request line names the path only; `host` names the origin asked for.
    if let Some(authority) = uri.authority()
        && let Ok(value) = http::HeaderValue::from_str(authority.as_str())
    {
        headers.insert(http::header::HOST, value);
    }
    let resend = Resend {
        method: parts.method,
        uri: Uri::try_from(uri.path_and_query().map_or("/", |p| p.as_str()))
            .map_err(|_| HttpError::HttpRequestUriInvalid)?,
        headers,
        body,
    };
    let origin = Origin {
        partition,
        https,
        host: host.to_ascii_lowercase(),
        port,
    };

    // An idle connection of this agent's to this origin, opened to a checked address.
    if let Some(mut idle) = remote.pool.take(&origin).await {
        tracing::debug!(addr = %idle.addr, "egress request on a kept-alive connection");
        let sent = tokio::time::timeout(
            first_byte_timeout,
            idle.conn.sender.try_send_request(resend.request()),
        )
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)?;
        match sent {
            Ok(response) => {
                let response = remote
                    .pool
                    .returning(response, origin, idle.conn, idle.addr);
                return Ok(wasi_response(response, between));
            }
            // Not sent, or sent and the server had closed the connection meanwhile (its idle
            // timeout): a new connection, if sending again cannot repeat an effect.
            Err(e)
                if e.message().is_some()
                    || (e.error().is_incomplete_message() && resend.method.is_idempotent()) =>
            {
                tracing::debug!(error = %e.error(), "a pooled egress connection was closed; opening another");
            }
            Err(e) => return Err(HttpError::from(e.into_error())),
        }
    }

    let addr = match pick_with(&*remote.resolver, &host, port, remote.allowed).await {
        Ok(addr) => addr,
        Err(refusal @ Refusal::NotPublic { .. }) => {
            // Not the URI: a confidential guest chooses it.
            tracing::debug!(%refusal, "outgoing request refused");
            return Err(HttpError::DestinationIpProhibited);
        }
        Err(Refusal::Unresolved { why, .. }) => {
            return Err(HttpError::DnsError {
                rcode: Some(why),
                info_code: None,
            });
        }
    };
    let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(HttpError::Connect)?;
    remote.pool.opened();
    let mut conn = if https {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let tls = tokio::time::timeout(
            connect_timeout,
            tokio_rustls::TlsConnector::from(remote.tls.clone()).connect(name, tcp),
        )
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(HttpError::Tls)?;
        handshake(TokioIo::new(tls)).await?
    } else {
        handshake(TokioIo::new(tcp)).await?
    };
    let response = tokio::time::timeout(
        first_byte_timeout,
        conn.sender.send_request(resend.request()),
    )
    .await
    .map_err(|_| HttpError::ConnectionReadTimeout)?
    .map_err(HttpError::from)?;
    let response = remote.pool.returning(response, origin, conn, addr);
    Ok(wasi_response(response, between))
}

/// The guest's response: each frame of its body within `between` of the one before.
fn wasi_response(response: Response<Returning>, between: Duration) -> Response<WasiBody> {
    response.map(|b| crate::net::BetweenBytes::new(b, between).boxed_unsync())
}

/// An HTTP/1.1 connection over `io`, driven by a task of its own, stopped when the
/// connection is dropped.
async fn handshake<T>(io: T) -> Result<Conn, HttpError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake(io)
        .await
        .map_err(HttpError::from)?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Conn {
        sender,
        _driver: Driver(task.abort_handle()),
    })
}

#[cfg(test)]
mod tests;
