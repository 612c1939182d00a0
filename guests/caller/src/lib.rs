//! A handler agent (world `hypervisor:host/handler-agent`, exports `hypervisor:host/handler`)
//! that calls other agents with the standard `wasi:http/outgoing-handler`, as far as its grants
//! allow, and returns what came back: the example of agent-to-agent calls (docs/PROTOCOL.md
//! §18) and the caller of the end-to-end tests.
//!
//! Event: a JSON object; every field is optional, but exactly one of `find`, `target`, `cycle`
//! and `url` says where to call. Other fields are ignored.
//!
//! | field    | type            | meaning                                                      |
//! |----------|-----------------|--------------------------------------------------------------|
//! | `find`   | string          | search first: `POST http://hypervisor.internal/search` with `{"query": <find>, "limit": 5}`; call the first hit whose `name` is not this agent's |
//! | `target` | agent name      | the callee agent                                             |
//! | `cycle`  | agent names     | call the name after this agent's in the list (wrapping; the first if this agent is not in it), with the body `{"event": <this whole event>}`, so the chain goes on until the host stops it |
//! | `url`    | string          | an absolute `http` or `https` URL to call instead of an agent |
//! | `path`   | string          | path (and query) at the callee agent, starting with `/`; default `/invoke`: the URL is `http://NAME.agents.internal{path}` (ignored with `url`) |
//! | `method` | `GET` or `POST` | default `POST`                                               |
//! | `body`   | any JSON        | sent compactly with `content-type: application/json` (POST only); default `{"event": null}`; ignored with `cycle` |
//! | `times`  | integer 1–16    | how many requests to send, one after the other; default 1    |
//!
//! An agent name is non-empty ASCII letters, digits and `-` (the host's rule is stricter). The
//! search's answer is read as `{"results": [<hit>, ...]}` or as a bare list of hits.
//!
//! Result: `{"target": <agent name, or null for a url>, "url": "<the URL called>", "responses":
//! [{"status": n, "payment_response": <the payment-response header, else x-payment-response,
//! else null>, "body": <the body as JSON, or as a string if it is not JSON>}, ...]}`, one
//! response per request whatever its status.
//!
//! Errors (`handler-error` codes):
//!
//! | code             | when                                                                 |
//! |------------------|----------------------------------------------------------------------|
//! | `bad_event`      | not JSON, not an object, a field of the wrong type or value, none or more than one of `find`/`target`/`cycle`/`url` |
//! | `search_failed`  | the search answered another status than 200 (the message has it)     |
//! | `not_found`      | the search found no agent but this one                               |
//! | `request_failed` | `wasi:http` failed; the message is the error code's name, e.g. `HttpRequestDenied` for a refused origin |
//! | `too_large`      | a response body above 1 MiB                                          |
//!
//! Each invocation writes one line to stderr (the agent's log): for example
//! `caller: 1 call(s) to seller, last status 200`, or `caller: request_failed: HttpRequestDenied`.

use serde::Serialize;
use serde_json::{Value, json};

wit_bindgen::generate!({
    path: "../../wit",
    world: "handler-agent",
});

use exports::hypervisor::host::handler::{Context, Guest, HandlerError};

const SEARCH_URL: &str = "http://hypervisor.internal/search";

struct Caller;

export!(Caller);

/// Where to call, read from the event.
#[derive(Debug, PartialEq)]
enum Destination {
    /// Search with this query, call the best other agent.
    Search(String),
    Agent(String),
    Url(String),
}

/// The requests an event asks for (the destination of `find` is known after searching).
#[derive(Debug, PartialEq)]
struct Plan {
    destination: Destination,
    path: String,
    /// The JSON body to POST, or `None` for a GET.
    body: Option<Value>,
    times: u32,
}

#[derive(Debug, Serialize)]
struct Output {
    target: Option<String>,
    url: String,
    responses: Vec<Response>,
}

/// One response, read whole.
#[derive(Debug, Serialize)]
struct Response {
    status: u16,
    payment_response: Option<String>,
    body: Value,
}

fn failure(code: &str, message: impl Into<String>) -> HandlerError {
    HandlerError {
        code: code.into(),
        message: message.into(),
    }
}

fn bad_event(why: impl Into<String>) -> HandlerError {
    failure("bad_event", why)
}

impl Guest for Caller {
    fn handle(event: Vec<u8>, ctx: Context) -> Result<Vec<u8>, HandlerError> {
        let output = run(&event, &ctx.agent_name);
        match &output {
            Ok(out) => eprintln!(
                "caller: {} call(s) to {}, last status {}",
                out.responses.len(),
                out.target.as_deref().unwrap_or(&out.url),
                out.responses.last().map_or(0, |r| r.status)
            ),
            Err(e) => eprintln!("caller: {}: {}", e.code, e.message),
        }
        output.map(|out| serde_json::to_vec(&out).expect("serialisable"))
    }
}

