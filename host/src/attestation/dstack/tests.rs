//! The provider against a stand-in guest agent on a real Unix socket, answering with the real
//! dstack sample (`../shared/attestation-samples/dstack/quote-report.json`) whose REPORTDATA
//! it replaces with the one asked for (as the real agent would put it there).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::sync::{Arc, Mutex};

use super::*;

fn sample() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/attestation-samples/dstack/quote-report.json"
    );
    serde_json::from_slice(&std::fs::read(path).expect("the dstack sample")).unwrap()
}

/// How the stand-in agent misbehaves.
#[derive(Clone, Copy, PartialEq)]
enum Agent {
    Honest,
    /// Hashes REPORTDATA (as Tappd's TdxQuote does).
    Hashing,
    /// Sends a log with one runtime payload changed.
    TamperedLog,
    /// Answers 500.
    Failing,
}

/// Serves one request on a fresh socket; returns its path and what was asked.
fn agent(kind: Agent) -> (tempfile::TempDir, PathBuf, Arc<Mutex<(String, String)>>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dstack.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let seen = Arc::new(Mutex::new((String::new(), String::new())));
    let record = seen.clone();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let mut length = 0;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            if h.trim().is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let body = String::from_utf8(body).unwrap();
        *record.lock().unwrap() = (line.clone(), body.clone());
        let asked: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut rd = hex::decode(asked["report_data"].as_str().unwrap()).unwrap();
        if kind == Agent::Hashing {
            use sha2::Digest;
            rd = sha2::Sha512::digest(&rd).to_vec();
        }
        let s = sample();
        let mut quote = hex::decode(s["quote"].as_str().unwrap()).unwrap();
        quote[568..632].copy_from_slice(&rd);
        let mut log = s["event_log"].as_str().unwrap().to_string();
        if kind == Agent::TamperedLog {
            // LIUM_MINER_HOTKEY's payload starts with "5D33" (hex 35443333): change one byte.
            log = log.replacen("35443333", "35443334", 1);
        }
        let answer = serde_json::json!({
            "quote": hex::encode(&quote),
            "event_log": log,
            "report_data": hex::encode(&rd),
            "vm_config": s["vm_config"],
        })
        .to_string();
        let status = if kind == Agent::Failing {
            "500 Internal Server Error"
        } else {
            "200 OK"
        };
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
    });
    (dir, path, seen)
}

#[test]
fn a_quote_with_our_report_data_and_the_replaying_event_log_is_evidence() {
    let (_dir, path, seen) = agent(Agent::Honest);
    let rd = [0x42; 64];
    let e = DstackProvider::new(path).attest(&rd).unwrap();
    let (line, body) = seen.lock().unwrap().clone();
    assert!(line.starts_with("POST /GetQuote HTTP/1.1"), "{line}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["report_data"], hex::encode(rd));
    assert_eq!(e.format, "tdx-dcap-quote");
    assert_eq!(e.tee, TeeKind::Tdx);
    assert_eq!(&e.evidence[568..632], &rd);
    let events = eventlog::parse_json(e.event_log.as_deref().unwrap()).unwrap();
    let id = eventlog::identity(&events).unwrap();
    assert_eq!(
        hex::encode(id.compose_hash.unwrap()),
        "3763bc34552cf3a27ff71ad5f7a90471562a1a2df552dfc1998cba2d60da27e7"
    );
}

#[test]
fn an_agent_that_hashes_tampers_or_fails_is_refused_clearly() {
    let (_d, path, _) = agent(Agent::Hashing);
    let e = DstackProvider::new(path).attest(&[1; 64]).unwrap_err();
    assert!(e.to_string().contains("REPORTDATA"), "{e}");
    let (_d, path, _) = agent(Agent::TamperedLog);
    let e = DstackProvider::new(path).attest(&[1; 64]).unwrap_err();
    // The sample supplies each runtime digest: the changed payload no longer matches its own.
    assert!(
        e.to_string().contains("event log") && e.to_string().contains("LIUM_MINER_HOTKEY"),
        "{e}"
    );
    let (_d, path, _) = agent(Agent::Failing);
    let e = DstackProvider::new(path).attest(&[1; 64]).unwrap_err();
    assert!(e.to_string().contains("500"), "{e}");
    let e = DstackProvider::new("/nonexistent/dstack.sock".into())
        .attest(&[1; 64])
        .unwrap_err();
    assert!(e.to_string().contains("cannot connect"), "{e}");
}

#[test]
fn the_socket_is_found_where_dstack_puts_it() {
    assert_eq!(
        find_socket(Some(Path::new("/x/y.sock"))),
        Some(PathBuf::from("/x/y.sock"))
    );
}
