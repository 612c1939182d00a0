//! Browsers' cross-origin calls (`http.cors_origins`), over real HTTP: off by default, preflights
//! and responses for the listed origins only, the MCP endpoint's origin check following the
//! list, and origins that are not in browsers' form refused at start-up. The TypeScript SDK's
//! browser test (sdk/typescript/test/browser.test.js) drives the same from headless Chromium.

use ureq::http::{HeaderMap, Request};

use hypervisor_protocol::ClientSecret;

use crate::harness::{TestServer, code};

const APP: &str = "http://app.example:5173";

/// `method path` with `headers` and an optional JSON body: status, headers, body text.
fn call(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, HeaderMap, String) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .allow_non_standard_methods(true)
            .build(),
    );
    let mut request = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut response = match body {
        Some(body) => agent.run(request.body(body.to_string()).unwrap()),
        None => agent.run(request.body(()).unwrap()),
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.body_mut().read_to_string().unwrap();
    (status, headers, text)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

fn preflight(server: &TestServer, path: &str, origin: &str) -> (u16, HeaderMap, String) {
    call(
        &format!("{}{path}", server.url),
        "OPTIONS",
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type,payment-signature,x-agent-owner",
            ),
        ],
        None,
    )
}

const MCP_INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

fn mcp(server: &TestServer, origin: &str) -> (u16, String) {
    let (status, _, body) = call(
        &format!("{}/mcp", server.url),
        "POST",
        &[
            ("origin", origin),
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
        ],
        Some(MCP_INIT),
    );
    (status, body)
}

/// No `access-control-*` header and no `Vary` in `headers`.
fn no_cors(headers: &HeaderMap) -> bool {
    !headers
        .keys()
        .any(|k| k.as_str().starts_with("access-control-") || k.as_str() == "vary")
}

#[test]
fn without_cors_origins_no_page_may_read_an_answer() {
    let server = TestServer::start();
    // A preflight is an OPTIONS like any other: the route answers it (405), nothing more.
    let (status, headers, body) = preflight(&server, "/encrypt/create_keypair", APP);
    assert_eq!(status, 405, "{body}");
    assert!(no_cors(&headers), "{headers:?}");
    let (status, headers, _) = call(
        &format!("{}/ping", server.url),
        "GET",
        &[("origin", APP)],
        None,
    );
    assert_eq!(status, 200);
    assert!(no_cors(&headers), "{headers:?}");
    // The MCP endpoint refuses another origin (DNS rebinding).
    assert_eq!(mcp(&server, APP).0, 403);
}

#[test]
fn listed_origins_may_call_every_route_and_read_every_header() {
    let server = TestServer::start_with(&format!("[http]\ncors_origins = [{APP:?}]\n"));
    let owner = ClientSecret::generate().unwrap();
    crate::agents::deploy(
        &server.client(),
        &owner,
        "web",
        "http-hello",
        "an HTTP agent",
        &[],
    );

    // A preflight from the listed origin, on a route with and without a POST.
    for path in [
        "/encrypt/create_keypair",
        "/agents/some-agent/invoke",
        "/nowhere",
    ] {
        let (status, headers, body) = preflight(&server, path, APP);
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(header(&headers, "access-control-allow-origin"), Some(APP));
        let methods = header(&headers, "access-control-allow-methods").unwrap();
        for m in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            assert!(methods.contains(m), "{methods}");
        }
        assert_eq!(
            header(&headers, "access-control-allow-headers"),
            Some("content-type,payment-signature,x-agent-owner")
        );
        assert_eq!(header(&headers, "access-control-max-age"), Some("600"));
        assert_eq!(header(&headers, "access-control-allow-credentials"), None);
        assert!(header(&headers, "x-request-id").is_some(), "{headers:?}");
        assert!(
            headers
                .get_all("vary")
                .iter()
                .any(|v| v.to_str().unwrap().contains("origin")),
            "{headers:?}"
        );
    }
    // An OPTIONS that is not a preflight goes to its route, as without CORS: the API's 405,
    // the HTTP agent's own answer (its 405 body, not the host's), no CORS headers.
    let (status, headers, body) = call(
        &format!("{}/encrypt/create_keypair", server.url),
        "OPTIONS",
        &[("origin", APP)],
        None,
    );
    assert_eq!(status, 405, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(code(&json), "method_not_allowed", "{body}");
    assert!(no_cors(&headers), "{headers:?}");
    let (status, headers, body) =
        call(&format!("{}/agents/web/", server.url), "OPTIONS", &[], None);
    assert_eq!(
        (status, body.as_str()),
        (405, r#"{"error":"method_not_allowed"}"#)
    );
    assert!(no_cors(&headers), "{headers:?}");
    let (status, _, body) = call(&format!("{}/nowhere", server.url), "OPTIONS", &[], None);
    assert_eq!(status, 404, "{body}");

    // Another origin learns nothing (the browser refuses its call).
    for origin in ["http://evil.example", "http://app.example:5174", "null"] {
        let (_, headers, _) = preflight(&server, "/encrypt/create_keypair", origin);
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            None,
            "{origin}"
        );
    }

    // Real answers, successes and errors alike, are readable with every header.
    let (status, headers, body) = call(
        &format!("{}/encrypt/create_keypair", server.url),
        "POST",
        &[("origin", APP), ("content-type", "application/json")],
        Some("{}"),
    );
    assert!(status < 500, "{status}: {body}");
    assert_eq!(header(&headers, "access-control-allow-origin"), Some(APP));
    assert_eq!(header(&headers, "access-control-expose-headers"), Some("*"));
    assert!(
        headers
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("origin")),
        "{headers:?}"
    );
    // The HTTP agent's answer too.
    let (status, headers, body) = call(
        &format!("{}/agents/web/", server.url),
        "GET",
        &[("origin", APP)],
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "access-control-allow-origin"), Some(APP));
    let (status, headers, body) = call(
        &format!("{}/agents/nobody", server.url),
        "GET",
        &[("origin", APP)],
        None,
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("\"code\""), "{body}");
    assert_eq!(header(&headers, "access-control-allow-origin"), Some(APP));
    let (_, headers, _) = call(
        &format!("{}/ping", server.url),
        "GET",
        &[("origin", "http://evil.example")],
        None,
    );
    assert_eq!(header(&headers, "access-control-allow-origin"), None);

    // The MCP endpoint takes the listed origin as its own, and still refuses others.
    let (status, body) = mcp(&server, APP);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"result\""), "{body}");
    assert_eq!(mcp(&server, "http://evil.example").0, 403);
}

#[test]
fn any_origin_is_an_explicit_choice() {
    let server = TestServer::start_with("[http]\ncors_origins = [\"*\"]\n");
    let (status, headers, _) = preflight(&server, "/encrypt/create_keypair", APP);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&headers, "access-control-allow-credentials"), None);
    assert_eq!(mcp(&server, "http://elsewhere.example").0, 200);
}

#[test]
fn origins_not_in_browsers_form_are_refused_at_start() {
    for (entry, says) in [
        ("https://app.example/", "write \"https://app.example\""),
        ("app.example", "is not an origin"),
    ] {
        let log =
            TestServer::start_expecting_failure(&format!("[http]\ncors_origins = [{entry:?}]\n"));
        assert!(log.contains("http.cors_origins"), "{log}");
        assert!(log.contains(says), "{entry}: {log}");
    }
}
