//! HAProxy in front of three replicas on one PostgreSQL, running `deploy/haproxy/haproxy.cfg`
//! itself (the configuration docs/DEPLOY.md shows and `scripts/cluster.sh` runs): a replica
//! killed under load drops out, requests go on through the others, a session bound to the dead
//! replica gets 421 naming it, and every answered invocation has its record. Needs the
//! `haproxy` binary (scripts/test.sh installs it) and PostgreSQL's; says SKIPPED without them,
//! except under CI, where it fails.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hypervisor_protocol::ClientSecret;
use serde_json::{Value, json};

use crate::cluster::{deploy, postgres, replica};
use crate::harness::TestServer;

/// HAProxy running the shipped configuration; killed on drop.
struct Balancer {
    child: Child,
    url: String,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn haproxy() -> Option<String> {
    let found = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(str::to_string);
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "haproxy is not installed (scripts/test.sh installs it)"
        );
        eprintln!("SKIPPED: the balancer test needs haproxy (apt-get install haproxy)");
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn address(server: &TestServer) -> String {
    server.url.trim_start_matches("http://").to_string()
}

impl Balancer {
    fn start(binary: &str, replicas: [&TestServer; 3]) -> Self {
        let config =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/haproxy/haproxy.cfg");
        let listen = format!("127.0.0.1:{}", free_port());
        let child = Command::new(binary)
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .env("HYPERVISOR_LB", &listen)
            .env("HYPERVISOR_R1", address(replicas[0]))
            .env("HYPERVISOR_R2", address(replicas[1]))
            .env("HYPERVISOR_R3", address(replicas[2]))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy");
        let b = Self {
            child,
            url: format!("http://{listen}"),
        };
        // Up once every replica has answered through it.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < 3 {
            assert!(
                Instant::now() < deadline,
                "haproxy never reached 3 replicas"
            );
            if let Ok(r) = ureq::get(&format!("{}/host", b.url)).call()
                && let Some(v) = r.headers().get("x-hypervisor-replica")
            {
                seen.insert(v.to_str().unwrap_or_default().to_string());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        b
    }
}

fn replica_of(headers: &[(String, String)]) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-hypervisor-replica"))
        .map(|(_, v)| v.clone())
}

/// What one invocation through the balancer got.
#[derive(Debug, Clone)]
struct Outcome {
    at: Instant,
    status: Option<u16>,
    replica: Option<String>,
}

#[test]
fn a_replica_killed_behind_haproxy_drops_out_and_no_answered_run_is_lost() {
    let Some(binary) = haproxy() else {
        return;
    };
    let Some((_pg, db)) = postgres("balanced") else {
        return;
    };
    let (r1, r2, r3) = (replica(&db, "r1"), replica(&db, "r2"), replica(&db, "r3"));
    let lb = Balancer::start(&binary, [&r1, &r2, &r3]);
    let owner: ClientSecret = deploy(&r1, "stats", "text-stats", None);
    // A session opened on r2 itself: bound to r2.
    let (_, key2, on_r2) = crate::harness::session_at(&r2.url);

    // Invocations through the balancer, from two callers, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let (url, stop, outcomes) = (lb.url.clone(), stop.clone(), outcomes.clone());
            std::thread::spawn(move || {
                let body = json!({"event": {"text": "one two three"}});
                while !stop.load(Ordering::Relaxed) {
                    // A new connection each time: the balancer spreads connections.
                    let client = hypervisor_client::Client::new(&url);
                    let answer = client.post_json_with("/agents/stats/invoke", &body, &[]);
                    let (status, replica) = match &answer {
                        Ok((s, h, _)) => (Some(*s), replica_of(h)),
                        Err(_) => (None, None),
                    };
                    outcomes.lock().unwrap().push(Outcome {
                        at: Instant::now(),
                        status,
                        replica,
                    });
                    // A steady load, not a flood: ~100 requests per second per caller.
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        })
        .collect();
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while outcomes.lock().unwrap().len() < n {
            assert!(Instant::now() < deadline, "the load stalled");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(30);
    let killed_at = Instant::now();
    r2.stop(); // SIGKILL
    // Well past the health check's verdict (2 failed checks 500 ms apart).
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.join().unwrap();
    }
    let outcomes = outcomes.lock().unwrap().clone();

    // Before the kill every replica served; well after it (the health check marks a replica
    // down within about a second), only r1 and r3, and every request was answered.
    let served = |from: Instant, to: Instant| {
        outcomes
            .iter()
            .filter(|o| o.at > from && o.at <= to)
            .filter_map(|o| o.replica.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let start = outcomes[0].at - Duration::from_millis(1);
    assert_eq!(served(start, killed_at).len(), 3, "{outcomes:?}");
    let settled = killed_at + Duration::from_millis(2500);
    let after: Vec<&Outcome> = outcomes.iter().filter(|o| o.at > settled).collect();
    assert!(
        after.len() >= 10,
        "too few requests after the fail-over: {outcomes:?}"
    );
    assert!(
        after.iter().all(|o| o.status == Some(200)),
        "after the fail-over every request is answered: {after:?}"
    );
    assert!(!served(settled, Instant::now()).contains("r2"));
    // Around the kill, only requests in flight on r2 can fail (at most one per caller).
    let failed = outcomes.iter().filter(|o| o.status != Some(200)).count();
    assert!(failed <= 2, "{failed} failed: {outcomes:?}");

    // A session bound to the dead replica, sent through the balancer: 421 naming r2.
    let lb_client = hypervisor_client::Client::new(&lb.url);
    let program = crate::harness::wasm("hello");
    match lb_client.execute(&on_r2, &hypervisor_client::ExecuteInput::new(&program)) {
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.contains("session_on_other_replica") && text.contains("r2"),
                "{text}"
            );
        }
        Ok(_) => panic!("a dead replica's session ran elsewhere"),
    }
    drop(key2);

    // A client on one keep-alive connection stays on one replica: its session and the
    // executions that use it meet (what `hypervisor-client exec` through the balancer does).
    let client = hypervisor_client::Client::new(&lb.url);
    let sessions = client
        .open_renewing(ClientSecret::generate().unwrap(), None)
        .unwrap();
    for _ in 0..5 {
        let run = client
            .with_session(&sessions, |s| {
                client.execute(s, &hypervisor_client::ExecuteInput::new(&program))
            })
            .expect("runs through the balancer");
        assert_eq!(run.result.exit_code, Some(0));
    }

    // Nothing answered is lost: every 200 has its execution record in the shared database.
    let answered = outcomes.iter().filter(|o| o.status == Some(200)).count();
    let records: Vec<Value> = lb_client.executions(&owner, 0, 10_000).unwrap();
    assert!(
        records.len() >= answered && records.len() <= outcomes.len(),
        "{} records for {answered} answered invocations ({} sent)",
        records.len(),
        outcomes.len()
    );
}
