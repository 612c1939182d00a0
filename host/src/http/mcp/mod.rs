//! MCP (Model Context Protocol) at `POST /mcp`, Streamable HTTP: deployed handler agents as
//! tools ([`tools`]), for clients of the newest revision and of the older ones
//! (`docs/PROTOCOL.md` §20).
//!
//! - **`2026-07-28`** (stateless): every request names its revision in the
//!   `MCP-Protocol-Version` header and in `params._meta`, its method in `Mcp-Method` (and the
//!   tool in `Mcp-Name` for `tools/call`); a disagreement is `HeaderMismatch` (-32020), an
//!   unknown revision `UnsupportedProtocolVersion` (-32022). `server/discover` describes the
//!   server; every result carries `resultType`.
//! - **The `initialize`-based revisions** (2024-11-05 to 2025-11-25): `initialize` negotiates
//!   the revision, `notifications/initialized` and other notifications get `202`, `ping` is
//!   answered. No session id is issued (it is optional), so there is nothing to resume or
//!   delete; GET and DELETE get 405.
//!
//! A request gets one `application/json` response. Errors are JSON-RPC errors with the status
//! the reference server gives them: 400 for a malformed message, bad parameters, a header
//! mismatch or an unsupported revision, 404 for an unknown method; never a 500.

mod tools;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::AppState;
use hypervisor_protocol::jsonrpc::{
    self, INVALID_PARAMS, INVALID_REQUEST, Id, Incoming, METHOD_NOT_FOUND, PARSE_ERROR, RpcError,
};

/// The stateless revision.
pub const LATEST: &str = "2026-07-28";
/// The `initialize`-based revisions, oldest first.
pub const HANDSHAKE: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// A header and the body disagree (2026-07-28).
const HEADER_MISMATCH: i64 = -32020;
/// A revision this server does not speak (2026-07-28).
const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
/// `_meta` key of the revision (2026-07-28).
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key of the client's capabilities (2026-07-28).
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key of the server's name and version (2026-07-28 results).
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// What the server tells clients about itself.
const INSTRUCTIONS: &str = "Each tool is an agent deployed on this WASM Hypervisor host: a \
    WebAssembly component run in a fresh sandbox per call, inside a confidential VM. The \
    arguments are the agent's event; its JSON result is the structured content.";

/// The revision a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revision {
    /// `2026-07-28`.
    Latest,
    /// One of [`HANDSHAKE`].
    Handshake(&'static str),
}

impl Revision {
    /// Whether `structuredContent` may be any JSON value (an object before 2026-07-28).
    pub fn structured_content_any(self) -> bool {
        self == Revision::Latest
    }
}

/// `POST /mcp`.
pub async fn endpoint(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    let authority = request.uri().authority().map(|a| a.as_str().to_string());
    if let Some(refusal) = browser_refusal(&headers, authority.as_deref(), state.pipeline.config())
    {
        return refusal;
    }
    let body = match super::extract::body_bytes(request, &state).await {
        Ok(body) => body,
        Err(e) => {
            let (status, _) = e.status_and_code();
            let error = RpcError::new(None, INVALID_REQUEST, e.to_string());
            return (status, Json(error.body())).into_response();
        }
    };
    match jsonrpc::parse(&body) {
        Ok(Incoming::Notification { method }) => {
            // (Debug-quoted: a client's string, newlines escaped.)
            tracing::debug!(?method, "MCP notification");
            StatusCode::ACCEPTED.into_response()
        }
        Ok(Incoming::Request { id, method, params }) => {
            let revision = match revision(&headers, &id, &method, &params) {
                Ok(revision) => revision,
                Err(error) => return error_response(Revision::Latest, &error),
            };
            match answer(&state, revision, &id, &method, &params).await {
                Ok(result) => Json(jsonrpc::result(&id, result)).into_response(),
                Err(error) => error_response(revision, &error),
            }
        }
        // Not a request whose revision could be known: the stateless revision's statuses
        // (a malformed message is 400 in every revision).
        Err(error) => error_response(Revision::Latest, &error),
    }
}

/// What the Streamable HTTP transport asks of servers against browsers: a JSON body (a
/// page's form or `text/plain` POST gets 415), and an `Origin`, when a browser sends one,
/// that is one of `http.cors_origins`, or the host itself under a name it is known by (DNS
/// rebinding: a page on another origin that resolves to this host gets 403; a same-origin
/// page under a name the attacker's DNS made point here has `Origin` and `Host` equal, so the
/// name itself is checked: an IP address, `localhost`, one of `tls.names`, or
/// `payments.public_url`'s host). The host is the `Host` header, or on HTTP/2 the request's
/// `:authority`. Clients other than browsers send no `Origin`. Returns the refusal, if any.
fn browser_refusal(
    headers: &HeaderMap,
    authority: Option<&str>,
    config: &crate::config::Config,
) -> Option<Response> {
    let http = &config.http;
    let refuse = |status: StatusCode, message: &str| {
        let error = RpcError::new(None, INVALID_REQUEST, message);
        (status, Json(error.body())).into_response()
    };
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let json = content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Some(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be application/json",
        ));
    }
    if let Some(origin) = headers.get(axum::http::header::ORIGIN) {
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or(authority);
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, authority)| authority);
        let listed = origin.to_str().is_ok_and(|o| super::cors::allowed(http, o));
        let own = host.is_some_and(|h| origin_host == Some(h) && known_name(h, config));
        if !listed && !own {
            return Some(refuse(
                StatusCode::FORBIDDEN,
                "requests from another origin are refused",
            ));
        }
    }
    None
}

