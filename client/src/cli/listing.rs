//! `hypervisor-client agent list` and `hypervisor-client search`: the deployed agents, with
//! environments (Assist-compatible set-ups) kept apart and described in words.

use std::process::ExitCode;

use hypervisor_client::Client;

use super::agent::print;

/// Runs `agent list`: every page, following the cursor.
pub fn list(client: &Client, json: bool, environments: bool) -> anyhow::Result<()> {
    // Every page, following the cursor.
    let mut agents = Vec::new();
    let mut after = String::new();
    loop {
        let page = client.get_json(&format!(
            "/agents?limit=1000&after={}",
            hypervisor_client::agents::query_escape(&after)
        ))?;
        agents.extend(page["agents"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(next) => after = next.to_string(),
            None => break,
        }
    }
    let hidden = if environments {
        0
    } else {
        let before = agents.len();
        agents.retain(|a| !is_environment(a));
        before - agents.len()
    };
    let list = serde_json::json!({ "agents": agents });
    print(json, &list, || {
        for a in list["agents"].as_array().into_iter().flatten() {
            println!(
                "{:<24} v{:<3} {:<11} {}",
                a["name"].as_str().unwrap_or_default(),
                a["latest"]["version"],
                kind_of(a),
                description_of(a)
            );
        }
        if hidden > 0 {
            eprintln!(
                "({hidden} environment{} not shown: --environments lists them)",
                if hidden == 1 { "" } else { "s" }
            );
        }
    });
    Ok(())
}

/// `hypervisor-client search QUERY`.
pub fn search(
    client: &Client,
    json: bool,
    query: &str,
    limit: Option<u32>,
) -> anyhow::Result<ExitCode> {
    let hits = client.search(query, limit)?;
    print(json, &hits, || {
        for h in hits["results"].as_array().into_iter().flatten() {
            println!(
                "{:<24} {:<11} {:>6.2}  {}",
                h["name"].as_str().unwrap_or_default(),
                kind_of(h),
                h["score"].as_f64().unwrap_or_default(),
                description_of(h)
            );
        }
    });
    Ok(ExitCode::SUCCESS)
}

/// Whether a listed agent (or search hit) is an environment set up through `/environments/*`
/// (PROTOCOL §25): named `env-<id>`, tagged `environment`, its description the set-up's JSON.
fn is_environment(agent: &serde_json::Value) -> bool {
    agent["name"]
        .as_str()
        .is_some_and(|n| n.starts_with("env-"))
        && agent["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "environment"))
}

/// The kind to show: `environment` for those, else the latest version's (or the hit's).
fn kind_of(agent: &serde_json::Value) -> &str {
    if is_environment(agent) {
        return "environment";
    }
    agent["latest"]["kind"]
        .as_str()
        .or_else(|| agent["kind"].as_str())
        .unwrap_or_default()
}

/// The description to show: an environment's set-up in words, not its JSON.
fn description_of(agent: &serde_json::Value) -> String {
    let description = agent["description"].as_str().unwrap_or_default();
    if !is_environment(agent) {
        return description.to_string();
    }
    let meta: serde_json::Value = serde_json::from_str(description).unwrap_or_default();
    match meta["environment"]["mainModule"].as_str() {
        Some(main) => {
            let modules = meta["environment"]["moduleCount"].as_u64().unwrap_or(1);
            format!(
                "JavaScript environment: {main} ({modules} module{})",
                if modules == 1 { "" } else { "s" }
            )
        }
        None => "JavaScript environment".to_string(),
    }
}
