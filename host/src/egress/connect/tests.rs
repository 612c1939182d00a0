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
        "64:ff9b:1::a00:1",
        "64:ff9b:1:a00:1::",
        "2002:7f00:1::1",
        "2002:a9fe:a9fe::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    ];
    for ip in private {
        assert!(!is_public(ip.parse().unwrap()), "{ip}");
    }
    for ip in [
        "93.184.216.34",
        "1.1.1.1",
        "2606:4700::1111",
        "::ffff:8.8.8.8",
        "2002:0808:0808::1",
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
    let addr = pick_with(&resolver, "rebind.example", 443, is_public)
        .await
        .unwrap();
    assert_eq!(addr, SocketAddr::new(public, 443));
    assert_eq!(*resolver.calls.lock().unwrap(), 1);
    // The next lookup would have said loopback: refused when checked.
    let refused = pick_with(&resolver, "rebind.example", 443, is_public)
        .await
        .unwrap_err();
    assert!(matches!(refused, Refusal::NotPublic { .. }), "{refused}");
    // Among mixed answers, only a public one is chosen.
    let mixed = Scripted {
        answers: Mutex::new(vec![vec!["10.0.0.1".parse().unwrap(), public]]),
        calls: Mutex::new(0),
    };
    assert_eq!(
        pick_with(&mixed, "mixed.example", 80, is_public)
            .await
            .unwrap()
            .ip(),
        public
    );
    // An IP literal is what the grant named: never resolved, never refused.
    let none = Scripted {
        answers: Mutex::new(vec![]),
        calls: Mutex::new(0),
    };
    assert_eq!(
        pick_with(&none, "127.0.0.1", 8080, is_public)
            .await
            .unwrap(),
        "127.0.0.1:8080".parse().unwrap()
    );
    assert_eq!(
        pick_with(&none, "[::1]", 80, is_public).await.unwrap().ip(),
        "::1".parse::<IpAddr>().unwrap()
    );
    assert_eq!(*none.calls.lock().unwrap(), 0);
}