/// Whether `authority`'s host (its port aside) is a name this host is known by: an IP
/// address (no DNS answer makes one), `localhost`, one of `tls.names`, or the host of
/// `payments.public_url`.
fn known_name(authority: &str, config: &crate::config::Config) -> bool {
    let host = match authority.strip_prefix('[') {
        // [v6]:port
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    if host.parse::<std::net::IpAddr>().is_ok() || host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let public = config
        .payments
        .public_url
        .as_deref()
        .and_then(|u| u.parse::<axum::http::Uri>().ok())
        .and_then(|u| u.host().map(str::to_string));
    config
        .tls
        .names
        .iter()
        .map(String::as_str)
        .chain(public.as_deref())
        .any(|name| name.eq_ignore_ascii_case(host))
}

/// A JSON-RPC error with its HTTP status: in 2026-07-28, 400 for a malformed message, bad
/// parameters, a header mismatch or an unsupported revision, and 404 for an unknown method;
/// in the `initialize`-based revisions an answered request is a 200 whatever its outcome (their
/// clients take any other status as a transport failure).
fn error_response(revision: Revision, error: &RpcError) -> Response {
    let status = match (revision, error.code) {
        (_, PARSE_ERROR) => StatusCode::BAD_REQUEST,
        (Revision::Handshake(_), _) => StatusCode::OK,
        (
            Revision::Latest,
            INVALID_REQUEST | INVALID_PARAMS | HEADER_MISMATCH | UNSUPPORTED_PROTOCOL_VERSION,
        ) => StatusCode::BAD_REQUEST,
        (Revision::Latest, METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
        (Revision::Latest, _) => StatusCode::OK,
    };
    (status, Json(error.body())).into_response()
}

/// The result of one request, in the revision it speaks.
async fn answer(
    state: &AppState,
    revision: Revision,
    id: &Id,
    method: &str,
    params: &Map<String, Value>,
) -> Result<Value, RpcError> {
    let unknown = || {
        RpcError::new(
            Some(id.clone()),
            METHOD_NOT_FOUND,
            format!(
                "no method {method} in MCP revision {}",
                revision_name(revision)
            ),
        )
    };
    let mut result = match (revision, method) {
        (Revision::Handshake(_), "initialize") => initialize(params),
        (Revision::Handshake(_), "ping") => json!({}),
        (Revision::Latest, "server/discover") => discover(),
        (_, "tools/list") => tools::list(state, id, params)?,
        (_, "tools/call") => tools::call(state, revision, id, params).await?,
        _ => return Err(unknown()),
    };
    if revision == Revision::Latest {
        result["resultType"] = json!("complete");
        if method == "tools/list" {
            // The tools change whenever an agent is deployed or deleted: not to be cached.
            result["ttlMs"] = json!(0);
            result["cacheScope"] = json!("public");
        }
        let meta = result
            .as_object_mut()
            .map(|r| r.entry("_meta").or_insert_with(|| json!({})));
        if let Some(Value::Object(meta)) = meta {
            meta.insert(META_SERVER_INFO.into(), server_info());
        }
    }
    Ok(result)
}

/// The revision of a request, checked as the 2026-07-28 revision requires: `_meta` present,
/// then headers agreeing with the body, then a revision spoken here.
fn revision(
    headers: &HeaderMap,
    id: &Id,
    method: &str,
    params: &Map<String, Value>,
) -> Result<Revision, RpcError> {
    let err = |code: i64, message: String| RpcError::new(Some(id.clone()), code, message);
    let header = |name: &str| -> Result<Option<&str>, RpcError> {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(value), None) => value
                .to_str()
                .map(Some)
                .map_err(|_| err(HEADER_MISMATCH, format!("the {name} header is not ASCII"))),
            (Some(_), Some(_)) => Err(err(
                HEADER_MISMATCH,
                format!("the {name} header is repeated"),
            )),
        }
    };
    // Headers that name the method or the tool must agree with the body in every revision (a
    // gateway that routes or filters on them must see what runs).
    if let Some(named) = header("mcp-method")?
        && named != method
    {
        return Err(err(
            HEADER_MISMATCH,
            format!("the Mcp-Method header must be {method}"),
        ));
    }
    if let Some(named) = header("mcp-name")?
        && (method != "tools/call" || params.get("name").and_then(Value::as_str) != Some(named))
    {
        return Err(err(
            HEADER_MISMATCH,
            "the Mcp-Name header must name the tool called".into(),
        ));
    }
    let meta = params.get("_meta").and_then(Value::as_object);
    let meta_version = meta
        .and_then(|m| m.get(META_VERSION))
        .and_then(Value::as_str);
    let stated = header("mcp-protocol-version")?;
    if let Some(v) = stated.and_then(|v| HANDSHAKE.iter().find(|h| **h == v)) {
        return Ok(Revision::Handshake(v));
    }
    if stated.is_none() && meta_version.is_none() {
        // Before 2025-06-18 the header did not exist: such a client speaks 2025-03-26 (or
        // negotiates at `initialize`).
        return Ok(Revision::Handshake(HANDSHAKE[1]));
    }
    // The stateless revision (or one newer than this server knows).
    let Some(meta) = meta.filter(|m| {
        m.get(META_VERSION).is_some_and(Value::is_string)
            && m.get(META_CAPABILITIES).is_some_and(Value::is_object)
    }) else {
        return Err(err(
            INVALID_PARAMS,
            format!("params._meta must carry {META_VERSION} and {META_CAPABILITIES}"),
        ));
    };
    let version = meta.get(META_VERSION).and_then(Value::as_str).unwrap_or("");
    if stated != Some(version) {
        return Err(err(
            HEADER_MISMATCH,
            format!("MCP-Protocol-Version {stated:?} does not match params._meta ({version})"),
        ));
    }
    // 2026-07-28 requires them (their agreement with the body is checked above).
    if header("mcp-method")?.is_none() || (method == "tools/call" && header("mcp-name")?.is_none())
    {
        return Err(err(
            HEADER_MISMATCH,
            "revision 2026-07-28 requires the Mcp-Method header (and Mcp-Name for tools/call)"
                .into(),
        ));
    }
    if version != LATEST {
        let mut error = err(
            UNSUPPORTED_PROTOCOL_VERSION,
            format!("MCP revision {version} is not supported"),
        );
        error.data = Some(json!({"supported": supported(), "requested": version}));
        return Err(error);
    }
    Ok(Revision::Latest)
}

