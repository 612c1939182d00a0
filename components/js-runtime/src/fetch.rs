//! `fetch`'s transport: one request over `wasi:http/outgoing-handler`, the whole answer read
//! (at most 8 MiB) and handed back to src/web/fetch.js as its status, headers and bytes.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// The largest answer body read.
const MAX_BODY: usize = 8 << 20;

fn method(name: &str) -> Method {
    match name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_string()),
    }
}

fn error_name(e: &wasip2::http::types::ErrorCode) -> String {
    let name = format!("{e:?}");
    name.strip_prefix("ErrorCode::")
        .unwrap_or(&name)
        .to_string()
}

/// An answer: status, header fields (in the order received), body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Sends the request; the answer or why not.
pub fn send(
    url: &str,
    verb: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Result<Answer, String> {
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err("only absolute http(s) URLs can be fetched".into());
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    let fields: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    let fields = Fields::from_list(&fields).map_err(|e| format!("bad headers: {e:?}"))?;
    let request = OutgoingRequest::new(fields);
    request
        .set_method(&method(verb))
        .map_err(|()| format!("bad method {verb}"))?;
    request
        .set_scheme(Some(&if https { Scheme::Https } else { Scheme::Http }))
        .map_err(|()| "bad scheme".to_string())?;
    request
        .set_authority(Some(authority))
        .map_err(|()| format!("bad authority {authority}"))?;
    request
        .set_path_with_query(Some(&path))
        .map_err(|()| format!("bad path {path}"))?;
    let outgoing = request.body().map_err(|()| "no request body".to_string())?;
    let future = outgoing_handler::handle(request, None).map_err(|e| error_name(&e))?;
    if let Some(body) = body
        && let Ok(stream) = outgoing.write()
    {
        for chunk in body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
    let _ = OutgoingBody::finish(outgoing, None);
    future.subscribe().block();
    let response = future
        .get()
        .ok_or("no answer")?
        .map_err(|()| "answer taken twice".to_string())?
        .map_err(|e| error_name(&e))?;
    let headers: Vec<(String, String)> = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|()| "no answer body".to_string())?;
    let stream = incoming
        .stream()
        .map_err(|()| "no answer stream".to_string())?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) if bytes.len() + chunk.len() > MAX_BODY => {
                return Err(format!("the answer is larger than {MAX_BODY} bytes"));
            }
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
        }
    }
    Ok(Answer {
        status: response.status(),
        headers,
        body: bytes,
    })
}
