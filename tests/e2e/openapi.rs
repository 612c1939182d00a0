//! `GET /openapi.json` against the real router, over loopback HTTP: every documented operation
//! reaches a route (not the router's fallback) and answers a status the document lists, every
//! other method on a documented path and an undocumented path reach the fallback.

use serde_json::Value;

use crate::harness::{TestServer, code, get_json};

/// The methods tried on every documented path (those an axum `any` route is documented with).
const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// The router's fallbacks: unknown path, known path with another method.
const FALLBACKS: [(u16, &str); 2] = [(404, "not_found"), (405, "method_not_allowed")];

/// `path` with its parameters filled: an agent and an execution that do not exist, and a
/// several-segment rest (the router's `{*rest}`).
fn concrete(path: &str) -> String {
    path.replace("{name}", "openapi-no-such-agent")
        .replace("{id}", "0190b3f0-0000-7000-8000-000000000000")
        .replace("{rest}", "some/deep/path")
}

/// Sends `method` to `url`, with the body `{}` when `json` (the minimal JSON body): the
/// status and the body text.
fn send(method: &str, url: &str, json: bool) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let response = match method {
        "get" => agent.get(url).call(),
        "delete" => agent.delete(url).call(),
        "post" | "put" | "patch" => {
            let request = match method {
                "post" => agent.post(url),
                "put" => agent.put(url),
                _ => agent.patch(url),
            };
            if json {
                request
                    .header("content-type", "application/json")
                    .send("{}")
            } else {
                request.send_empty()
            }
        }
        other => panic!("no request for method {other}"),
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let text = response.into_body().read_to_string().unwrap_or_default();
    (status, text)
}

/// The stable error code of a response body: `error.code`, or the x402 challenge's `code`.
fn error_code(text: &str) -> Option<String> {
    let body: Value = serde_json::from_str(text).ok()?;
    body["error"]["code"]
        .as_str()
        .or_else(|| body["code"].as_str())
        .map(str::to_string)
}

/// The object `value` refers to when it is a `{"$ref": "#/…"}`, else `value`.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {r}")),
        None => value,
    }
}

#[test]
fn every_documented_operation_is_routed_and_nothing_else_is() {
    let server = TestServer::start();
    let (status, doc) = get_json(&server, "/openapi.json");
    assert_eq!(status, 200, "{doc}");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "openapi: {}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "WASM Hypervisor");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 20, "only {} paths", paths.len());

    let mut operations = 0;
    for (path, item) in paths {
        let url = format!("{}{}", server.url, concrete(path));
        for method in METHODS {
            let operation = item.get(method);
            let json = operation.is_some_and(|o| o.get("requestBody").is_some());
            let (status, text) = send(method, &url, json);
            let code = error_code(&text);
            let fallback = code
                .as_deref()
                .is_some_and(|c| FALLBACKS.contains(&(status, c)));
            let Some(operation) = operation else {
                assert!(
                    fallback && status == 405,
                    "{method} {path} is not documented but answered {status} {text}"
                );
                continue;
            };
            operations += 1;
            assert!(
                !fallback,
                "{method} {path} is documented but reached the router's fallback: {status} {text}"
            );
            let responses = &operation["responses"];
            match responses.get(status.to_string()) {
                Some(response) => {
                    let response = resolve(&doc, response);
                    if let (Some(listed), Some(code)) =
                        (response["x-error-codes"].as_array(), code.as_deref())
                    {
                        assert!(
                            listed.iter().any(|c| c == code),
                            "{method} {path} answered {status} {code}, not among {listed:?}"
                        );
                    }
                }
                None => assert!(
                    responses.get("default").is_some(),
                    "{method} {path} answered {status}, which the document does not list: {text}"
                ),
            }
        }
    }
    assert!(operations >= 30, "only {operations} operations");

    // The fallbacks are what the checks above tell apart from a route.
    let (status, body) = get_json(&server, "/definitely-not-a-route");
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    let (status, text) = send(
        "post",
        &format!("{}/definitely-not-a-route", server.url),
        true,
    );
    assert_eq!(
        (status, error_code(&text).as_deref()),
        (404, Some("not_found"))
    );
    let (status, text) = send("put", &format!("{}/ping", server.url), false);
    assert_eq!(
        (status, error_code(&text).as_deref()),
        (405, Some("method_not_allowed"))
    );
}