fn revision_name(revision: Revision) -> &'static str {
    match revision {
        Revision::Latest => LATEST,
        Revision::Handshake(v) => v,
    }
}

/// Every revision spoken here, newest first.
fn supported() -> Vec<&'static str> {
    std::iter::once(LATEST)
        .chain(HANDSHAKE.iter().rev().copied())
        .collect()
}

/// `initialize`: the client's revision if spoken here, else the newest `initialize`-based one.
fn initialize(params: &Map<String, Value>) -> Value {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    let version = asked
        .and_then(|a| HANDSHAKE.iter().find(|h| **h == a))
        .copied()
        .unwrap_or(HANDSHAKE[HANDSHAKE.len() - 1]);
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": server_info(),
        "instructions": INSTRUCTIONS,
    })
}

/// `server/discover` (2026-07-28).
fn discover() -> Value {
    json!({
        "supportedVersions": [LATEST],
        "capabilities": {"tools": {"listChanged": false}},
        "instructions": INSTRUCTIONS,
        "ttlMs": 0,
        "cacheScope": "public",
    })
}

fn server_info() -> Value {
    json!({"name": "wasm-hypervisor", "version": env!("CARGO_PKG_VERSION")})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(host: Option<&str>, authority: Option<&str>, origin: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.insert("origin", origin.parse().unwrap());
        if let Some(host) = host {
            headers.insert("host", host.parse().unwrap());
        }
        let mut config = crate::config::Config::default();
        config.tls.names = vec!["mcp.example.org".into()];
        browser_refusal(&headers, authority, &config).is_some()
    }

    /// DNS rebinding: a page at `http://evil.example:8080` whose name the attacker pointed at
    /// this host sends `Origin` and `Host` both `evil.example:8080`: refused, the name being
    /// none this host is known by (before, the two being equal was enough). The host's own
    /// names pass, and on HTTP/2 the `:authority` stands for the missing `Host`.
    #[test]
    fn a_rebound_name_is_refused_and_the_hosts_own_names_pass() {
        assert!(refused(
            Some("evil.example:8080"),
            None,
            "http://evil.example:8080"
        ));
        assert!(!refused(
            Some("127.0.0.1:8080"),
            None,
            "http://127.0.0.1:8080"
        ));
        assert!(!refused(Some("[::1]:8080"), None, "http://[::1]:8080"));
        assert!(!refused(
            Some("localhost:3000"),
            None,
            "http://localhost:3000"
        ));
        assert!(!refused(
            Some("MCP.example.org"),
            None,
            "https://MCP.example.org"
        ));
        // Another origin, even one of the host's names.
        assert!(refused(
            Some("127.0.0.1:8080"),
            None,
            "http://localhost:8080"
        ));
        // HTTP/2: no Host header, the :authority.
        assert!(!refused(
            None,
            Some("mcp.example.org"),
            "https://mcp.example.org"
        ));
        assert!(refused(None, Some("evil.example"), "https://evil.example"));
    }
}
