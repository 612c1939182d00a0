//! `{{name}}`: a `wasi:http/proxy` agent for WASM Hypervisor (any host that serves `wasi:http`
//! components runs it, `wasmtime serve` too). The host serves it under `/agents/{{name}}/`
//! and hands it the rest of the path. One fresh instance per request.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

wasip2::http::proxy::export!(Agent);

struct Agent;

impl Guest for Agent {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_else(|| "/".into());
        let body = format!("Hello from {{name}}: you asked for {path}\n");
        respond(out, 200, "text/plain; charset=utf-8", body.as_bytes());
    }
}

fn respond(out: ResponseOutparam, status: u16, content_type: &str, body: &[u8]) {
    let Ok(headers) = Fields::from_list(&[
        ("content-type".to_string(), content_type.as_bytes().to_vec()),
        ("content-length".to_string(), body.len().to_string().into_bytes()),
    ]) else {
        return;
    };
    let response = OutgoingResponse::new(headers);
    if response.set_status_code(status).is_err() {
        return;
    }
    let Ok(outgoing) = response.body() else { return };
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
