//! Agents over their lifetime: versions and owner-only operations, persistence across a
//! restart without recompiling, TTL expiry, `kill -9` during redeploys, concurrent invocations.

use std::time::Duration;

use hypervisor_client::Client;
use hypervisor_client::agents::{Deployment, owner_signature};
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::OwnerAction;
use serde_json::json;

use crate::agents::{deploy, http, refused};
use crate::harness::{TestServer, code, get_json, wasm};

#[test]
fn versions_owners_logs_and_deletion() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let stranger = ClientSecret::generate().unwrap();
    deploy(
        &client,
        &owner,
        "stats",
        "text-stats",
        "statistics v1",
        &["text"],
    );
    let v2 = deploy(
        &client,
        &owner,
        "stats",
        "text-stats",
        "statistics v2",
        &["text"],
    );
    assert_eq!(v2["latest"]["version"], 2);
    assert_eq!(v2["versions"].as_array().unwrap().len(), 2);
    assert_eq!(v2["description"], "statistics v2");

    // Another key cannot take the name, delete the agent or read its logs.
    let component = wasm("hello");
    let taken = client.deploy_agent(
        &stranger,
        &Deployment {
            name: "stats",
            component: &component,
            ..Deployment::default()
        },
    );
    assert_eq!(refused(taken), (403, "not_owner".to_string()));
    assert_eq!(
        refused(client.delete_agent(&stranger, "stats")),
        (403, "not_owner".to_string())
    );
    assert_eq!(
        refused(client.agent_logs(&stranger, "stats")),
        (403, "not_owner".to_string())
    );

    // Logs: the owner reads the agent's stderr.
    client
        .invoke("stats", json!({"text": "one two three"}))
        .unwrap();
    let logs = client.agent_logs(&owner, "stats").unwrap();
    let lines = logs["logs"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{logs}");
    assert!(
        lines[0]["stderr"].as_str().unwrap().contains("3 words"),
        "{logs}"
    );

    // A signature for one action does not authorise another.
    let signed = owner_signature(
        &owner,
        &client.audience().unwrap(),
        OwnerAction::Logs,
        "stats",
        "",
    )
    .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent
        .delete(format!("{}/agents/stats", server.url))
        .header("x-agent-signature", &signed.signature)
        .header("x-agent-signed-at", &signed.signed_at.to_string())
        .header("x-agent-sequence", &signed.sequence.to_string())
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);

    client.delete_agent(&owner, "stats").unwrap();
    let (status, body) = get_json(&server, "/agents/stats");
    assert_eq!((status, code(&body)), (404, "agent_not_found"));
    assert_eq!(
        refused(client.invoke("stats", json!({"text": "x"}))),
        (404, "agent_not_found".to_string())
    );
    assert!(
        client.search("statistics", None).unwrap()["results"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn agents_survive_a_restart_without_recompiling_and_expire_with_their_ttl() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = TestServer::start_in(&data, "");
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    deploy(&client, &owner, "keeper", "text-stats", "stays", &[]);
    let web = wasm("http-hello");
    client
        .deploy_agent(
            &owner,
            &Deployment {
                name: "web",
                component: &web,
                ..Deployment::default()
            },
        )
        .unwrap();
    server.stop();

    let server = TestServer::start_in(&data, "");
    let client = server.client();
    assert!(
        client
            .invoke("keeper", json!({"text": "still here"}))
            .unwrap()
            .ok
    );
    let (status, _, body) = http("GET", &format!("{}/agents/web/", server.url), None);
    assert_eq!(
        (status, body.as_str()),
        (200, "Hello from a WASM Hypervisor agent\n")
    );
    let log = server.log();
    assert!(
        !log.contains("component compiled"),
        "a restart must not recompile agents:\n{log}"
    );
    assert!(log.contains("component loaded from disk cache"), "{log}");

    // A short TTL: the reaper removes the agent.
    let short = wasm("hello");
    client
        .deploy_agent(
            &owner,
            &Deployment {
                name: "brief",
                component: &short,
                ttl_seconds: Some(1),
                ..Deployment::default()
            },
        )
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = get_json(&server, "/agents/brief");
        if status == 404 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the TTL reaper did not remove the agent"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // An expired agent is no longer served at once; the reaper (every 2 s) removes it and
    // says so.
    assert!(
        server.wait_for_log("agent expired and removed", Duration::from_secs(10)),
        "{}",
        server.log()
    );
    assert_eq!(get_json(&server, "/agents/keeper").0, 200);
}

#[test]
fn concurrent_invocations_of_one_agent_each_get_a_fresh_instance() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    deploy(&client, &owner, "stats", "text-stats", "statistics", &[]);
    let ids: Vec<String> = std::thread::scope(|s| {
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let client = server.client();
                s.spawn(move || {
                    let words = "w ".repeat(i + 1);
                    let run = client.invoke("stats", json!({ "text": words })).unwrap();
                    assert!(run.ok, "{run:?}");
                    assert_eq!(run.result_json().unwrap()["words"], i + 1);
                    run.execution_id
                })
            })
            .collect();
        tasks.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
}

#[test]
fn a_kill_during_deploys_leaves_a_working_version() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = TestServer::start_in(&data, "");
    let owner = ClientSecret::generate().unwrap();
    deploy(&server.client(), &owner, "churn", "text-stats", "v1", &[]);
    // Redeploy in a loop (alternating two components) and kill the server mid-stream.
    let url = server.url.clone();
    let key = owner.to_bytes();
    let deployer = std::thread::spawn(move || {
        let owner = ClientSecret::from_bytes(key.as_slice()).unwrap();
        let client = Client::new(&url);
        let (a, b) = (wasm("text-stats"), wasm("hello"));
        for i in 0..200 {
            let component = if i % 2 == 0 { &b } else { &a };
            let d = Deployment {
                name: "churn",
                description: "churning",
                component,
                ..Deployment::default()
            };
            if client.deploy_agent(&owner, &d).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(700));
    let pid = server.pid();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    deployer.join().unwrap();
    drop(server);

    let server = TestServer::start_in(&data, "");
    let (status, agent) = get_json(&server, "/agents/churn");
    assert_eq!(status, 200, "{agent}");
    let versions = agent["versions"].as_array().unwrap();
    let latest = agent["latest"]["version"].as_u64().unwrap();
    assert_eq!(
        versions.len() as u64,
        latest,
        "versions 1..=latest, no gaps: {agent}"
    );
    // Whatever version is in force works.
    let client = server.client();
    let ok = match agent["latest"]["kind"].as_str().unwrap() {
        "handler" => {
            client
                .invoke("churn", json!({"text": "after the crash"}))
                .unwrap()
                .ok
        }
        _ => client.invoke_cli("churn", &["after"], None).unwrap().ok,
    };
    assert!(ok);
}
