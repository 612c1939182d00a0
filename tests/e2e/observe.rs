//! What operators observe: `/metrics`, request ids, and logs that never hold a secret.

use hypervisor_client::ExecuteInput;
use hypervisor_client::agents::Deployment;
use hypervisor_protocol::{ClientSecret, sha256};
use serde_json::json;

use crate::harness::{TestServer, policy_table, sample, session, wasm, wasm_path};

/// `GET path` with optional headers: status, the response's headers, body text.
fn get(url: &str, headers: &[(&str, &str)]) -> (u16, ureq::http::HeaderMap, String) {
    let mut req = ureq::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .expect("GET");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.body_mut().read_to_string().expect("body");
    (status, headers, body)
}

#[test]
fn metrics_count_requests_runs_payments_and_denials_and_every_answer_has_a_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            "[programs]\ndeny = [{:?}]\n",
            hex::encode(sha256(&wasm("grep")))
        ),
    )
    .unwrap();
    let server = TestServer::start_with(&format!(
        "{}[payments]\nenabled = true\ncomponent = {:?}\n[payments.price]\n\
         pay_to = \"0x209693Bc6afc0C5328bA36FaF03C514EF312287C\"\n",
        policy_table(
            "policy-python",
            &format!("rules = {:?}", rules.display().to_string())
        ),
        wasm_path("payments").display().to_string()
    ));

    // Request ids: a plain one from the client is kept, anything else is replaced.
    let (status, headers, _) = get(
        &format!("{}/ping", server.url),
        &[("x-request-id", "client-req.42")],
    );
    assert_eq!(status, 200);
    assert_eq!(headers["x-request-id"], "client-req.42");
    let (_, headers, _) = get(
        &format!("{}/ping", server.url),
        &[("x-request-id", "has spaces and \"quotes\"")],
    );
    let made = headers["x-request-id"].to_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
    let (status, headers, _) = get(&format!("{}/no/such/route", server.url), &[]);
    assert_eq!(status, 404);
    assert!(headers.contains_key("x-request-id"), "errors carry one too");

    // Work to count: two executions, one denied by the policy, one paid route without a payment.
    let (client, _key, s) = session(&server);
    for _ in 0..2 {
        client
            .execute(&s, &ExecuteInput::new(&wasm("hello")))
            .unwrap();
    }
    assert!(
        client
            .execute(&s, &ExecuteInput::new(&wasm("grep")))
            .is_err()
    );
    crate::payments::challenge(&server, &s);

    let (status, headers, text) = get(&format!("{}/metrics", server.url), &[]);
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{headers:?}"
    );
    let n = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}:\n{text}"));
    assert_eq!(
        n(r#"hypervisor_http_requests_total{route="/ping",method="GET",status="200"}"#),
        2.0
    );
    assert_eq!(
        n(r#"hypervisor_http_requests_total{route="unmatched",method="GET",status="404"}"#),
        1.0
    );
    assert_eq!(
        n(
            r#"hypervisor_http_requests_total{route="/test/execute/wasm",method="POST",status="200"}"#
        ),
        2.0
    );
    assert_eq!(
        n(
            r#"hypervisor_http_requests_total{route="/test/execute/wasm",method="POST",status="403"}"#
        ),
        1.0
    );
    assert_eq!(
        n(r#"hypervisor_runs_total{kind="execution",status="exited"}"#),
        2.0
    );
    assert_eq!(
        n(r#"hypervisor_run_duration_seconds_count{kind="execution"}"#),
        2.0
    );
    assert_eq!(
        n(r#"hypervisor_policy_denials_total{rule="programs.deny"}"#),
        1.0
    );
    assert_eq!(n(r#"hypervisor_payments_total{outcome="missing"}"#), 1.0);
    assert_eq!(n(r#"hypervisor_payments_total{outcome="settled"}"#), 0.0);
    assert!(n("hypervisor_live_sessions") >= 1.0);
    assert_eq!(n("hypervisor_live_instances"), 0.0);
    assert_eq!(n("hypervisor_instance_slots"), 128.0);
    assert!(n(r#"hypervisor_compile_cache_total{result="miss"}"#) >= 1.0);
    assert!(n(r#"hypervisor_compile_cache_total{result="memory_hit"}"#) >= 1.0);
    assert!(
        text.contains("hypervisor_attestation_info{provider=\""),
        "{text}"
    );
    // Histograms are cumulative and end with +Inf = count.
    let inf = n(
        r#"hypervisor_http_request_duration_seconds_bucket{route="/ping",method="GET",le="+Inf"}"#,
    );
    assert_eq!(inf, 2.0);
}

#[test]
fn logs_of_a_full_run_never_hold_the_plaintexts_sent_or_the_keys() {
    // Everything our code logs, at every level.
    let server = TestServer::start_logging("hypervisor=trace,info", "");
    let marker = |what: &str| format!("SECRET-{what}-{}", uuid::Uuid::now_v7().simple());
    let (arg, stdin, script, event, sealed_event) = (
        marker("arg"),
        marker("stdin"),
        marker("script"),
        marker("event"),
        marker("sealed"),
    );
    let (client, _key, s) = session(&server);

    // An execution with an argument and stdin (grep prints the matching line back).
    let run = client
        .execute(
            &s,
            &ExecuteInput::new(&wasm("grep"))
                .args([arg.as_str()])
                .stdin(format!("{arg}\n{stdin}\n").as_bytes()),
        )
        .unwrap();
    assert!(String::from_utf8_lossy(&run.stdout().unwrap()).contains(&arg));
    // A Python script.
    let source = format!("print({script:?})");
    client
        .execute_python(&s, &ExecuteInput::new(source.as_bytes()))
        .unwrap();
    // A public handler agent invoked in the clear, and a private one invoked sealed.
    let owner = ClientSecret::generate().unwrap();
    let stats = wasm("text-stats");
    client
        .deploy_agent(
            &owner,
            &Deployment {
                name: "stats",
                component: &stats,
                ..Deployment::default()
            },
        )
        .unwrap();
    client.invoke("stats", json!({ "text": event })).unwrap();
    let owner_session = client.create_session(&owner).unwrap();
    let deployed = client
        .deploy_agent_sealed(
            &owner,
            &owner_session,
            &Deployment {
                name: "private-stats",
                component: &stats,
                ..Deployment::default()
            },
        )
        .unwrap();
    let code_hash = deployed["latest"]["code_hash"].as_str().unwrap();
    client
        .invoke_sealed(
            &s,
            "private-stats",
            code_hash,
            json!({ "text": sealed_event }).to_string().as_bytes(),
        )
        .unwrap();

    let at_rest = std::fs::read(server.data_dir.join("keys/at-rest.key")).unwrap();
    let log = server.log();
    assert!(
        log.contains("request answered"),
        "the run logged at debug level"
    );
    for secret in [&arg, &stdin, &script, &event, &sealed_event] {
        assert!(!log.contains(secret.as_str()), "{secret} is in the log");
        assert!(
            !log.contains(&hex::encode(secret.as_bytes())),
            "{secret} (hex) is in the log"
        );
    }
    assert!(
        !log.contains(&hex::encode(&at_rest)),
        "the at-rest key is in the log"
    );
}

/// With `http.operator_token`, the operator routes answer only the operator: `401` with a
/// JSON body and a `WWW-Authenticate` challenge otherwise; the other routes are unaffected.
#[test]
fn metrics_and_the_openapi_document_can_be_kept_for_the_operator() {
    let token = "operator-token-0123456789";
    let server = TestServer::start_with(&format!("[http]\noperator_token = {token:?}\n"));
    for path in ["/metrics", "/openapi.json"] {
        let url = format!("{}{path}", server.url);
        for presented in [None, Some("Bearer wrong-token-0123456789"), Some(token)] {
            let headers: Vec<(&str, &str)> = presented
                .map(|p| vec![("authorization", p)])
                .unwrap_or_default();
            let (status, headers, body) = get(&url, &headers);
            assert_eq!(status, 401, "{path} {presented:?}: {body}");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(json["error"]["code"], "unauthorized", "{body}");
            assert!(
                headers
                    .get("www-authenticate")
                    .is_some_and(|v| v.to_str().unwrap().starts_with("Bearer")),
                "{headers:?}"
            );
        }
        let bearer = format!("Bearer {token}");
        let (status, _, body) = get(&url, &[("authorization", bearer.as_str())]);
        assert_eq!(status, 200, "{path}: {body}");
    }
    assert_eq!(server.client().ping().unwrap(), "pong");
    // The operator reads every execution record (others read only their own).
    let (client, _, session) = session(&server);
    let (req, _) = session
        .encrypt_execution(&ExecuteInput::new(&wasm("hello")))
        .unwrap();
    let (status, out) = client.post_json("/test/execute/wasm", &req).unwrap();
    assert_eq!(status, 200, "{out}");
    let bearer = format!("Bearer {token}");
    let (status, _, body) = get(
        &format!("{}/executions", server.url),
        &[("authorization", bearer.as_str())],
    );
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        listed["executions"].as_array().unwrap().len(),
        1,
        "{listed}"
    );
    // A token too short to be one is refused at start-up.
    let log = TestServer::start_expecting_failure("[http]\noperator_token = \"short\"\n");
    assert!(log.contains("operator_token"), "{log}");
}
