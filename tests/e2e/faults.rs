//! Faults from clients: connections dropped mid-request (during the body, during a run) and
//! sessions opened and abandoned. The host keeps serving everyone else and frees what the
//! abandoned requests held.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hypervisor_client::ExecuteInput;
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::wire::Limits;

use crate::harness::{TestServer, code, metric, run, session, wasm};

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
fn abandoned_sessions_fill_the_table_then_expire_and_live_ones_keep_working() {
    let server = TestServer::start_with("[sessions]\nttl_seconds = 3\nmax_sessions = 60\n");
    let client = server.client();
    // A session in use before the flood.
    let (_, _key, mine) = session(&server);

    // 59 more sessions, opened and never used; the next one is refused with a clear error.
    for _ in 0..59 {
        client
            .create_session(&ClientSecret::generate().unwrap())
            .unwrap();
    }
    let (status, body) = client
        .post_json(
            "/encrypt/create_keypair",
            &serde_json::json!({ "pubkey": ClientSecret::generate().unwrap().public_key().to_hex() }),
        )
        .unwrap();
    assert_eq!((status, code(&body)), (503, "sessions_full"), "{body}");
    assert_eq!(metric(&server, "hypervisor_live_sessions"), 60.0);

    // A full table does not stop sessions that exist.
    let out = client
        .execute(&mine, &ExecuteInput::new(&wasm("hello")))
        .unwrap();
    assert_eq!(out.result.exit_code, Some(0));

    // Once their lifetime is over the abandoned sessions are dropped (the sweeper runs every
    // `ttl_seconds`), and new clients get sessions again.
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
