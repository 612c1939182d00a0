//! A handler agent (world `hypervisor:host/handler-agent`) that calls other agents with the
//! standard `wasi:http/outgoing-handler`, as far as its grants allow, and returns what came
//! back. The example of agent-to-agent calls (docs/PROTOCOL.md §8c) and the caller of the
//! end-to-end tests.
//!
//! Event (JSON; exactly one of `find`, `target`, `cycle`, `url` says where to call):
//!
//! | field    | meaning                                                                     |
//! |----------|-----------------------------------------------------------------------------|
//! | `find`   | search first (`POST http://hypervisor.internal/search`), call the best hit that is not this agent |
//! | `target` | the callee agent's name                                                     |
//! | `cycle`  | agent names: call the one after this agent (wrapping), passing the event on |
//! | `url`    | an absolute URL to call instead of an agent                                 |
//! | `path`   | path at the callee agent, default `/invoke` (`http://NAME.agents.internal{path}`) |
//! | `method` | `GET` or `POST` (default)                                                   |
//! | `body`   | JSON sent (POST), default `{"event": null}`; with `cycle`, `{"event": <this event>}` |
//! | `times`  | how many requests to send one after the other, 1–16 (default 1)             |
//!
//! Result: `{"target": name|null, "url": "...", "responses": [{"status": n,
//! "payment_response": header|null, "body": JSON or text}, ...]}`.
//!
//! Errors (`handler-error` codes): `bad_event`; `not_found` (the search found no other agent);
//! `search_failed` (the search did not answer 200; the message has the status);
//! `request_failed` (a `wasi:http` error, its name in the message, e.g. `HttpRequestDenied`);
//! `too_large` (a response body above 1 MiB). One line to stderr per invocation.

use serde_json::{Value, json};

wit_bindgen::generate!({
    path: "../../wit",
    world: "handler-agent",
});

use exports::hypervisor::host::handler::{Context, Guest, HandlerError};

/// The largest response body read.
const MAX_BODY: usize = 1 << 20;

struct Caller;

export!(Caller);

fn failure(code: &str, message: impl Into<String>) -> HandlerError {
    HandlerError {
        code: code.into(),
        message: message.into(),
    }
}

/// What to call, read from the event.
#[derive(Debug, Clone, PartialEq)]
enum Destination {
    Search(String),
    Agent(String),
    Url(String),
}

/// One planned request (the destination of `find` is resolved by searching first).
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    destination: Destination,
    path: String,
    post: bool,
    body: Value,
    times: u32,
}

/// Plans the request of `event` for the agent named `me`.
fn plan(event: &Value, me: &str) -> Result<Plan, HandlerError> {
    let bad = |why: &str| failure("bad_event", why);
    let text = |key: &str| event.get(key).and_then(Value::as_str).map(str::to_string);
    let mut body = event
        .get("body")
        .cloned()
        .unwrap_or_else(|| json!({"event": null}));
    let destination = match (
        text("find"),
        text("target"),
        event.get("cycle"),
        text("url"),
    ) {
        (Some(q), None, None, None) => Destination::Search(q),
        (None, Some(t), None, None) => Destination::Agent(t),
        (None, None, Some(cycle), None) => {
            let names: Vec<&str> = cycle
                .as_array()
                .ok_or_else(|| bad("`cycle` is a list of agent names"))?
                .iter()
                .map(|n| n.as_str().ok_or_else(|| bad("`cycle` holds names")))
                .collect::<Result<_, _>>()?;
            let next = match names.iter().position(|n| *n == me) {
                Some(i) => names.get((i + 1) % names.len()),
                None => names.first(),
            };
            body = json!({ "event": event });
            Destination::Agent(next.ok_or_else(|| bad("`cycle` is empty"))?.to_string())
        }
        (None, None, None, Some(u)) => Destination::Url(u),
        _ => return Err(bad("send exactly one of `find`, `target`, `cycle`, `url`")),
    };
    let post = match text("method").as_deref() {
        None | Some("POST") => true,
        Some("GET") => false,
        Some(_) => return Err(bad("`method` is GET or POST")),
    };
    let times = match event.get("times") {
        None => 1,
        Some(t) => t
            .as_u64()
            .filter(|t| (1..=16).contains(t))
            .ok_or_else(|| bad("`times` is 1 to 16"))? as u32,
    };
    Ok(Plan {
        destination,
        path: text("path").unwrap_or_else(|| "/invoke".into()),
        post,
        body,
        times,
    })
}

