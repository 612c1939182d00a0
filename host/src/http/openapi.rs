//! `GET /openapi.json`: the OpenAPI 3.1 description of every public route.
//!
//! The document is one hand-written file, `docs/openapi.json`, compiled into the binary; the
//! host sets `info.version` to its own version and serves it. The tests below keep the file
//! honest against the code:
//!
//! - every `.route(…)` of [`super::router`] (read from `http/mod.rs`) is documented with
//!   exactly its methods, and nothing else is documented;
//! - every error code of `http/error.rs` is listed in the `ErrorCode` schema with its status,
//!   and every error response lists only codes of its own status;
//! - every `$ref` resolves and every path parameter is declared.
//!
//! `tests/e2e/openapi.rs` then sends every documented operation to a real server.

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};

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

/// `GET /openapi.json`: the document, `application/json`.
pub async fn document() -> Response {
    match &*BODY {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response(),
        Err(e) => ApiError::Internal(e.clone()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::Value;

    use super::*;

    /// The methods a route registered with axum's `any` is documented with.
    const ANY: [&str; 5] = ["get", "post", "put", "delete", "patch"];
    /// The operation keys of an OpenAPI path item (and the method routers of axum).
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

    /// `source` without `//` and `/* */` comments (string literals are kept whole, so a `//`
    /// inside one stays). Enough for our own Rust files, which have no `'"'` char literals.
    fn strip_comments(source: &str) -> String {
        let mut out = String::with_capacity(source.len());
        let mut chars = source.chars().peekable();
        let mut in_string = false;
        while let Some(c) = chars.next() {
            if in_string {
                out.push(c);
                if c == '\\' {
                    out.extend(chars.next());
                } else if c == '"' {
                    in_string = false;
                }
            } else if c == '"' {
                in_string = true;
                out.push(c);
            } else if c == '/' && chars.peek() == Some(&'/') {
                while chars.peek().is_some_and(|&n| n != '\n') {
                    chars.next();
                }
            } else if c == '/' && chars.peek() == Some(&'*') {
                chars.next();
                let mut last = ' ';
                for n in chars.by_ref() {
                    if last == '*' && n == '/' {
                        break;
                    }
                    last = n;
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    /// The byte index of the bracket closing the one just before `s` (`close` is `)` or `}`),
    /// skipping string literals.
    fn closing(s: &str, open: char, close: char) -> Option<usize> {
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        for (i, c) in s.char_indices() {
            if in_string {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => in_string = false,
                    _ => {}
                }
            } else if c == '"' {
                in_string = true;
            } else if c == open {
                depth += 1;
            } else if c == close {
                if depth == 0 {
                    return Some(i);
                }
                depth -= 1;
            }
        }
        None
    }

    /// The names of the functions called in `expr` (`get(`, `.delete(`, `wasm(`), with calls
    /// through a path (`agents::list(`) left out unless the path is `routing::`.
    fn calls(expr: &str) -> Vec<&str> {
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let mut found = Vec::new();
        let mut i = 0;
        while i < expr.len() {
            let rest = &expr[i..];
            let c = rest.chars().next().unwrap_or(' ');
            let starts = (c.is_ascii_alphabetic() || c == '_') && !expr[..i].ends_with(ident);
            if !starts {
                i += c.len_utf8();
                continue;
            }
            let len = rest.find(|p: char| !ident(p)).unwrap_or(rest.len());
            let name = &rest[..len];
            let called = rest[len..].trim_start().starts_with('(');
            let before = &expr[..i];
            if called && (!before.ends_with("::") || before.ends_with("routing::")) {
                found.push(name);
            }
            i += len;
        }
        found
    }

    /// The HTTP methods a method-router expression registers: `get(…)`, `.delete(…)`, `any(…)`
    /// (as [`ANY`]), and those of helper functions defined in `source` (`wasm(…)`), read from
    /// their bodies.
    fn methods(expr: &str, source: &str, depth: usize) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for name in calls(expr) {
            if name == "any" {
                out.extend(ANY.iter().map(|m| m.to_string()));
            } else if METHODS.contains(&name) {
                out.insert(name.to_string());
            } else if let Some(at) = source.find(&format!("fn {name}("))
                && depth < 3
            {
                let body = source[at..]
                    .find('{')
                    .map(|b| &source[at + b + 1..])
                    .and_then(|body| closing(body, '{', '}').map(|end| &body[..end]))
                    .unwrap_or_else(|| panic!("cannot read the body of fn {name}"));
                out.extend(methods(body, source, depth + 1));
            }
        }
        out
    }

    /// `(path, method)` of every `.route("…", …)` call in `source` (a router's Rust source), in
    /// OpenAPI's path syntax (`{*rest}` becomes `{rest}`). Panics on a route whose methods it
    /// cannot tell, so a new kind of registration makes the test fail until it is taught.
    fn routed(source: &str) -> BTreeSet<(String, String)> {
        let source = strip_comments(source);
        for unseen in [".nest(", ".merge(", ".route_service(", ".nest_service("] {
            assert!(
                !source.contains(unseen),
                "the router uses `{unseen}`, which this test cannot read: teach it"
            );
        }
        let mut out = BTreeSet::new();
        let mut rest = source.as_str();
        while let Some(at) = rest.find(".route(") {
            let args = &rest[at + ".route(".len()..];
            let end = closing(args, '(', ')').expect("unbalanced `.route(` call");
            let call = &args[..end];
            let mut parts = call.splitn(3, '"');
            let (Some(_), Some(path), Some(expr)) = (parts.next(), parts.next(), parts.next())
            else {
                panic!("`.route({call})` has no path literal");
            };
            let path = path.replace("{*", "{");
            let found = methods(expr, &source, 0);
            assert!(
                !found.is_empty(),
                "cannot tell the methods of route {path} from `{}`: teach this test",
                expr.trim()
            );
            out.extend(found.into_iter().map(|m| (path.clone(), m)));
            rest = &args[end..];
        }
        out
    }

    /// HTTP status of an axum `StatusCode` constant name.
    fn status_of(name: &str) -> u16 {
        match name {
            "BAD_REQUEST" => 400,
            "PAYMENT_REQUIRED" => 402,
            "FORBIDDEN" => 403,
            "NOT_FOUND" => 404,
            "METHOD_NOT_ALLOWED" => 405,
            "REQUEST_TIMEOUT" => 408,
            "CONFLICT" => 409,
            "PAYLOAD_TOO_LARGE" => 413,
            "UNPROCESSABLE_ENTITY" => 422,
            "INTERNAL_SERVER_ERROR" => 500,
            "BAD_GATEWAY" => 502,
            "SERVICE_UNAVAILABLE" => 503,
            other => panic!("status {other} is new: add it to status_of"),
        }
    }

    /// Every error code of `ApiError::status_and_code` (`http/error.rs`) with its status: each
    /// code is a string literal there, and its status the last `S::NAME` before it.
    fn error_codes() -> BTreeMap<String, u16> {
        let source = strip_comments(include_str!("error.rs"));
        let start = source
            .find("fn status_and_code")
            .expect("fn status_and_code in error.rs");
        let end = start
            + source[start..]
                .find("impl IntoResponse")
                .expect("impl IntoResponse after status_and_code");
        let body = &source[start..end];
        let mut codes = BTreeMap::new();
        let mut status = None;
        let mut rest = body;
        while let Some(at) = rest.find(['"', 'S']) {
            let after = &rest[at + 1..];
            let word_start = !rest[..at].ends_with(|p: char| p.is_ascii_alphanumeric() || p == '_');
            if rest[at..].starts_with('"') {
                let len = after.find('"').expect("closed string literal");
                let code = &after[..len];
                let status = status.unwrap_or_else(|| panic!("no status before {code:?}"));
                let previous = codes.insert(code.to_string(), status);
                assert!(
                    previous.is_none_or(|p| p == status),
                    "{code} has two statuses"
                );
                rest = &after[len + 1..];
            } else if word_start && after.starts_with("::") {
                let name: String = after[2..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                    .collect();
                status = Some(status_of(&name));
                rest = after;
            } else {
                rest = after;
            }
        }
        codes
    }

    #[test]
    fn every_route_is_documented_with_its_methods() {
        let routed = routed(include_str!("mod.rs"));
        // The reader found the routes, helpers and wildcards, not just some of them.
        for known in [
            ("/ping", "get"),
            ("/test/execute/wasm", "post"),
            ("/agents/{name}", "delete"),
            ("/agents/{name}/{rest}", "patch"),
        ] {
            assert!(
                routed.contains(&(known.0.to_string(), known.1.to_string())),
                "the router reader missed {known:?}"
            );
        }
        let documented = documented(&doc());
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "docs/openapi.json does not match router() in http/mod.rs:\n\
             routed but not documented: {undocumented:?}\n\
             documented but not routed: {unrouted:?}"
        );
    }

    #[test]
    fn the_router_reader_sees_every_layout_and_catches_a_new_route() {
        let source = r#"
            fn router() -> Router {
                Router::new()
                    // .route("/commented-out", get(nothing))
                    .route("/a", get(h::a).delete(h::b))
                    .route(
                        "/b/{*rest}",
                        any(h::c),
                    )
                    .route("/c", paid(Kind::X))
            }
            /// A helper.
            fn paid(kind: Kind) -> MethodRouter<S> {
                put(move |State(s): State<S>| { h::run(s, kind) })
            }
        "#;
        let mut expected: BTreeSet<(String, String)> = [("/a", "get"), ("/a", "delete")]
            .into_iter()
            .chain(ANY.iter().map(|m| ("/b/{rest}", *m)))
            .chain([("/c", "put")])
            .map(|(p, m)| (p.to_string(), m.to_string()))
            .collect();
        assert_eq!(routed(source), expected);
        expected.insert(("/d".into(), "get".into()));
        let added = source.replace(".route(\"/c\"", ".route(\"/d\", get(h::d))\n.route(\"/c\"");
        assert_eq!(routed(&added), expected);
    }

    #[test]
    fn every_error_code_is_documented_with_its_status() {
        let codes = error_codes();
        assert!(codes.len() > 40, "the error.rs reader found only {codes:?}");
        assert_eq!(codes.get("agent_failed"), Some(&502));
        assert_eq!(codes.get("guest_trap"), Some(&422));
        let doc = doc();
        let documented: BTreeMap<String, u16> = doc["components"]["schemas"]["ErrorCode"]["oneOf"]
            .as_array()
            .expect("ErrorCode.oneOf")
            .iter()
            .map(|c| {
                let code = c["const"].as_str().expect("const code");
                let status = c["x-status"].as_u64().expect("x-status");
                (code.to_string(), u16::try_from(status).expect("a status"))
            })
            .collect();
        assert_eq!(
            documented, codes,
            "the ErrorCode schema must list http/error.rs's codes and statuses"
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
        let response = document().await;
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
