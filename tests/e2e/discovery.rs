//! x402's `bazaar` extension over real HTTP: paid routes and paid agents declare what they take
//! and give in their challenges, and the host serves its own discovery listing
//! (`/discovery/resources`, with the facilitators' filters and pagination) and search
//! (`/discovery/search`). The official x402 TypeScript client reads the listing in
//! sdk/typescript/test/payments.test.js.

use hypervisor_client::agents::Deployment;
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::ToolSchemas;
use serde_json::{Value, json};

use crate::harness::{TestServer, get_json, wasm};
use crate::payments::{b64_json, header, payments_table};

fn deploy(
    server: &TestServer,
    name: &str,
    guest: &str,
    price: Option<&str>,
    public: bool,
    schemas: Option<ToolSchemas>,
) {
    server
        .client()
        .deploy_agent(
            &ClientSecret::generate().unwrap(),
            &Deployment {
                name,
                description: &format!("{name}: counts words in a text"),
                tags: vec!["text".into()],
                component: &wasm(guest),
                price: price.map(str::to_string),
                public: Some(public),
                schemas,
                ..Deployment::default()
            },
        )
        .unwrap_or_else(|e| panic!("deploying {name}: {e}"));
}

/// The `bazaar` declaration of the 402 that `POST path` with `body` gets.
fn declared(server: &TestServer, path: &str, body: &Value) -> Value {
    let (status, headers, json) = server.client().post_json_with(path, body, &[]).unwrap();
    assert_eq!(status, 402, "{json}");
    b64_json(header(&headers, "payment-required").unwrap())["extensions"]["bazaar"].clone()
}

fn list(server: &TestServer, query: &str) -> Value {
    let (status, body) = get_json(server, &format!("/discovery/resources{query}"));
    assert_eq!(status, 200, "{query}: {body}");
    body
}

fn resources(listing: &Value) -> Vec<(String, String)> {
    listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let url = i["resource"].as_str().unwrap();
            let path = url
                .split_once("://")
                .map_or(url, |(_, r)| &r[r.find('/').unwrap_or(0)..]);
            (i["type"].as_str().unwrap().to_string(), path.to_string())
        })
        .collect()
}

