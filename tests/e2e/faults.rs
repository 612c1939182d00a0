//! Faults from clients: connections dropped mid-request (during the body, during a run),
//! sessions opened and abandoned, and bodies over the bound streamed to HTTP agents. The host
//! keeps serving everyone else and frees what the abandoned requests held.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hypervisor_client::ExecuteInput;
use hypervisor_client::agents::Deployment;
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::wire::Limits;

use crate::harness::{TestServer, metric, run, session, wasm};

/// Opens a connection, writes `head` and `body`, and closes it without reading the answer.
fn send_and_drop(server: &TestServer, head: &str, body: &[u8]) {
    let addr = server.url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(body).expect("body");
    drop(s);
}

#[test]
fn clients_that_disconnect_mid_body_or_mid_run_cost_others_nothing_and_free_their_slots() {
    let server = TestServer::start();
    let (_client, _key, s) = session(&server);

    // 1. Bodies cut short: the head promises 200 kB, 1 kB arrives, the connection closes.
    for _ in 0..40 {
        send_and_drop(
            &server,
            "POST /test/execute/wasm HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             content-length: 200000\r\n\r\n",
            &[b'{'; 1000],
        );
    }

    // 2. Whole requests for a guest that spins until its time limit, abandoned as soon as
    //    they are sent.
    let spin = wasm("endless-loop");
    let limits = Limits {
        time_ms: Some(3000),
        ..Limits::default()
    };
    let (req, _) = s
        .encrypt_execution(&ExecuteInput::new(&spin).limits(limits))
        .unwrap();
    let body = serde_json::to_vec(&req).unwrap();
    let head = format!(
        "POST /test/execute/wasm HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    let abandoned_at = Instant::now();
    for _ in 0..12 {
        send_and_drop(&server, &head, &body);
    }

    // Meanwhile everyone else is served.
    for _ in 0..5 {
        let out = run(&server, "hello", &["still", "here"]);
        assert_eq!(out.result.exit_code, Some(0));
    }

    // The abandoned runs end by their deadline at the latest: every slot is free again.
    let deadline = abandoned_at + Duration::from_secs(30);
    loop {
        let live = metric(&server, "hypervisor_live_instances");
        if live == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{live} instances still running 30 s after their clients left"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Nothing panicked or hung, and the server still answers.
    assert_eq!(server.client().ping().unwrap(), "pong");
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_flood_of_abandoned_sessions_displaces_idle_ones_and_never_locks_clients_out() {
    let server = TestServer::start_with("[sessions]\nttl_seconds = 3\nmax_sessions = 64\n");
    let client = server.client();
    // A session in use throughout the flood.
    let (_, _key, mine) = session(&server);

    // 200 sessions opened and never used, over three times the table: none is refused, the
    // table never grows past its maximum, and the session in use is never the one displaced.
    for i in 0..200 {
        client
            .create_session(&ClientSecret::generate().unwrap())
            .unwrap();
        if i % 20 == 19 {
            let out = client
                .execute(&mine, &ExecuteInput::new(&wasm("hello")))
                .unwrap();
            assert_eq!(out.result.exit_code, Some(0), "after {} sessions", i + 1);
        }
    }
    assert_eq!(metric(&server, "hypervisor_live_sessions"), 64.0);
    assert_eq!(
        metric(&server, "hypervisor_sessions_evicted_total"),
        201.0 - 64.0
    );

    // Once their lifetime is over the abandoned sessions are dropped (the sweeper runs every
    // `ttl_seconds`), and the table is empty again.
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&server, "hypervisor_live_sessions") > 0.0 {
        assert!(
            Instant::now() < deadline,
            "abandoned sessions were never dropped"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let (_, _, fresh) = session(&server);
    let out = client
        .execute(&fresh, &ExecuteInput::new(&wasm("hello")))
        .unwrap();
    assert_eq!(out.result.exit_code, Some(0));
}

/// Writes one raw HTTP/1.1 request (which must ask for `Connection: close`) and reads the
/// whole answer: the status and everything after the head. Write errors are ignored: the host
/// may answer, and close, before a body it refuses has been sent.
fn exchange(server: &TestServer, head: &str, body: &[u8]) -> (u16, String) {
    let addr = server.url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let _ = s
        .write_all(head.as_bytes())
        .and_then(|()| s.write_all(body));
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    let rest = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, rest.to_string())
}

/// `data` in HTTP/1.1 chunked encoding, in chunks of 16 KiB.
fn chunked(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in data.chunks(16 << 10) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[test]
fn http_agent_request_bodies_are_bounded_like_every_other_body() {
    let server = TestServer::start_with("[http]\nmax_body_bytes = 262144\n");
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let web = wasm("http-hello");
    let deployment = Deployment {
        name: "web",
        component: &web,
        ..Deployment::default()
    };
    client.deploy_agent(&owner, &deployment).unwrap();
    let json = |n: usize| format!("\"{}\"", "a".repeat(n)).into_bytes();
    let post = |framing: &str| {
        format!(
            "POST /agents/web/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             {framing}\r\nConnection: close\r\n\r\n"
        )
    };

    // Within the bound, streamed in chunks: the agent reads all of it.
    let (status, body) = exchange(
        &server,
        &post("Transfer-Encoding: chunked"),
        &chunked(&json(200_000)),
    );
    let head = &body[..body.len().min(300)];
    assert_eq!(status, 200, "{head}");
    assert!(body.contains(&"a".repeat(200_000)), "{head}");

    // Declared over the bound: the host refuses it before the agent runs.
    let big = json(300_000);
    let (status, body) = exchange(
        &server,
        &post(&format!("Content-Length: {}", big.len())),
        &big,
    );
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("\"body_too_large\""), "{body}");

    // Undeclared (chunked) and over the bound: the agent's body stream fails once the bound is
    // passed (`HTTP-request-body-size`), and this agent answers 400 `bad_body`.
    let (status, body) = exchange(&server, &post("Transfer-Encoding: chunked"), &chunked(&big));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"bad_body\""), "{body}");

    // The host is unharmed.
    assert_eq!(client.ping().unwrap(), "pong");
}