/// A loopback HTTP/1.1 server that keeps connections alive (unless `close`), counting the
/// connections it accepted; `/redirect` answers 302 to `location`.
struct KeepAlive {
    port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl KeepAlive {
    async fn start(close: bool, location: &'static str) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |r: Request<hyper::body::Incoming>| async move {
                            let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                            if r.uri().path() == "/redirect" {
                                *response.status_mut() = http::StatusCode::FOUND;
                                response
                                    .headers_mut()
                                    .insert("location", http::HeaderValue::from_static(location));
                            }
                            if close {
                                response
                                    .headers_mut()
                                    .insert("connection", http::HeaderValue::from_static("close"));
                            }
                            Ok::<_, std::convert::Infallible>(response)
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { port, accepted }
    }

    fn accepted(&self) -> u32 {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// 127.0.0.1 stands for a public address in these tests; every other address is private.
fn only_127_0_0_1(ip: IpAddr) -> bool {
    ip == IpAddr::from([127, 0, 0, 1])
}

fn remote_with(resolver: &Arc<Scripted>, keep_alive_ms: u64) -> Remote {
    remote_bounded(resolver, keep_alive_ms, 8)
}

fn remote_bounded(resolver: &Arc<Scripted>, keep_alive_ms: u64, max_idle: usize) -> Remote {
    Remote {
        resolver: resolver.clone(),
        pool: Arc::new(Pool::new(Duration::from_millis(keep_alive_ms), max_idle)),
        allowed: only_127_0_0_1,
        tls: agents_tls(&crate::net::tls_client_config()),
    }
}

fn scripted(answers: &[&[&str]]) -> Arc<Scripted> {
    Arc::new(Scripted {
        answers: Mutex::new(
            answers
                .iter()
                .map(|a| a.iter().map(|ip| ip.parse().unwrap()).collect())
                .collect(),
        ),
        calls: Mutex::new(0),
    })
}

/// One GET for `agent`, its body read to the end (which frees the connection for the pool).
async fn get(remote: &Remote, agent: &str, url: &str) -> Result<u16, HttpError> {
    let request = Request::get(url).body(Bytes::new()).unwrap();
    let response = send(remote, agent.into(), request, None).await?;
    let status = response.status().as_u16();
    response.into_body().collect().await.unwrap();
    Ok(status)
}

/// Waits until the pool holds `n` idle connections (a connection goes back once its response
/// has been read, from a task of its own).
async fn idle(remote: &Remote, n: usize) {
    for _ in 0..500 {
        if remote.pool.idle_count() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} idle connections, not {n}", remote.pool.idle_count());
}

/// Rebinding with keep-alive: the name is resolved and checked when a connection is opened;
/// the agent's next requests reuse that connection (to the checked address) without asking
/// DNS again, and a connection opened later (another agent's) is resolved and checked again,
/// refused when the name has moved to a private address.
#[tokio::test]
async fn a_pooled_connection_goes_to_the_address_checked_when_it_was_opened() {
    let server = KeepAlive::start(false, "http://127.0.0.2/").await;
    let url = format!("http://rebind.test:{}/", server.port);
    let dns = scripted(&[&["127.0.0.1"], &["127.0.0.2"]]);
    let remote = remote_with(&dns, 30_000);
    assert_eq!(get(&remote, "owner/a", &url).await.unwrap(), 200);
    idle(&remote, 1).await;
    for _ in 0..3 {
        assert_eq!(get(&remote, "owner/a", &url).await.unwrap(), 200);
    }
    assert_eq!(server.accepted(), 1);
    assert_eq!(remote.pool_stats().opened, 1);
    assert_eq!(remote.pool_stats().reused, 3);

    // Another agent never gets agent a's connection: its own is resolved now, to a private
    // address, and refused.
    let refused = get(&remote, "owner/b", &url).await.unwrap_err();
    assert!(
        matches!(refused, HttpError::DestinationIpProhibited),
        "{refused:?}"
    );
    assert_eq!(server.accepted(), 1);
    // Agent a still reaches the address checked for it.
    idle(&remote, 1).await;
    assert_eq!(get(&remote, "owner/a", &url).await.unwrap(), 200);
    assert_eq!(*dns.calls.lock().unwrap(), 2);
}

/// A redirect to a private address on a pooled connection is the guest's 302, never followed.
#[tokio::test]
async fn redirects_are_handed_back_not_followed() {
    let server = KeepAlive::start(false, "http://127.0.0.2:9/stolen").await;
    let url = format!("http://redirect.test:{}/redirect", server.port);
    let dns = scripted(&[&["127.0.0.1"]]);
    let remote = remote_with(&dns, 30_000);
    for _ in 0..2 {
        assert_eq!(get(&remote, "owner/a", &url).await.unwrap(), 302);
        idle(&remote, 1).await;
    }
    assert_eq!(server.accepted(), 1);
    assert_eq!(*dns.calls.lock().unwrap(), 1);
}

/// Keep-alive off, or a server that closes: a new connection (resolved and checked) each time.
#[tokio::test]
async fn without_keep_alive_every_request_opens_a_checked_connection() {
    let server = KeepAlive::start(false, "/").await;
    let url = format!("http://off.test:{}/", server.port);
    let dns = scripted(&[&["127.0.0.1"], &["127.0.0.1"], &["127.0.0.1"]]);
    let remote = remote_with(&dns, 0);
    for _ in 0..3 {
        assert_eq!(get(&remote, "owner/a", &url).await.unwrap(), 200);
    }
    assert_eq!(server.accepted(), 3);
    assert_eq!(*dns.calls.lock().unwrap(), 3);

    let closing = KeepAlive::start(true, "/").await;
    let url = format!("http://closing.test:{}/", closing.port);
    let dns = scripted(&[&["127.0.0.1"], &["127.0.0.1"]]);
    let remote = remote_with(&dns, 30_000);
    for _ in 0..2 {
        assert_eq!(get(&remote, "owner/a", &url).await.unwrap(), 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(closing.accepted(), 2);
    assert_eq!(remote.pool_stats().reused, 0);
}

/// The pool keeps `max_idle_connections` in all: the one idle longest is closed first.
#[tokio::test]
async fn idle_connections_are_bounded_and_the_oldest_gives_way() {
    let server = KeepAlive::start(false, "/").await;
    let url = format!("http://bounded.test:{}/", server.port);
    let one: &[&str] = &["127.0.0.1"];
    let dns = scripted(&[one; 4]);
    let remote = remote_bounded(&dns, 30_000, 2);
    for agent in ["owner/a", "owner/b", "owner/c"] {
        assert_eq!(get(&remote, agent, &url).await.unwrap(), 200);
    }
    idle(&remote, 2).await;
    // a's connection was closed to make room: a opens another; c reuses its own.
    assert_eq!(get(&remote, "owner/c", &url).await.unwrap(), 200);
    assert_eq!(get(&remote, "owner/a", &url).await.unwrap(), 200);
    assert_eq!(server.accepted(), 4);
    assert_eq!(remote.pool_stats().reused, 1);
}

/// A server that answers a POST at once, before reading its body, then stops reading and
/// never closes: the connection's task (still writing the body) stops within a moment
/// instead of going on, and the connection is not kept. Before, it went back to the pool
/// with its task writing: the server got the whole body and the connection stayed open.
#[tokio::test]
async fn a_server_that_answers_early_and_stops_reading_does_not_keep_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const BODY: usize = 16 << 20;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    let listener = socket.listen(1).unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        // Not reading: the client's writes stall.
        tokio::time::sleep(Duration::from_secs(3)).await;
        // Then everything that comes, until the client closes (or 10 s).
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got += n,
                }
            }
        })
        .await
        .is_ok();
        (ended, got)
    });
    let dns = scripted(&[&["127.0.0.1"]]);
    let remote = remote_with(&dns, 30_000);
    let request = Request::post(format!("http://early.test:{port}/upload"))
        .body(Bytes::from(vec![b'x'; BODY]))
        .unwrap();
    let response = send(&remote, "owner/a".into(), request, None)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();
    let (ended, got) = server.await.unwrap();
    assert!(
        ended,
        "the connection stayed open ({got} bytes of the body came)"
    );
    assert!(got < BODY, "the whole body was written ({got} bytes)");
    assert_eq!(remote.pool.idle_count(), 0, "not kept");
}

