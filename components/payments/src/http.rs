//! A minimal blocking HTTP client on `wasi:http/outgoing-handler`: one JSON POST, the status and
//! a bounded body back. The host decides which origins are reachable (only the facilitator's).

use std::io::{Read as _, Write as _};
use std::time::Duration;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};

use crate::facilitator::Endpoint;

/// Largest facilitator response read (real ones are a few hundred bytes).
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;
/// Connecting and waiting for the first byte (a settlement waits for the chain).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(25);

/// POSTs `body` (JSON) to `path` under `endpoint`; returns the status and the response body.
///
/// # Errors
/// A message describing the transport failure (denied origin, connection refused, timeout, a
/// response larger than 64 KiB).
pub fn post_json(endpoint: &Endpoint, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let headers = Fields::from_list(&[
        ("content-type".into(), b"application/json".to_vec()),
        ("accept".into(), b"application/json".to_vec()),
        ("content-length".into(), body.len().to_string().into_bytes()),
    ])
    .map_err(|e| format!("headers: {e:?}"))?;
    let request = OutgoingRequest::new(headers);
    let set = |ok: Result<(), ()>, what: &str| ok.map_err(|()| format!("cannot set the {what}"));
    set(request.set_method(&Method::Post), "method")?;
    let scheme = if endpoint.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    set(request.set_scheme(Some(&scheme)), "scheme")?;
    set(request.set_authority(Some(&endpoint.authority)), "authority")?;
    let target = format!("{}{path}", endpoint.path_prefix);
    set(request.set_path_with_query(Some(&target)), "path")?;
    let outgoing = request
        .body()
        .map_err(|()| "the request body is unavailable")?;

    let options = RequestOptions::new();
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    // Unsupported options are not fatal: the host's own limit still bounds the call.
    let _ = options.set_connect_timeout(Some(nanos(CONNECT_TIMEOUT)));
    let _ = options.set_first_byte_timeout(Some(nanos(FIRST_BYTE_TIMEOUT)));
    let _ = options.set_between_bytes_timeout(Some(nanos(FIRST_BYTE_TIMEOUT)));

    let pending = outgoing_handler::handle(request, Some(options))
        .map_err(|e| format!("request refused: {e:?}"))?;
    // If the body cannot be written, the request itself failed: its error comes with the
    // response below, which is the one worth reporting.
    let written = outgoing
        .write()
        .map_err(|()| "the request body stream is unavailable".to_string())
        .and_then(|mut stream| {
            // No flush: once Content-Length bytes are in, the host may close the stream, and
            // `finish` completes the body.
            stream
                .write_all(body)
                .map_err(|e| format!("writing the request: {e}"))
        });
    let finished = written.and_then(|()| {
        OutgoingBody::finish(outgoing, None).map_err(|e| format!("finishing the request: {e:?}"))
    });

    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or("no response after waiting")?
        .map_err(|()| "the response was already taken")?
        .map_err(|e| format!("{e:?}"))?;
    finished?;
    let status = response.status();
    let incoming = response
        .consume()
        .map_err(|()| "the response body is unavailable")?;
    let mut bytes = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|()| "the response body stream is unavailable")?;
        let mut limited = stream.take(MAX_RESPONSE_BYTES + 1);
        limited
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading the response: {e}"))?;
    }
    if bytes.len() as u64 > MAX_RESPONSE_BYTES {
        return Err("the response is larger than 64 KiB".into());
    }
    Ok((status, bytes))
}
