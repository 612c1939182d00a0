//! `GET /openapi.json`: the OpenAPI 3.1 description of every public route.
//!
//! The document is one hand-written file, `docs/openapi.json`, compiled into the binary; the
//! host sets `info.version` to its own version and serves it. The tests below keep the file
//! honest against the protocol crate, which the router and the error mapping are built from:
//!
//! - it documents exactly the operations of the route table ([`Route::ALL`]: path, method,
//!   `operationId`, summary), which the router answers (`http/tests.rs`);
//! - its `ErrorCode` schema lists exactly [`ErrorCode::ALL`] with their statuses, and every
//!   error response lists only codes of its own status;
//! - every `$ref` resolves and every path parameter is declared.
//!
//! `tests/e2e/openapi.rs` then sends every documented operation to a real server.
//!
//! [`Route::ALL`]: hypervisor_protocol::routes::Route::ALL
//! [`ErrorCode::ALL`]: hypervisor_protocol::ErrorCode::ALL

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::ApiError;

/// The document as written in `docs/openapi.json`.
pub const SOURCE: &str = include_str!("../../../docs/openapi.json");

/// The served body: [`SOURCE`] with `info.version` set to this build's version, serialised
/// once. `Err` only if the embedded file is not a JSON object with an `info` object, which the
/// unit tests rule out.
static BODY: LazyLock<Result<Bytes, String>> =
    LazyLock::new(|| render(SOURCE, env!("CARGO_PKG_VERSION")).map(Bytes::from));

/// `source` (an OpenAPI document) with `info.version` replaced by `version`, as compact JSON.
///
/// # Errors
/// A description of the problem if `source` is not JSON or has no `info` object.
fn render(source: &str, version: &str) -> Result<String, String> {
    let mut doc: serde_json::Value =
        serde_json::from_str(source).map_err(|e| format!("docs/openapi.json: {e}"))?;
    let info = doc
        .get_mut("info")
        .and_then(serde_json::Value::as_object_mut)
        .ok_or("docs/openapi.json has no `info` object")?;
    info.insert("version".into(), version.into());
    serde_json::to_string(&doc).map_err(|e| format!("docs/openapi.json: {e}"))
}

/// `GET /openapi.json`: the document, `application/json` (to the operator only, when
/// `http.operator_token` is set).
pub async fn document(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match super::observe::operator(&state, &headers) {
        Ok(()) => served(),
        Err(e) => e.into_response(),
    }
}

