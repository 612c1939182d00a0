//! A2A tasks are bounded (`[a2a]` max_tasks_per_caller, max_anonymous_tasks_per_agent,
//! max_task_bytes): a flood of messages to a free agent stores at most the quota, every
//! message past it gets JSON-RPC error -32090 naming the bound and is stored nowhere, and
//! other callers are not shut out by one caller's flood.

use serde_json::{Value, json};

use crate::harness::{TestServer, curl_post, with_public_stats};

const AGENT: &str = "/agents/stats/a2a";

fn host(a2a: &str) -> TestServer {
    with_public_stats(&format!("[a2a]\n{a2a}"))
}

/// `SendMessage` with `text`, as `caller` (a bearer secret) or anonymously (empty).
fn send(server: &TestServer, caller: &str, text: &str) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {
        "message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": text}]}}});
    let auth = format!("authorization: Bearer {caller}");
    let mut headers = vec!["content-type: application/json", "a2a-version: 1.0"];
    if !caller.is_empty() {
        headers.push(&auth);
    }
    let (status, answer) = curl_post(server, AGENT, &headers, body.to_string().as_bytes());
    assert_eq!(status, 200, "{answer}");
    answer
}

/// How many of `answers` stored a task, and the errors of the others.
fn outcome(answers: &[Value]) -> (usize, Vec<(i64, String)>) {
    let stored = answers
        .iter()
        .filter(|a| a["result"]["task"]["id"].is_string())
        .count();
    let errors = answers
        .iter()
        .filter_map(|a| {
            let e = &a["error"];
            e["code"]
                .as_i64()
                .map(|c| (c, e["message"].as_str().unwrap_or("").to_string()))
        })
        .collect();
    (stored, errors)
}

#[test]
fn a_flood_of_tasks_stops_at_the_callers_quota_and_the_anonymous_one() {
    let server = host("max_tasks_per_caller = 5\nmax_anonymous_tasks_per_agent = 3\n");
    let flood: Vec<Value> = (0..12)
        .map(|i| send(&server, "alice", &format!("w{i}")))
        .collect();
    let (stored, errors) = outcome(&flood);
    assert_eq!(stored, 5, "{flood:?}");
    assert_eq!(errors.len(), 7);
    for (code, message) in &errors {
        assert_eq!(*code, -32090, "{message}");
        assert!(message.contains("a2a.max_tasks_per_caller"), "{message}");
    }
    // Alice's tasks are hers to list: five, the refused ones stored nowhere.
    let auth = "authorization: Bearer alice";
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "ListTasks", "params": {}});
    let (_, listed) = curl_post(
        &server,
        AGENT,
        &["content-type: application/json", "a2a-version: 1.0", auth],
        list.to_string().as_bytes(),
    );
    assert_eq!(listed["result"]["totalSize"], 5, "{listed}");

    // Bob is not shut out by alice's flood.
    assert!(send(&server, "bob", "hello")["result"]["task"]["id"].is_string());

    // Anonymous callers share one bound per agent.
    let anonymous: Vec<Value> = (0..6)
        .map(|i| send(&server, "", &format!("a{i}")))
        .collect();
    let (stored, errors) = outcome(&anonymous);
    assert_eq!(stored, 3, "{anonymous:?}");
    assert!(
        errors
            .iter()
            .all(|(c, m)| *c == -32090 && m.contains("a2a.max_anonymous_tasks_per_agent")),
        "{errors:?}"
    );
}

#[test]
fn the_stored_tasks_bytes_stay_within_the_budget() {
    // 1 MiB for every task; each message carries 100 kB, kept in the task's history.
    let server = host("max_task_bytes = 1048576\n");
    let text = "word ".repeat(20_000);
    let answers: Vec<Value> = (0..20)
        .map(|i| send(&server, &format!("caller-{i}"), &text))
        .collect();
    let (stored, errors) = outcome(&answers);
    assert!(
        (3..=10).contains(&stored),
        "1 MiB holds a few such tasks: {stored}"
    );
    assert_eq!(stored + errors.len(), 20);
    for (code, message) in &errors {
        assert_eq!(*code, -32090, "{message}\n{}", server.log());
        assert!(message.contains("a2a.max_task_bytes"), "{message}");
    }
    // What is left still takes a small task, not another large one.
    let small = send(&server, "newcomer", "hi");
    assert!(small["result"]["task"]["id"].is_string(), "{small}");
    let large = send(&server, "newcomer", &text);
    assert_eq!(large["error"]["code"], -32090, "{large}");
}

