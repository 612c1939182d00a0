//! A `wasi:http/proxy` agent: exports `wasi:http/incoming-handler` and nothing else, so any
//! host that serves `wasi:http` components runs it. The host serves it under `/agents/{name}/...`
//! and hands it the part of the path after the agent's name. One fresh instance per request.
//!
//! | request                      | response                                                        |
//! |------------------------------|-----------------------------------------------------------------|
//! | `GET /`                      | 200 `text/plain; charset=utf-8`, `Hello from a WASM Hypervisor agent\n` |
//! | `POST /echo`, JSON body      | 200 `application/json`, `{"method":"POST","path":"/echo","body":<the body, parsed and re-serialised compactly>,"signedIn":<the x-signed-in-wallet header, or null>}` |
//! | `POST /echo`, not JSON       | 400 `application/json`, `{"error":"bad_json"}`                  |
//! | `POST /echo`, body > 1 MiB   | 413 `application/json`, `{"error":"too_large"}`                 |
//! | `POST /echo`, body unreadable| 400 `application/json`, `{"error":"bad_body"}`                  |
//! | other method on `/`, `/echo` | 405 `application/json`, `{"error":"method_not_allowed"}`        |
//! | any other path               | 404 `application/json`, `{"error":"not_found"}`                 |
//!
//! A query string is ignored for routing (`GET /?x=1` is `GET /`). Every response carries
//! `content-length`. Re-serialised JSON objects have their keys in sorted order (`serde_json`'s
//! default map).
//!
//! `GET /` is the throughput-benchmark path: it does no parsing and writes a constant body.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasip2::http::proxy::export!(HttpHello);

const HELLO: &[u8] = b"Hello from a WASM Hypervisor agent\n";
/// The largest request body `POST /echo` accepts.
const MAX_BODY: usize = 1 << 20;

struct HttpHello;

impl Guest for HttpHello {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path_with_query = request.path_with_query();
        let path = path_with_query
            .as_deref()
            .map_or("/", |p| p.split_once('?').map_or(p, |(path, _)| path));
        match (request.method(), path) {
            (Method::Get, "/") => respond(out, 200, "text/plain; charset=utf-8", HELLO),
            (Method::Post, "/echo") => echo(&request, path, out),
            (_, "/" | "/echo") => error(out, 405, "method_not_allowed"),
            _ => error(out, 404, "not_found"),
        }
    }
}

fn echo(request: &IncomingRequest, path: &str, out: ResponseOutparam) {
    let body = match read_body(request) {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return error(out, 413, "too_large"),
        Err(BodyError::Io) => return error(out, 400, "bad_body"),
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return error(out, 400, "bad_json");
    };
    // The wallet the host says the client signed in with (x402 sign-in-with-x), if any.
    let signed_in = request
        .headers()
        .get("x-signed-in-wallet")
        .first()
        .map(|v| serde_json::Value::from(String::from_utf8_lossy(v).into_owned()))
        .unwrap_or(serde_json::Value::Null);
    // Written by hand to keep the documented key order (a `json!` map would sort them).
    let reply = format!(
        r#"{{"method":"POST","path":{},"body":{},"signedIn":{}}}"#,
        serde_json::Value::from(path),
        value,
        signed_in
    );
    respond(out, 200, "application/json", reply.as_bytes());
}

enum BodyError {
    TooLarge,
    Io,
}

/// Reads the whole request body, refusing more than `MAX_BODY` bytes.
fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, BodyError> {
    let body = request.consume().map_err(|_| BodyError::Io)?;
    // Declared after `body`, so dropped before it (a stream must go before its body).
    let stream = body.stream().map_err(|_| BodyError::Io)?;
    let mut buf = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                if buf.len() + chunk.len() > MAX_BODY {
                    return Err(BodyError::TooLarge);
                }
                buf.extend_from_slice(&chunk);
            }
            Err(wasip2::io::streams::StreamError::Closed) => return Ok(buf),
            Err(_) => return Err(BodyError::Io),
        }
    }
}

fn error(out: ResponseOutparam, status: u16, code: &str) {
    respond(
        out,
        status,
        "application/json",
        format!(r#"{{"error":"{code}"}}"#).as_bytes(),
    );
}

/// Sends a complete response. Failures past `ResponseOutparam::set` can only mean the client
/// went away, so they are ignored.
fn respond(out: ResponseOutparam, status: u16, content_type: &str, body: &[u8]) {
    let headers = Fields::from_list(&[
        ("content-type".to_string(), content_type.as_bytes().to_vec()),
        (
            "content-length".to_string(),
            body.len().to_string().into_bytes(),
        ),
    ])
    .expect("valid headers");
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).expect("valid status");
    let outgoing = response.body().expect("body taken once");
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        // `blocking-write-and-flush` takes at most 4096 bytes per call.
        for chunk in body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
    }
    let _ = OutgoingBody::finish(outgoing, None);
}