/// The document as served.
fn served() -> Response {
    match &*BODY {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response(),
        Err(e) => ApiError::Internal(e.clone()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use hypervisor_protocol::ErrorCode;
    use hypervisor_protocol::routes::Route;
    use serde_json::Value;

    use super::*;

    /// The operation keys of an OpenAPI path item.
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    /// The embedded document, parsed.
    fn doc() -> Value {
        serde_json::from_str(SOURCE).expect("docs/openapi.json is not valid JSON")
    }

    /// The object `value` refers to when it is a `{"$ref": "#/…"}`, else `value` itself.
    fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(r) => doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling $ref {r}")),
            None => value,
        }
    }

    /// `(path, method)` of every operation in the document.
    fn documented(doc: &Value) -> BTreeSet<(String, String)> {
        let paths = doc["paths"].as_object().expect("`paths` object");
        paths
            .iter()
            .flat_map(|(path, item)| {
                let item = item.as_object().expect("path item object");
                item.keys()
                    .filter(|k| METHODS.contains(&k.as_str()))
                    .map(|m| (path.clone(), m.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// `(path, method)` → `(operationId, summary)` of every operation of the route table, in
    /// OpenAPI's path syntax.
    fn table() -> BTreeMap<(String, String), (&'static str, &'static str)> {
        Route::ALL
            .iter()
            .flat_map(|route| {
                route.operations().iter().map(move |op| {
                    let key = (route.openapi_path(), op.method.openapi_key().to_string());
                    (key, (op.id, op.summary))
                })
            })
            .collect()
    }

    /// Every error code with its status.
    fn error_codes() -> BTreeMap<String, u16> {
        ErrorCode::ALL
            .iter()
            .map(|c| (c.as_str().to_string(), c.status()))
            .collect()
    }

    #[test]
    fn the_route_table_is_documented_and_nothing_else() {
        let doc = doc();
        let table = table();
        let routed: BTreeSet<_> = table.keys().cloned().collect();
        let documented = documented(&doc);
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "docs/openapi.json does not match the protocol's route table:\n\
             in the table but not documented: {undocumented:?}\n\
             documented but not in the table: {unrouted:?}"
        );
        for ((path, method), (id, summary)) in table {
            let operation = &doc["paths"][&path][&method];
            assert_eq!(operation["operationId"], id, "{method} {path}");
            assert_eq!(operation["summary"], summary, "{method} {path}");
        }
    }

    #[test]
    fn every_error_code_is_documented_with_its_status() {
        let doc = doc();
        let documented: Vec<(String, u16)> = doc["components"]["schemas"]["ErrorCode"]["oneOf"]
            .as_array()
            .expect("ErrorCode.oneOf")
            .iter()
            .map(|c| {
                let code = c["const"].as_str().expect("const code");
                let status = c["x-status"].as_u64().expect("x-status");
                (code.to_string(), u16::try_from(status).expect("a status"))
            })
            .collect();
        let codes: Vec<(String, u16)> = ErrorCode::ALL
            .iter()
            .map(|c| (c.as_str().to_string(), c.status()))
            .collect();
        assert_eq!(
            documented, codes,
            "the ErrorCode schema must list ErrorCode::ALL, in order, with their statuses"
        );
    }

    #[test]
    fn error_responses_list_codes_of_their_own_status() {
        let doc = doc();
        let codes = error_codes();
        for (path, method) in documented(&doc) {
            let responses = doc["paths"][&path][&method]["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path} has no responses"));
            for (status, response) in responses {
                let Ok(status) = status.parse::<u16>() else {
                    continue;
                };
                let response = resolve(&doc, response);
                let json = response["content"].get("application/json").is_some();
                if status < 400 || !json {
                    continue;
                }
                // A JSON-RPC route (MCP) lists JSON-RPC error codes instead of ours.
                if let Some(rpc) = response.get("x-json-rpc-errors") {
                    let rpc = rpc.as_array().filter(|c| !c.is_empty());
                    for code in rpc.unwrap_or_else(|| panic!("{method} {path} {status}")) {
                        let code = code.as_i64().expect("a JSON-RPC error code");
                        assert!((-32768..=-32000).contains(&code), "{method} {path}: {code}");
                    }
                    continue;
                }
                // Assist's environments routes answer Assist's codes in Assist's body.
                if let Some(assist) = response.get("x-assist-error-codes") {
                    let assist = assist.as_array().filter(|c| !c.is_empty());
                    let codes = assist.unwrap_or_else(|| panic!("{method} {path} {status}"));
                    assert!(
                        codes.iter().all(Value::is_string),
                        "{method} {path} {status}"
                    );
                    assert!(path.starts_with("/environments"), "{method} {path}");
                    continue;
                }
                let listed = response["x-error-codes"]
                    .as_array()
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| panic!("{method} {path} {status}: no x-error-codes"));
                for code in listed {
                    let code = code.as_str().expect("a code string");
                    assert_eq!(
                        codes.get(code),
                        Some(&status),
                        "{method} {path}: {code} listed under {status}"
                    );
                }
            }
        }
    }

    #[test]
    fn references_resolve_and_path_parameters_are_declared() {
        let doc = doc();
        let mut stack = vec![&doc];
        while let Some(value) = stack.pop() {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        assert!(r.starts_with("#/"), "external $ref {r}");
                        resolve(&doc, value);
                    }
                    stack.extend(map.values());
                }
                Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
        let mut operation_ids = BTreeSet::new();
        for (path, method) in documented(&doc) {
            let item = &doc["paths"][&path];
            let operation = &item[&method];
            let id = operation["operationId"].as_str().expect("operationId");
            assert!(operation_ids.insert(id), "operationId {id} twice");
            let declared: BTreeSet<&str> = [&item["parameters"], &operation["parameters"]]
                .into_iter()
                .filter_map(Value::as_array)
                .flatten()
                .map(|p| resolve(&doc, p))
                .filter(|p| p["in"] == "path" && p["required"] == true)
                .filter_map(|p| p["name"].as_str())
                .collect();
            let templated: BTreeSet<&str> = path
                .split('{')
                .skip(1)
                .filter_map(|s| s.split_once('}').map(|(name, _)| name))
                .collect();
            assert_eq!(declared, templated, "path parameters of {method} {path}");
        }
    }

    #[tokio::test]
    async fn the_served_document_is_the_file_with_this_version() {
        use http_body_util::BodyExt;
        let response = served();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let served: Value = serde_json::from_slice(&body).expect("JSON");
        assert!(
            served["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1"))
        );
        assert_eq!(served["info"]["title"], "WASM Hypervisor");
        assert_eq!(served["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(served["paths"], doc()["paths"]);
        assert!(render("[]", "1").is_err() && render("not json", "1").is_err());
    }
}
