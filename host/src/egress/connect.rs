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

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

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
            !(v6.is_loopback()
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
/// it); a name is resolved once, and the first public address is chosen.
///
/// # Errors
/// [`Refusal`].
pub async fn pick(resolver: &dyn Resolve, host: &str, port: u16) -> Result<SocketAddr, Refusal> {
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
    match addrs.iter().find(|a| is_public(a.ip())) {
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

/// Sends `request` (absolute URI) to the address [`pick`] chose for its authority.
///
/// # Errors
/// The `wasi:http` error the guest sees: `destination-IP-prohibited` for a
/// [`Refusal::NotPublic`], `DNS-error` for a name that does not resolve, the connection's
/// errors otherwise.
pub async fn send(
    resolver: &dyn Resolve,
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
    let addr = match pick(resolver, &host, port).await {
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
    let timeout = |t: Option<Duration>| t.unwrap_or(Duration::from_secs(600));
    let connect_timeout = timeout(options.and_then(|o| o.connect_timeout));
    let first_byte_timeout = timeout(options.and_then(|o| o.first_byte_timeout));
    let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(HttpError::Connect)?;
    let (mut parts, body) = request.into_parts();
    // The request line names the path only; `host` names the origin asked for.
    parts.uri = Uri::try_from(uri.path_and_query().map_or("/", |p| p.as_str()))
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    if let Some(authority) = uri.authority()
        && let Ok(value) = http::HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(http::header::HOST, value);
    }
    let request = Request::from_parts(parts, Full::new(body));
    let response = if https {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let tls = tokio::time::timeout(
            connect_timeout,
            tokio_rustls::TlsConnector::from(crate::net::tls_client_config()).connect(name, tcp),
        )
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(HttpError::Tls)?;
        exchange(TokioIo::new(tls), request, first_byte_timeout).await?
    } else {
        exchange(TokioIo::new(tcp), request, first_byte_timeout).await?
    };
    Ok(response)
}

async fn exchange<T>(
    io: T,
    request: Request<Full<Bytes>>,
    first_byte_timeout: Duration,
) -> Result<Response<WasiBody>, HttpError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake(io)
        .await
        .map_err(HttpError::from)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)?
        .map_err(HttpError::from)?;
    Ok(response.map(|b| b.map_err(HttpError::from).boxed_unsync()))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        let private = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "192.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
            "ff02::1",
        ];
        for ip in private {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    /// Answers from a script, one answer per call, counting calls.
    struct Scripted {
        answers: Mutex<Vec<Vec<IpAddr>>>,
        calls: Mutex<u32>,
    }

    impl Resolve for Scripted {
        fn resolve(
            &self,
            _host: String,
            port: u16,
        ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>> {
            *self.calls.lock().unwrap() += 1;
            let next = self.answers.lock().unwrap().remove(0);
            Box::pin(async move {
                Ok(next
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, port))
                    .collect())
            })
        }
    }

    /// A name that resolves to a public address at the check and to loopback afterwards (DNS
    /// rebinding): it is resolved once, and the address checked is the address returned.
    #[tokio::test]
    async fn a_name_is_resolved_once_and_the_checked_address_is_used() {
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        let resolver = Scripted {
            answers: Mutex::new(vec![vec![public], vec!["127.0.0.1".parse().unwrap()]]),
            calls: Mutex::new(0),
        };
        let addr = pick(&resolver, "rebind.example", 443).await.unwrap();
        assert_eq!(addr, SocketAddr::new(public, 443));
        assert_eq!(*resolver.calls.lock().unwrap(), 1);
        // The next lookup would have said loopback: refused when checked.
        let refused = pick(&resolver, "rebind.example", 443).await.unwrap_err();
        assert!(matches!(refused, Refusal::NotPublic { .. }), "{refused}");
        // Among mixed answers, only a public one is chosen.
        let mixed = Scripted {
            answers: Mutex::new(vec![vec!["10.0.0.1".parse().unwrap(), public]]),
            calls: Mutex::new(0),
        };
        assert_eq!(
            pick(&mixed, "mixed.example", 80).await.unwrap().ip(),
            public
        );
        // An IP literal is what the grant named: never resolved, never refused.
        let none = Scripted {
            answers: Mutex::new(vec![]),
            calls: Mutex::new(0),
        };
        assert_eq!(
            pick(&none, "127.0.0.1", 8080).await.unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            pick(&none, "[::1]", 80).await.unwrap().ip(),
            "::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(*none.calls.lock().unwrap(), 0);
    }
}
