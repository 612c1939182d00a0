//! Slow and idle clients: the host bounds the time to receive a request head
//! (`http.header_timeout_ms`), closes idle keep-alive connections (`http.idle_timeout_ms`) and
//! caps open connections (`http.max_connections`), while it keeps serving everyone else.
//!
//! The deadlines here are 1–2 s, the assertions much looser: these tests run on slow shared
//! machines.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{TestServer, metric};

const LIMITS: &str =
    "[http]\nheader_timeout_ms = 1000\nidle_timeout_ms = 2000\nmax_connections = 64\n";

/// How long the host may take to close a connection whose deadline (1–2 s) has passed.
const CLOSED_WITHIN: Duration = Duration::from_secs(15);

fn connect(server: &TestServer) -> TcpStream {
    let s = TcpStream::connect(server.url.trim_start_matches("http://")).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

/// Waits until the host closes `s` (end of stream or reset) and returns the time since
/// `since`; panics if the host sends anything or keeps the connection open past
/// [`CLOSED_WITHIN`].
fn closed_by_host(s: &mut TcpStream, since: Instant) -> Duration {
    s.set_read_timeout(Some(CLOSED_WITHIN)).unwrap();
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!(
            "the host sent {:?} instead of closing",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
            ) => {}
        Err(e) => panic!("still open after {:?}: {e}", since.elapsed()),
    }
    let took = since.elapsed();
    assert!(took < CLOSED_WITHIN + Duration::from_secs(5), "{took:?}");
    took
}

/// One `GET path` on a keep-alive connection: the status and the body (the answer must carry
/// a `content-length`, as the host's fixed answers do).
fn get(s: &mut TcpStream, path: &str) -> (u16, String) {
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .expect("send request");
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).expect("read response");
        assert!(n > 0, "connection closed before the response head");
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no content-length in {head}"));
    while data.len() < head_end + length {
        let n = s.read(&mut buf).expect("read body");
        assert!(n > 0, "connection closed before the end of the body");
        data.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&data[head_end..head_end + length]).to_string();
    (status, body)
}

fn ping(server: &TestServer) {
    assert_eq!(server.client().ping().expect("ping"), "pong");
}

#[test]
fn a_stalled_or_trickled_request_head_is_cut_while_others_are_served() {
    let server = TestServer::start_with(LIMITS);

    // (a) Half a request head, then nothing.
    let started = Instant::now();
    let mut stalled = connect(&server);
    stalled
        .write_all(b"POST /encrypt/create_keypair HTTP/1.1\r\nhost: x\r\ncontent-")
        .unwrap();

    // Slowloris: a header byte every 100 ms, for up to 30 s or until the host hangs up.
    let mut trickled = connect(&server);
    trickled.write_all(b"GET /ping HTTP/1.1\r\n").unwrap();
    let mut writer = trickled.try_clone().unwrap();
    let trickler = std::thread::spawn(move || {
        let began = Instant::now();
        let header = b"x-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        for &b in header.iter().cycle() {
            if began.elapsed() > Duration::from_secs(30) || writer.write_all(&[b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        began.elapsed()
    });

    // (b) Everyone else is served meanwhile, on new connections and on a kept-alive one.
    let mut other = connect(&server);
    for _ in 0..5 {
        assert_eq!(get(&mut other, "/ping"), (200, "pong".to_string()));
        ping(&server);
        std::thread::sleep(Duration::from_millis(100));
    }

    // Both slow connections are closed without an answer, long before the trickle ends.
    closed_by_host(&mut stalled, started);
    closed_by_host(&mut trickled, started);
    let trickled_for = trickler.join().unwrap();
    assert!(trickled_for < Duration::from_secs(25), "{trickled_for:?}");

    ping(&server);
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = TestServer::start_with(LIMITS);
    let mut conn = connect(&server);
    assert_eq!(get(&mut conn, "/ping"), (200, "pong".to_string()));
    let idle_from = Instant::now();
    // (c) No further request: the host hangs up.
    closed_by_host(&mut conn, idle_from);
    ping(&server);
}

#[test]
fn the_idle_timeout_not_the_head_timeout_governs_a_connection_between_requests() {
    // A head deadline of 1 s must not cut a keep-alive connection idle for longer.
    let server =
        TestServer::start_with("[http]\nheader_timeout_ms = 1000\nidle_timeout_ms = 60000\n");
    let mut conn = connect(&server);
    assert_eq!(get(&mut conn, "/ping"), (200, "pong".to_string()));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(get(&mut conn, "/ping"), (200, "pong".to_string()));
}

#[test]
fn holding_every_connection_slot_makes_newcomers_wait_not_fail() {
    let mut server = TestServer::start_with(LIMITS);

    // (d) 64 kept-alive connections (every slot) and 16 more waiting to be accepted.
    let mut held: Vec<TcpStream> = (0..64)
        .map(|_| {
            let mut c = connect(&server);
            assert_eq!(get(&mut c, "/ping").0, 200);
            c
        })
        .collect();
    held.extend((0..16).map(|_| connect(&server)));
    assert!(server.is_running(), "{}", server.log());

    // A newcomer waits for a slot (idle connections are closed after 2 s) instead of being
    // refused.
    let url = format!("{}/ping", server.url);
    let mut resp = ureq::get(&url)
        .config()
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .call()
        .expect("served once a slot frees");
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "pong");
    assert!(server.is_running(), "{}", server.log());

    // The host closed every held connection by itself; after they are gone all is normal.
    let since = Instant::now();
    for c in &mut held {
        closed_by_host(c, since);
    }
    drop(held);
    for _ in 0..10 {
        ping(&server);
    }
    let deadline = Instant::now() + CLOSED_WITHIN;
    while metric(&server, "hypervisor_http_connections") > 4.0 {
        assert!(Instant::now() < deadline, "connections still counted open");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(server.is_running(), "{}", server.log());
}

#[test]
fn sigterm_finishes_the_request_in_flight_and_does_not_wait_for_slow_clients() {
    let mut server = TestServer::start_with(LIMITS);

    // An idle keep-alive connection, a stalled head and a request whose body is half sent.
    let mut idle = connect(&server);
    assert_eq!(get(&mut idle, "/ping").0, 200);
    let mut stalled = connect(&server);
    stalled.write_all(b"GET /ping HTTP/1.1\r\nho").unwrap();
    let body = br#"{"pubkey": "04abcd"}"#;
    let mut busy = connect(&server);
    busy.write_all(
        format!(
            "POST /encrypt/create_keypair HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    busy.write_all(&body[..5]).unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let ok = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    assert!(
        server.wait_for_log("shutdown signal received", Duration::from_secs(30)),
        "{}",
        server.log()
    );

    // The request in flight still gets its answer (the key is invalid: a JSON error).
    busy.write_all(&body[5..]).unwrap();
    let mut answer = Vec::new();
    let _ = busy.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("invalid_public_key"), "{answer}");

    // Nothing else holds the host up: it exits, having committed its records.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.is_running() {
        assert!(
            Instant::now() < deadline,
            "still running:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(server.log().contains("stopped"), "{}", server.log());
    drop((idle, stalled));
}