/// The URL of a call to agent `name` at `path`.
fn agent_url(name: &str, path: &str) -> String {
    format!("http://{name}.agents.internal{path}")
}

/// The best search hit that is not `me`.
fn best_hit(answer: &Value, me: &str) -> Option<String> {
    let hits = answer.get("results").unwrap_or(answer).as_array()?;
    hits.iter()
        .filter_map(|h| h.get("name").and_then(Value::as_str))
        .find(|n| *n != me)
        .map(str::to_string)
}

impl Guest for Caller {
    fn handle(event: Vec<u8>, ctx: Context) -> Result<Vec<u8>, HandlerError> {
        let event: Value = serde_json::from_slice(&event).map_err(|e| {
            eprintln!("caller: bad event");
            failure("bad_event", format!("the event is not JSON: {e}"))
        })?;
        let plan = plan(&event, &ctx.agent_name)?;
        let (target, url) = match &plan.destination {
            Destination::Search(query) => {
                let body = json!({"query": query, "limit": 5});
                let answer = io::send("http://hypervisor.internal/search", true, &body)?;
                if answer.status != 200 {
                    return Err(failure(
                        "search_failed",
                        format!("the search answered {}", answer.status),
                    ));
                }
                let name = best_hit(&answer.body, &ctx.agent_name)
                    .ok_or_else(|| failure("not_found", "the search found no other agent"))?;
                let url = agent_url(&name, &plan.path);
                (Some(name), url)
            }
            Destination::Agent(name) => (Some(name.clone()), agent_url(name, &plan.path)),
            Destination::Url(url) => (None, url.clone()),
        };
        let mut responses = Vec::new();
        for _ in 0..plan.times {
            let r = io::send(&url, plan.post, &plan.body)?;
            responses.push(json!({
                "status": r.status,
                "payment_response": r.payment_response,
                "body": r.body,
            }));
        }
        eprintln!(
            "caller: {} call(s) to {}, last status {}",
            responses.len(),
            target.as_deref().unwrap_or(&url),
            responses
                .last()
                .map_or(Value::Null, |r| r["status"].clone())
        );
        let result = json!({"target": target, "url": url, "responses": responses});
        Ok(result.to_string().into_bytes())
    }
}

/// A response, read whole.
struct Answer {
    status: u16,
    payment_response: Option<String>,
    body: Value,
}