/// Handles `event` for the agent named `me`.
fn run(event: &[u8], me: &str) -> Result<Output, HandlerError> {
    let event: Value = serde_json::from_slice(event)
        .map_err(|e| bad_event(format!("the event is not JSON: {e}")))?;
    let plan = plan(&event, me)?;
    let agent = |name: String| (agent_url(&name, &plan.path), Some(name));
    let (url, target) = match plan.destination {
        Destination::Search(query) => agent(search(&query, me)?),
        Destination::Agent(name) => agent(name),
        Destination::Url(url) => (url, None),
    };
    let responses = (0..plan.times)
        .map(|_| io::send(&url, plan.body.as_ref()))
        .collect::<Result<_, _>>()?;
    Ok(Output {
        target,
        url,
        responses,
    })
}

/// Plans the requests of `event` for the agent named `me`.
fn plan(event: &Value, me: &str) -> Result<Plan, HandlerError> {
    let fields = event
        .as_object()
        .ok_or_else(|| bad_event("the event is not a JSON object"))?;
    let string = |key: &str| match fields.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .map(Some)
            .ok_or_else(|| bad_event(format!("`{key}` is a string"))),
    };
    let cycle = fields.get("cycle");
    let destination = match (string("find")?, string("target")?, cycle, string("url")?) {
        (Some(query), None, None, None) => Destination::Search(query.into()),
        (None, Some(name), None, None) => Destination::Agent(agent_name(name)?.into()),
        (None, None, Some(names), None) => Destination::Agent(next_in_cycle(names, me)?.into()),
        (None, None, None, Some(url)) => {
            split_url(url).ok_or_else(|| bad_event("`url` is an absolute http(s) URL"))?;
            Destination::Url(url.into())
        }
        _ => {
            return Err(bad_event(
                "send exactly one of `find`, `target`, `cycle`, `url`",
            ));
        }
    };
    let path = string("path")?.unwrap_or("/invoke");
    if !path.starts_with('/') {
        return Err(bad_event("`path` starts with `/`"));
    }
    let post = match string("method")? {
        None | Some("POST") => true,
        Some("GET") => false,
        Some(_) => return Err(bad_event("`method` is GET or POST")),
    };
    let body = match (cycle, fields.get("body")) {
        (Some(_), _) => json!({ "event": event }),
        (None, Some(body)) => body.clone(),
        (None, None) => json!({"event": null}),
    };
    let times = match fields.get("times") {
        None => 1,
        Some(t) => {
            t.as_u64()
                .filter(|t| (1..=16).contains(t))
                .ok_or_else(|| bad_event("`times` is an integer from 1 to 16"))? as u32
        }
    };
    Ok(Plan {
        destination,
        path: path.into(),
        body: post.then_some(body),
        times,
    })
}

/// `name` if it is shaped like an agent name (it becomes a DNS label of the URL).
fn agent_name(name: &str) -> Result<&str, HandlerError> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(name)
    } else {
        Err(bad_event(format!("{name:?} is not an agent name")))
    }
}

/// The name after `me` in the list `names` (wrapping), or its first if `me` is not in it.
fn next_in_cycle<'a>(names: &'a Value, me: &str) -> Result<&'a str, HandlerError> {
    let names: Vec<&str> = names
        .as_array()
        .ok_or_else(|| bad_event("`cycle` is a list of agent names"))?
        .iter()
        .map(|n| {
            n.as_str()
                .ok_or_else(|| bad_event("`cycle` holds agent names"))
                .and_then(agent_name)
        })
        .collect::<Result<_, _>>()?;
    let next = match names.iter().position(|n| *n == me) {
        Some(i) => names.get((i + 1) % names.len()),
        None => names.first(),
    };
    next.copied().ok_or_else(|| bad_event("`cycle` is empty"))
}

/// The URL of a call to agent `name` at `path`.
fn agent_url(name: &str, path: &str) -> String {
    format!("http://{name}.agents.internal{path}")
}

/// An absolute URL, split for `wasi:http`.
#[derive(Debug, PartialEq)]
struct UrlParts<'a> {
    https: bool,
    authority: &'a str,
    /// Path and query, `/` when empty (the fragment is never sent).
    path: String,
}

/// Splits an absolute `http` or `https` URL; `None` for anything else.
fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        _ => return None,
    };
    let rest = rest.split_once('#').map_or(rest, |(rest, _)| rest);
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    if authority.is_empty() {
        return None;
    }
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Some(UrlParts {
        https,
        authority,
        path,
    })
}