#[cfg(feature = "simulated-attestation")]
#[test]
fn a_priced_agents_waiting_tasks_count_against_the_quota() {
    // A task waiting for its payment is stored (with the message to run once paid): it counts
    // against its caller's bound, and a message past the bound is refused before the agent is
    // asked for its price (no unpaid call reaches the payment gate: `outcome="missing"`).
    const MISSING: &str = "hypervisor_payments_total{outcome=\"missing\"}";
    let server = TestServer::start_with(&format!(
        "{}\n[a2a]\nmax_tasks_per_caller = 2\n",
        crate::harness::paid_simulated_config()
    ));
    crate::harness::deploy_priced_stats(&server, "1000");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {
        "message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "a b c"}]}}});
    let x402 = format!(
        "a2a-extensions: {}",
        hypervisor_protocol::a2a::X402_EXTENSION
    );
    let headers = [
        "content-type: application/json",
        "a2a-version: 1.0",
        "authorization: Bearer carol",
        x402.as_str(),
    ];
    let send_paid = || {
        let (status, answer) = curl_post(
            &server,
            "/agents/paid/a2a",
            &headers,
            body.to_string().as_bytes(),
        );
        assert_eq!(status, 200, "{answer}");
        answer
    };
    for _ in 0..2 {
        let waiting = send_paid();
        let task = &waiting["result"]["task"];
        assert_eq!(
            task["status"]["state"], "TASK_STATE_INPUT_REQUIRED",
            "{waiting}"
        );
    }
    let priced = crate::harness::metric(&server, MISSING);
    assert!(priced >= 2.0, "each waiting task was priced: {priced}");
    let answer = send_paid();
    let refused = &answer["error"];
    assert_eq!(refused["code"], -32090, "{answer}");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.contains("a2a.max_tasks_per_caller"), "{message}");
    assert_eq!(
        crate::harness::metric(&server, MISSING),
        priced,
        "the refused message was priced first"
    );
    // Another caller still gets the price.
    let (_, other) = curl_post(
        &server,
        "/agents/paid/a2a",
        &["content-type: application/json", "a2a-version: 1.0", &x402],
        body.to_string().as_bytes(),
    );
    assert_eq!(
        other["result"]["task"]["status"]["state"], "TASK_STATE_INPUT_REQUIRED",
        "{other}"
    );
}

/// A blocking send's task is stored once, with its outcome (PROTOCOL §21.3), but its room
/// is held from the moment it is admitted: while it runs, it counts against its caller's
/// bound as a stored task does; after it, the task is stored and the room it held is given
/// back (the bound counts the task itself, once: the refusals name the count).
#[test]
fn a_running_blocking_tasks_room_is_held_until_it_is_stored() {
    let server = host("max_tasks_per_caller = 2\n");
    server
        .client()
        .deploy_agent(
            &hypervisor_protocol::ClientSecret::generate().unwrap(),
            &hypervisor_client::agents::Deployment {
                name: "loop",
                description: "runs until its time limit",
                component: &crate::harness::wasm("endless-loop"),
                public: Some(true),
                limits: Some(hypervisor_protocol::wire::Limits {
                    time_ms: Some(8_000),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .unwrap();
    let headers = [
        "content-type: application/json",
        "a2a-version: 1.0",
        "authorization: Bearer dave",
    ];
    let rpc = |path: &str, method: &str, params: Value| {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        curl_post(&server, path, &headers, body.to_string().as_bytes()).1
    };
    let refused_at = |answer: &Value, count: &str| {
        assert_eq!(answer["error"]["code"], -32090, "{answer}");
        let text = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains("a2a.max_tasks_per_caller"), "{text}");
        assert!(
            text.contains(&format!("has {count} tasks stored")),
            "{text}"
        );
    };
    let message = json!({"message": {"messageId": "m", "role": "ROLE_USER",
        "parts": [{"text": "spin"}]}});
    std::thread::scope(|s| {
        let running = s.spawn(|| rpc("/agents/loop/a2a", "SendMessage", message.clone()));
        // Sent once the loop's send has had 2 s to be admitted; until its run ends (its time
        // limit, 8 s) its room is taken: one more task of dave's is stored, the next refused.
        std::thread::sleep(std::time::Duration::from_secs(2));
        let first = send(&server, "dave", "one two");
        assert!(first["result"]["task"]["id"].is_string(), "{first}");
        let second = send(&server, "dave", "one two");
        refused_at(&second, "2");
        let listed = rpc("/agents/loop/a2a", "ListTasks", json!({}));
        assert_eq!(listed["result"]["totalSize"], 0, "not stored yet: {listed}");

        let ended = running.join().unwrap();
        let task = &ended["result"]["task"];
        assert_eq!(
            task["status"]["state"], "TASK_STATE_FAILED",
            "the loop's send (admitted after dave's others if this is an error): {ended}"
        );
        let id = task["id"].as_str().unwrap();
        let got = rpc("/agents/loop/a2a", "GetTask", json!({"id": id}));
        assert_eq!(got["result"]["id"], id, "{got}");
        let listed = rpc("/agents/loop/a2a", "ListTasks", json!({}));
        assert_eq!(listed["result"]["totalSize"], 1, "{listed}");
    });
    // Stored, the task counts once, its room given back: two, not three.
    refused_at(&send(&server, "dave", "one two"), "2");
}