/// Two agents' connections to one `https` origin: the second is a full TLS handshake, not one
/// resumed with a ticket the server gave the first agent (which would let the server link
/// the two). Before, agents' connections shared one rustls configuration and its cache.
#[tokio::test]
async fn agents_never_resume_each_others_tls_sessions() {
    let cert = rcgen::generate_simple_self_signed(vec!["tls.test".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let seen = kinds.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                seen.lock().unwrap().push(tls.get_ref().1.handshake_kind());
                let service =
                    hyper::service::service_fn(|_r: Request<hyper::body::Incoming>| async {
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let base = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let one: &[&str] = &["127.0.0.1"];
    let mut remote = remote_with(&scripted(&[one; 2]), 30_000);
    remote.tls = agents_tls(&base);
    let url = format!("https://tls.test:{port}/");
    for agent in ["owner/a", "owner/b"] {
        assert_eq!(get(&remote, agent, &url).await.unwrap(), 200);
    }
    let kinds = kinds.lock().unwrap().clone();
    assert_eq!(
        kinds,
        vec![Some(rustls::HandshakeKind::Full); 2],
        "each agent's connection is a full handshake"
    );
}

/// A body that stalls after its first bytes fails with the guest's `between-bytes-timeout`
/// instead of waiting for the run's deadline (before, agents' requests ignored it).
#[tokio::test]
async fn a_stalled_body_fails_after_the_between_bytes_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).await;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nab")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let remote = remote_with(&scripted(&[&["127.0.0.1"]]), 30_000);
    let options = RequestOptions {
        connect_timeout: None,
        first_byte_timeout: None,
        between_bytes_timeout: Some(Duration::from_millis(200)),
    };
    let request = Request::get(format!("http://stall.test:{port}/"))
        .body(Bytes::new())
        .unwrap();
    let response = send(&remote, "owner/a".into(), request, Some(options))
        .await
        .unwrap();
    let read = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .expect("the body failed before 10 s");
    assert!(
        matches!(read, Err(HttpError::ConnectionReadTimeout)),
        "{:?}",
        read.map(|b| b.to_bytes())
    );
    assert_eq!(remote.pool.idle_count(), 0);
}