/// Searches for `query`; the name of the best hit that is not `me`.
fn search(query: &str, me: &str) -> Result<String, HandlerError> {
    let answer = io::send(SEARCH_URL, Some(&json!({"query": query, "limit": 5})))?;
    if answer.status != 200 {
        return Err(failure(
            "search_failed",
            format!("the search answered {}", answer.status),
        ));
    }
    best_hit(&answer.body, me)
        .ok_or_else(|| failure("not_found", "the search found no other agent"))
}

/// The first search hit that is not `me`, in `{"results": [...]}` or a bare list.
fn best_hit(answer: &Value, me: &str) -> Option<String> {
    let hits = answer.get("results").unwrap_or(answer).as_array()?;
    hits.iter()
        .filter_map(|h| h.get("name").and_then(Value::as_str))
        .find(|n| *n != me)
        .map(str::to_string)
}

/// `wasi:http` I/O (only in the component: the logic above is tested natively).
#[cfg(target_arch = "wasm32")]
mod io {
    use serde_json::Value;
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
        http_error_code,
    };
    use wasip2::io::streams::StreamError;

    use super::{HandlerError, Response, bad_event, failure, split_url};

    /// The largest response body read.
    const MAX_BODY: usize = 1 << 20;

    /// `request_failed` with the name of the `wasi:http` error (`HttpRequestDenied`, ...).
    fn request_failed(e: &ErrorCode) -> HandlerError {
        let name = format!("{e:?}");
        failure(
            "request_failed",
            name.strip_prefix("ErrorCode::").unwrap_or(&name),
        )
    }

    /// Sends one request to `url`: a POST of the JSON `body`, or a GET when `None`.
    pub fn send(url: &str, body: Option<&Value>) -> Result<Response, HandlerError> {
        let parts = split_url(url).ok_or_else(|| bad_event("not an absolute http(s) URL"))?;
        let content_type = [("content-type".to_string(), b"application/json".to_vec())];
        let headers = Fields::from_list(if body.is_some() { &content_type } else { &[] })
            .expect("valid headers");
        let request = OutgoingRequest::new(headers);
        let method = if body.is_some() {
            Method::Post
        } else {
            Method::Get
        };
        request.set_method(&method).expect("a valid method");
        let scheme = if parts.https {
            Scheme::Https
        } else {
            Scheme::Http
        };
        request.set_scheme(Some(&scheme)).expect("a valid scheme");
        request
            .set_authority(Some(parts.authority))
            .map_err(|()| bad_event("the URL's authority is not valid"))?;
        request
            .set_path_with_query(Some(&parts.path))
            .map_err(|()| bad_event("the URL's path is not valid"))?;
        let outgoing = request.body().expect("the body, taken once");
        let future = outgoing_handler::handle(request, None).map_err(|e| request_failed(&e))?;
        // A host may answer before reading the body (a refusal): then writing fails, and the
        // answer is still there to read, as with any HTTP server that responds early.
        if let Some(body) = body
            && let Ok(stream) = outgoing.write()
        {
            // `blocking-write-and-flush` takes at most 4096 bytes per call.
            for chunk in body.to_string().as_bytes().chunks(4096) {
                if stream.blocking_write_and_flush(chunk).is_err() {
                    break;
                }
            }
        }
        let _ = OutgoingBody::finish(outgoing, None);
        future.subscribe().block();
        let response = future
            .get()
            .expect("ready after blocking")
            .expect("taken once")
            .map_err(|e| request_failed(&e))?;
        let payment_response = {
            let headers = response.headers();
            let header = |name| {
                let values = headers.get(name);
                let value = values.first()?;
                Some(String::from_utf8_lossy(value).into_owned())
            };
            header("payment-response").or_else(|| header("x-payment-response"))
        };
        let incoming = response.consume().expect("the body, taken once");
        let bytes = read_body(&incoming)?;
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok(Response {
            status: response.status(),
            payment_response,
            body,
        })
    }

    /// Reads a whole response body, refusing more than `MAX_BODY` bytes.
    fn read_body(incoming: &IncomingBody) -> Result<Vec<u8>, HandlerError> {
        let stream = incoming.stream().expect("the stream, taken once");
        let mut bytes = Vec::new();
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) if bytes.len() + chunk.len() > MAX_BODY => {
                    return Err(failure("too_large", "a response body above 1 MiB"));
                }
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => return Ok(bytes),
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(match http_error_code(&e) {
                        Some(code) => request_failed(&code),
                        None => failure("request_failed", e.to_debug_string()),
                    });
                }
            }
        }
    }
}