#[test]
fn paid_resources_declare_themselves_and_the_host_lists_and_searches_them() {
    let server = TestServer::start_with(&payments_table("public_url = \"https://paid.example\""));
    let typed = ToolSchemas {
        input: Some(json!({
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
            "examples": [{"text": "One two. Three!"}]
        })),
        output: Some(json!({"type": "object", "examples": [{"words": 3, "sentences": 2}]})),
    };
    deploy(
        &server,
        "stats",
        "text-stats",
        Some("7000"),
        true,
        Some(typed),
    );
    deploy(&server, "greeter", "hello", Some("5000"), true, None);
    // Not listed: free, private, and an HTTP agent (whose API the host does not know).
    deploy(&server, "free-stats", "text-stats", None, true, None);
    deploy(
        &server,
        "private-stats",
        "text-stats",
        Some("7000"),
        false,
        None,
    );
    deploy(&server, "web", "http-hello", Some("7000"), true, None);

    // Challenges declare what the resource takes and gives.
    let code = declared(
        &server,
        "/x402_execute/test/wasm",
        &json!({"encrypted_wasm": "00", "public_key": "04"}),
    );
    assert_eq!(code["info"]["input"]["method"], "POST");
    assert_eq!(code["info"]["input"]["body"]["encrypted_wasm"], "<hex>");
    assert_eq!(
        code["schema"]["properties"]["input"]["properties"]["body"]["required"],
        json!(["encrypted_wasm", "public_key"])
    );
    let agent = declared(
        &server,
        "/agents/stats/invoke",
        &json!({"event": {"text": "a"}}),
    );
    assert_eq!(
        agent["info"]["input"],
        json!({"type": "http", "method": "POST", "bodyType": "json", "body": {"event": {"text": "One two. Three!"}}})
    );
    assert_eq!(
        agent["info"]["output"],
        json!({"type": "json", "example": {"words": 3, "sentences": 2}})
    );
    assert_eq!(
        agent["schema"]["properties"]["input"]["properties"]["body"]["properties"]["event"]["required"],
        json!(["text"])
    );
    let (status, headers, _) = server
        .client()
        .post_json_with("/agents/web/", &json!({}), &[])
        .unwrap();
    assert_eq!(status, 402);
    assert_eq!(
        b64_json(header(&headers, "payment-required").unwrap())["extensions"]["bazaar"],
        Value::Null
    );

    // The listing: the paid code routes, then the agents by name (a handler as HTTP and MCP).
    let all = list(&server, "");
    let got = resources(&all);
    let code_routes: Vec<_> = got
        .iter()
        .filter(|(_, p)| p.starts_with("/x402_"))
        .cloned()
        .collect();
    assert!(
        code_routes.contains(&("http".into(), "/x402_execute/test/wasm".into())),
        "{got:?}"
    );
    assert!(
        code_routes.contains(&("http".into(), "/x402_execute/verifiable/wasm".into())),
        "{got:?}"
    );
    let agents: Vec<_> = got[code_routes.len()..].to_vec();
    assert_eq!(
        agents,
        [
            ("http".into(), "/agents/greeter/invoke".into()),
            ("http".into(), "/agents/stats/invoke".into()),
            ("mcp".into(), "/mcp".into()),
        ]
    );
    assert_eq!(
        all["pagination"],
        json!({"limit": 100, "offset": 0, "total": got.len()})
    );
    let stats = &all["items"][code_routes.len() + 1];
    assert_eq!(stats["x402Version"], 2);
    assert_eq!(stats["accepts"][0]["amount"], "7000");
    assert_eq!(
        stats["accepts"][0]["payTo"],
        "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
    );
    assert_eq!(stats["discoveryInfo"], agent["info"]);
    assert_eq!(stats["extensions"]["bazaar"], agent);
    assert_eq!(
        stats["extensions"]["payment-identifier"]["info"]["required"],
        false
    );
    assert_eq!(stats["metadata"]["agent"], "stats");
    assert_eq!(stats["metadata"]["kind"], "handler");
    assert!(stats["lastUpdated"].as_str().unwrap().ends_with('Z'));
    let tool = &all["items"][code_routes.len() + 2];
    assert_eq!(tool["discoveryInfo"]["input"]["tool"], "stats");
    assert_eq!(
        tool["discoveryInfo"]["input"]["example"],
        json!({"text": "One two. Three!"})
    );
    assert_eq!(tool["extensions"].get("payment-identifier"), None);

    // Filters and pages.
    assert_eq!(
        resources(&list(&server, "?type=mcp")),
        [("mcp".to_string(), "/mcp".to_string())]
    );
    assert_eq!(
        list(&server, "?extensions=bazaar,payment-identifier")["pagination"]["total"],
        got.len() - 1
    );
    assert_eq!(
        list(&server, "?network=eip155:84532&scheme=exact")["pagination"]["total"],
        got.len()
    );
    assert_eq!(
        list(&server, "?payTo=0x209693bc6afc0c5328ba36faf03c514ef312287c")["pagination"]["total"],
        got.len()
    );
    assert_eq!(
        list(&server, "?payTo=0x0000000000000000000000000000000000000001")["items"],
        json!([])
    );
    assert_eq!(list(&server, "?network=eip155:1")["pagination"]["total"], 0);
    let page = list(&server, "?limit=2&offset=1");
    assert_eq!(resources(&page), got[1..3].to_vec());
    assert_eq!(
        page["pagination"],
        json!({"limit": 2, "offset": 1, "total": got.len()})
    );
    // A page larger than the host serves is served at its size; past the end, empty.
    assert_eq!(list(&server, "?limit=1000")["pagination"]["limit"], 100);
    let past = list(&server, "?offset=1000");
    assert_eq!(past["items"], json!([]));
    assert_eq!(past["pagination"]["total"].as_u64(), Some(got.len() as u64));
    for bad in ["?limit=0", "?type=ftp", "?offset=-1", "?colour=red"] {
        let (status, body) = get_json(&server, &format!("/discovery/resources{bad}"));
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{bad}: {body}"
        );
    }

    // Search: the paid public agents among the catalog's matches, with their scores, in the
    // official clients' shape; the same filters.
    let (status, found) = get_json(&server, "/discovery/search?query=counts%20words&limit=100");
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["partialResults"], false);
    assert_eq!(found["pagination"], json!({"limit": 100, "cursor": null}));
    let names: Vec<&str> = found["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["agent"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"stats") && names.contains(&"greeter"),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| ["free-stats", "private-stats", "web"].contains(n)),
        "{names:?}"
    );
    assert!(found["resources"][0]["score"].as_f64().unwrap() > 0.0);
    let (_, tools) = get_json(
        &server,
        "/discovery/search?query=counts%20words&type=mcp&cursor=ignored",
    );
    assert_eq!(tools["resources"].as_array().unwrap().len(), 1, "{tools}");
    assert_eq!(
        tools["resources"][0]["discoveryInfo"]["input"]["tool"],
        "stats"
    );
    let (_, one) = get_json(&server, "/discovery/search?query=counts%20words&limit=1");
    assert_eq!(
        (
            one["resources"].as_array().unwrap().len(),
            &one["partialResults"]
        ),
        (1, &json!(true))
    );
    let (status, body) = get_json(&server, "/discovery/search?query=%21%21");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[test]
fn a_host_without_payments_lists_and_finds_nothing() {
    // Paid agents deployed while payments were on, then a restart without them.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let paid = TestServer::start_in(&data, &payments_table(""));
    deploy(&paid, "stats", "text-stats", Some("7000"), true, None);
    paid.stop();
    let server = TestServer::start_in(&data, "");
    let empty = list(&server, "");
    assert_eq!(
        empty,
        json!({"x402Version": 2, "items": [], "pagination": {"limit": 100, "offset": 0, "total": 0}})
    );
    let (status, found) = get_json(&server, "/discovery/search?query=counts%20words");
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["resources"], json!([]));
}
