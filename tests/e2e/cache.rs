//! The compiled-component cache: compile once (even under concurrency), survive restarts,
//! keep code confidential and authenticated on disk.

use std::path::Path;

use hypervisor_client::ExecuteInput;

use crate::harness::{TestServer, run, session, session_at, wasm};

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p))
        } else {
            out.push(p)
        }
    }
    out
}

#[test]
fn concurrent_first_runs_compile_once_and_restarts_never_recompile() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = TestServer::start_in(&data, "");
    let url = server.url.clone();
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let (client, _key, s) = session_at(&url);
                let program = wasm("hello");
                client
                    .execute(&s, &ExecuteInput::new(&program))
                    .unwrap()
                    .stdout()
                    .unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), b"Hello\n");
    }
    assert_eq!(
        count(&server.log(), "component compiled"),
        1,
        "{}",
        server.log()
    );
    assert_eq!(server.data_dir, data);
    server.stop();

    // The cached artifact is sealed: neither the component's code nor its strings are visible.
    let cached = files_under(&data.join("cache"));
    assert_eq!(cached.len(), 1, "{cached:?}");
    let bytes = std::fs::read(&cached[0]).unwrap();
    assert!(!bytes.windows(5).any(|w| w == b"Hello"));
    assert!(!bytes.windows(4).any(|w| w == b"\x7fELF"));

    let restarted = TestServer::start_in(&data, "");
    assert_eq!(
        run(&restarted, "hello", &["back"]).stdout().unwrap(),
        b"Hello back\n"
    );
    let log = restarted.log();
    assert_eq!(count(&log, "component compiled"), 0, "{log}");
    assert_eq!(count(&log, "component loaded from disk cache"), 1, "{log}");
    restarted.stop();

    // A tampered artifact is discarded and the component recompiled, never loaded.
    let mut bytes = std::fs::read(&cached[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&cached[0], bytes).unwrap();
    let third = TestServer::start_in(&data, "");
    let (client, _k, s) = session(&third);
    let program = wasm("hello");
    assert_eq!(
        client
            .execute(&s, &ExecuteInput::new(&program))
            .unwrap()
            .stdout()
            .unwrap(),
        b"Hello\n"
    );
    let log = third.log();
    assert_eq!(count(&log, "component compiled"), 1, "{log}");
    assert!(log.contains("failed authentication"), "{log}");
}

#[test]
fn plugins_are_loaded_from_the_sealed_cache_not_recompiled() {
    // The harness has compiled the plug-ins into the shared plug-in cache; every server after
    // that (this one included) loads them from there.
    let server = TestServer::start();
    let log = server.log();
    assert_eq!(count(&log, "plug-in compiled"), 0, "{log}");
    // The policy and the Python runtime are the same file: loaded once.
    assert_eq!(count(&log, "plug-in loaded from disk cache"), 1, "{log}");
    assert!(
        log.contains("policy ready") && log.contains("python runtime ready"),
        "{log}"
    );
}
