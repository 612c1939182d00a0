//! Egress that a secret can safely ride on (`host/src/egress/connect.rs`): redirects are not
//! followed, names that resolve to loopback, private or link-local addresses (cloud metadata
//! endpoints) are refused unless the grant names the address itself, and a name is resolved
//! once, the checked address being the one connected to (the unit test
//! `a_name_is_resolved_once_and_the_checked_address_is_used` drives a resolver whose answer
//! changes between two lookups). The caller is the `caller` guest, calling URLs over the
//! standard `wasi:http/outgoing-handler`.

use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::grants::Grants;
use serde_json::{Value, json};

use crate::agent_state::{Stub, deploy_as};
use crate::harness::TestServer;

fn call(server: &TestServer, url: &str) -> Value {
    let r = server
        .client()
        .invoke("fetcher", json!({"url": url, "method": "GET"}))
        .expect("invoke");
    match (r.result_json(), r.error) {
        (Some(v), _) => v,
        (None, Some(e)) => json!({"error": {"code": e.code, "message": e.message}}),
        (None, None) => panic!("{}", r.stderr),
    }
}

#[test]
fn redirects_are_not_followed_and_private_addresses_need_a_grant_naming_them() {
    let elsewhere = Stub::start(200, &[]);
    let redirecting = Stub::start(302, &[("location", &format!("{}/stolen", elsewhere.url))]);
    let named = Stub::start(200, &[]);
    let port = named.url.rsplit(':').next().unwrap().to_string();
    let server = TestServer::start_with(
        "[egress]\nallow_loopback_http = true\n\
         [egress.hosts]\n\"metadata.test\" = [\"169.254.169.254\"]\n\
         \"loopback.test\" = [\"127.0.0.1\"]\n\"internal.test\" = [\"10.0.0.7\", \"fd00::7\"]\n",
    );
    let owner = ClientSecret::generate().unwrap();
    let grants = Grants {
        origins: vec![
            redirecting.url.clone(),
            named.url.clone(),
            "https://metadata.test".into(),
            format!("https://loopback.test:{port}"),
            "https://internal.test".into(),
        ],
        ..Grants::default()
    };
    deploy_as(&server.client(), &owner, "fetcher", "caller", Some(grants));

    // A granted origin answering a redirect to an origin that is not granted: the guest gets
    // the 302 itself, nothing reaches the other origin, and following it by hand is refused.
    let r = call(&server, &format!("{}/start", redirecting.url));
    assert_eq!(r["responses"][0]["status"], 302, "{r}");
    assert_eq!(redirecting.requests().len(), 1);
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
    let r = call(&server, &format!("{}/stolen", elsewhere.url));
    assert_eq!(r["error"]["message"], "HttpRequestDenied", "{r}");
    assert!(elsewhere.requests().is_empty());

    // Names that resolve to a metadata endpoint, loopback or private addresses: refused before
    // any connection, though the grant names the name.
    for url in [
        "https://metadata.test/latest/meta-data/".to_string(),
        format!("https://loopback.test:{port}/"),
        "https://internal.test/".to_string(),
    ] {
        let r = call(&server, &url);
        assert_eq!(r["error"]["code"], "request_failed", "{url}: {r}");
        assert_eq!(
            r["error"]["message"], "DestinationIpProhibited",
            "{url}: {r}"
        );
    }
    assert!(
        named.requests().is_empty(),
        "loopback.test reached the loopback server"
    );
    // The same loopback server, named by its address in the grant: reached.
    let r = call(&server, &format!("{}/ok", named.url));
    assert_eq!(r["responses"][0]["status"], 200, "{r}");
    assert_eq!(named.requests().len(), 1);
    // And an address that is named nowhere stays denied.
    let r = call(&server, "http://169.254.169.254/latest/meta-data/");
    assert_eq!(r["error"]["message"], "HttpRequestDenied", "{r}");
}

/// A loopback HTTP/1.1 server that keeps connections alive, counting the connections and the
/// requests it served.
struct KeepAliveStub {
    url: String,
    connections: std::sync::Arc<std::sync::atomic::AtomicU32>,
    requests: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl KeepAliveStub {
    fn start() -> Self {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (c, r) = (connections.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line != "\r\n" {
                            continue;
                        }
                        r.fetch_add(1, Ordering::SeqCst);
                        if write!(stream, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            url,
            connections,
            requests,
        }
    }

    fn counts(&self) -> (u32, u32) {
        use std::sync::atomic::Ordering;
        (
            self.connections.load(Ordering::SeqCst),
            self.requests.load(Ordering::SeqCst),
        )
    }
}

fn fetch(server: &TestServer, agent: &str, url: &str, times: u32) -> Value {
    server
        .client()
        .invoke(agent, json!({"url": url, "method": "GET", "times": times}))
        .expect("invoke")
        .result_json()
        .expect("a result")
}

#[test]
fn agents_keep_their_own_connections_alive_across_requests_and_runs() {
    let stub = KeepAliveStub::start();
    // A keep-alive longer than the default 4 s: a loaded machine may be slow between runs.
    let server =
        TestServer::start_with("[egress]\nallow_loopback_http = true\nkeep_alive_ms = 60000\n");
    let owner = ClientSecret::generate().unwrap();
    let grants = Grants {
        origins: vec![stub.url.clone()],
        ..Grants::default()
    };
    deploy_as(
        &server.client(),
        &owner,
        "one",
        "caller",
        Some(grants.clone()),
    );
    deploy_as(&server.client(), &owner, "two", "caller", Some(grants));

    // Five requests in one run, then five more in the next run: one connection.
    for _ in 0..2 {
        let r = fetch(&server, "one", &format!("{}/x", stub.url), 5);
        assert_eq!(r["responses"].as_array().unwrap().len(), 5, "{r}");
        assert!(
            r["responses"]
                .as_array()
                .unwrap()
                .iter()
                .all(|x| x["status"] == 200),
            "{r}"
        );
    }
    assert_eq!(stub.counts(), (1, 10));
    // Another agent to the same origin: a connection of its own.
    fetch(&server, "two", &format!("{}/y", stub.url), 3);
    assert_eq!(stub.counts(), (2, 13));

    // Keep-alive off: a connection per request.
    let off = KeepAliveStub::start();
    let server =
        TestServer::start_with("[egress]\nallow_loopback_http = true\nkeep_alive_ms = 0\n");
    let grants = Grants {
        origins: vec![off.url.clone()],
        ..Grants::default()
    };
    deploy_as(&server.client(), &owner, "one", "caller", Some(grants));
    fetch(&server, "one", &format!("{}/x", off.url), 4);
    assert_eq!(off.counts(), (4, 4));
}