/// `wasi:http` I/O (only in the component; the planning above is tested natively).
#[cfg(target_arch = "wasm32")]
mod io {
    use serde_json::Value;
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
    };
    use wasip2::io::streams::StreamError;

    use super::{Answer, HandlerError, MAX_BODY, failure};

    fn request_failed(e: impl std::fmt::Debug) -> HandlerError {
        failure("request_failed", format!("{e:?}"))
    }

    /// Sends one request to `url` (POST with the JSON `body`, or GET) and reads the answer.
    pub fn send(url: &str, post: bool, body: &Value) -> Result<Answer, HandlerError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| failure("bad_event", "the URL is not absolute"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let headers =
            Fields::from_list(&[("content-type".to_string(), b"application/json".to_vec())])
                .map_err(request_failed)?;
        let request = OutgoingRequest::new(headers);
        let _ = request.set_method(if post { &Method::Post } else { &Method::Get });
        let _ = request.set_scheme(Some(if scheme == "https" {
            &Scheme::Https
        } else {
            &Scheme::Http
        }));
        let _ = request.set_authority(Some(authority));
        let _ = request.set_path_with_query(Some(path));
        let outgoing = request.body().map_err(request_failed)?;
        let future = outgoing_handler::handle(request, None).map_err(request_failed)?;
        // A host may answer before reading the body (a refusal): then writing fails, and the
        // answer is still there to read, as with any HTTP server that responds early.
        if post && let Ok(stream) = outgoing.write() {
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
            .ok_or_else(|| request_failed("no response"))?
            .map_err(|()| request_failed("response taken twice"))?
            .map_err(request_failed)?;
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .first()
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let payment_response = header("payment-response").or_else(|| header("x-payment-response"));
        let incoming = response.consume().map_err(request_failed)?;
        let stream = incoming.stream().map_err(request_failed)?;
        let mut bytes = Vec::new();
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    if bytes.len() + chunk.len() > MAX_BODY {
                        return Err(failure("too_large", "a response body above 1 MiB"));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Err(StreamError::Closed) => break,
                Err(e) => return Err(request_failed(e)),
            }
        }
        drop(stream);
        let _ = IncomingBody::finish(incoming);
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok(Answer {
            status,
            payment_response,
            body,
        })
    }
}

/// Native builds (unit tests) have no `wasi:http`.
#[cfg(not(target_arch = "wasm32"))]
mod io {
    use serde_json::Value;

    use super::{Answer, HandlerError, failure};

    pub fn send(_url: &str, _post: bool, _body: &Value) -> Result<Answer, HandlerError> {
        Err(failure(
            "request_failed",
            "no wasi:http outside a component",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_name_one_destination() {
        let p = plan(&json!({"target": "seller"}), "me").unwrap();
        assert_eq!(p.destination, Destination::Agent("seller".into()));
        assert_eq!((p.path.as_str(), p.post, p.times), ("/invoke", true, 1));
        assert_eq!(p.body, json!({"event": null}));
        let p = plan(&json!({"find": "words", "method": "GET", "times": 3}), "me").unwrap();
        assert_eq!(p.destination, Destination::Search("words".into()));
        assert_eq!((p.post, p.times), (false, 3));
        let p = plan(&json!({"url": "http://127.0.0.1:9/x"}), "me").unwrap();
        assert_eq!(
            p.destination,
            Destination::Url("http://127.0.0.1:9/x".into())
        );
        for bad in [
            json!({}),
            json!({"target": "a", "url": "b"}),
            json!({"target": "a", "times": 0}),
            json!({"target": "a", "times": 17}),
            json!({"target": "a", "method": "PUT"}),
            json!({"cycle": []}),
        ] {
            assert_eq!(plan(&bad, "me").unwrap_err().code, "bad_event", "{bad}");
        }
    }

    #[test]
    fn a_cycle_calls_the_next_agent_with_the_same_event() {
        let event = json!({"cycle": ["a", "b", "c"]});
        let next = |me| match plan(&event, me).unwrap().destination {
            Destination::Agent(n) => n,
            d => panic!("{d:?}"),
        };
        assert_eq!(
            (next("a"), next("c"), next("x")),
            ("b".into(), "a".into(), "a".into())
        );
        assert_eq!(plan(&event, "a").unwrap().body, json!({"event": event}));
    }

    #[test]
    fn the_best_hit_is_another_agent() {
        let answer = json!({"results": [{"name": "me"}, {"name": "seller"}]});
        assert_eq!(best_hit(&answer, "me").as_deref(), Some("seller"));
        assert_eq!(
            best_hit(&json!([{"name": "x"}]), "me").as_deref(),
            Some("x")
        );
        assert_eq!(best_hit(&json!({"results": [{"name": "me"}]}), "me"), None);
        assert_eq!(agent_url("s", "/invoke"), "http://s.agents.internal/invoke");
    }
}