/// Native builds (the unit tests) have no `wasi:http`.
#[cfg(not(target_arch = "wasm32"))]
mod io {
    use serde_json::Value;

    use super::{HandlerError, Response, failure};

    pub fn send(_url: &str, _body: Option<&Value>) -> Result<Response, HandlerError> {
        Err(failure(
            "request_failed",
            "no wasi:http outside a component",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(event: Value) -> String {
        plan(&event, "me").unwrap_err().code
    }

    #[test]
    fn defaults() {
        let p = plan(&json!({"target": "seller", "other": 1}), "me").unwrap();
        assert_eq!(
            p,
            Plan {
                destination: Destination::Agent("seller".into()),
                path: "/invoke".into(),
                body: Some(json!({"event": null})),
                times: 1,
            }
        );
        assert_eq!(agent_url("s", "/invoke"), "http://s.agents.internal/invoke");
    }

    #[test]
    fn find_target_and_url_name_the_destination() {
        let p = plan(&json!({"find": "words", "method": "GET", "times": 3}), "me").unwrap();
        assert_eq!(p.destination, Destination::Search("words".into()));
        assert_eq!((p.body, p.times), (None, 3));
        let p = plan(
            &json!({"target": "web", "path": "/echo?x=1", "body": [1, "two"]}),
            "me",
        )
        .unwrap();
        assert_eq!(p.destination, Destination::Agent("web".into()));
        assert_eq!(
            (p.path.as_str(), p.body),
            ("/echo?x=1", Some(json!([1, "two"])))
        );
        assert_eq!(
            plan(&json!({"target": "a", "body": null}), "me")
                .unwrap()
                .body,
            Some(Value::Null)
        );
        let p = plan(&json!({"url": "http://127.0.0.1:9/x"}), "me").unwrap();
        assert_eq!(
            p.destination,
            Destination::Url("http://127.0.0.1:9/x".into())
        );
    }

    #[test]
    fn a_cycle_calls_the_next_agent_with_the_same_event() {
        let event = json!({"cycle": ["a", "b", "c"], "body": "ignored"});
        let next = |me| plan(&event, me).unwrap().destination;
        assert_eq!(next("a"), Destination::Agent("b".into()));
        assert_eq!(next("c"), Destination::Agent("a".into()));
        assert_eq!(next("x"), Destination::Agent("a".into()));
        assert_eq!(
            plan(&event, "a").unwrap().body,
            Some(json!({"event": event}))
        );
    }

    #[test]
    fn bad_events() {
        for bad in [
            json!([]),
            json!("target"),
            json!({}),
            json!({"target": "a", "url": "http://b/"}),
            json!({"find": "a", "cycle": ["b"]}),
            json!({"target": 5}),
            json!({"target": "a", "url": 5}),
            json!({"target": ""}),
            json!({"target": "a.b/c"}),
            json!({"target": "a", "times": 0}),
            json!({"target": "a", "times": 17}),
            json!({"target": "a", "times": 1.5}),
            json!({"target": "a", "method": "PUT"}),
            json!({"target": "a", "path": "invoke"}),
            json!({"cycle": []}),
            json!({"cycle": "a"}),
            json!({"cycle": ["a", 1]}),
            json!({"url": "ftp://example.com/"}),
            json!({"url": "example.com/x"}),
            json!({"url": "http:///x"}),
        ] {
            assert_eq!(code(bad.clone()), "bad_event", "{bad}");
        }
        let e = run(b"not json", "me").unwrap_err();
        assert_eq!(e.code, "bad_event");
    }

    #[test]
    fn urls_split_for_wasi_http() {
        let parts = |url| split_url(url).map(|p| (p.https, p.authority, p.path));
        assert_eq!(
            parts("http://127.0.0.1:9/x?y=1#z"),
            Some((false, "127.0.0.1:9", "/x?y=1".into()))
        );
        assert_eq!(
            parts("HTTPS://example.com"),
            Some((true, "example.com", "/".into()))
        );
        assert_eq!(
            parts("https://example.com?q"),
            Some((true, "example.com", "/?q".into()))
        );
    }

    #[test]
    fn the_best_hit_is_another_agent() {
        let answer = json!({"results": [{"name": "me"}, {"x": 1}, {"name": "seller"}]});
        assert_eq!(best_hit(&answer, "me").as_deref(), Some("seller"));
        assert_eq!(
            best_hit(&json!([{"name": "x"}]), "me").as_deref(),
            Some("x")
        );
        assert_eq!(best_hit(&json!({"results": [{"name": "me"}]}), "me"), None);
        assert_eq!(best_hit(&json!({"error": "x"}), "me"), None);
    }
}
