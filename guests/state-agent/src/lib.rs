//! A handler agent that keeps state through `wasi:keyvalue@0.2.0-draft2` (the version Spin's
//! components import: compare-and-swap, `s64` counters, string cursors) and reads its owner's
//! configuration through `wasi:config/store` (`@0.2.0-rc.1`, and Spin's
//! `@0.2.0-draft-2024-09-27` for `get-all`): the example of agent state and secrets
//! (docs/PROTOCOL.md §23) and an agent of the end-to-end tests.
//!
//! Event: a JSON object with `op` and the fields it needs; bucket `b` (default `"default"`).
//!
//! | `op`          | fields            | does                                                   | result |
//! |---------------|-------------------|--------------------------------------------------------|--------|
//! | `get`         | `key`             | `bucket.get`                                           | `{"value": string or null}` |
//! | `set`         | `key`, `value`    | `bucket.set`                                           | `{"ok": true}` |
//! | `incr`        | `key`, `delta`?   | `atomics.increment` (default delta 1)                  | `{"value": n}` |
//! | `cas_incr`    | `key`             | adds 1 to a decimal counter with `cas` + `swap`, retrying while it changes | `{"value": n, "retries": r}` |
//! | `list`        |                   | `list-keys`, following the cursor                      | `{"keys": [...]}` |
//! | `get_many`    | `keys`            | `batch.get-many`                                       | `{"values": {key: string or null}}` |
//! | `config`      | `name`            | `wasi:config/store.get` (rc.1)                         | `{"value": string or null}` |
//! | `config_names`|                   | `wasi:config/store.get-all` (Spin's version)           | `{"names": [...]}` |
//! | `send_secret` | `name`, `url`     | GETs `url` with `authorization: Bearer <config name>`   | `{"status": n}` |
//! | `trap_secret` | `name`            | reads the value, then traps with it in the panic message | (traps) |
//! | `noop`        |                   | nothing (the baseline of an invocation)                 | `{}` |
//! | `bench`       | `kind`, `n`       | `n` timed `get`s of one hot key, `set`s or `increment`s (`kind` `get`, `set`, `incr`), each timed with the monotonic clock | `{"p50_ns", "p99_ns", "n"}` |
//!
//! Errors (`handler-error` codes): `bad_event` (not a JSON object, unknown `op`, a missing
//! field), `store` (the store's error, in the message), `request_failed` (`wasi:http`'s error
//! name).

use serde_json::{Value, json};

wit_bindgen::generate!({
    inline: r#"
        package example:state-agent;

        world state-agent {
            include hypervisor:host/stateful-handler-agent@0.1.0;
            import wasi:config/store@0.2.0-draft-2024-09-27;
        }
    "#,
    path: "../../wit",
    world: "example:state-agent/state-agent",
    generate_all,
});

use exports::hypervisor::host::handler::{Context, Guest, HandlerError};
use wasi::config0_2_0_draft_2024_09_27::store as spin_config;
use wasi::config0_2_0_rc_1::store as config;
use wasi::keyvalue0_2_0_draft2::{atomics, batch, store};

struct StateAgent;

export!(StateAgent);

fn failure(code: &str, message: impl Into<String>) -> HandlerError {
    HandlerError {
        code: code.to_string(),
        message: message.into(),
    }
}

fn bad_event(message: &str) -> HandlerError {
    failure("bad_event", message)
}

fn store_error(e: store::Error) -> HandlerError {
    failure("store", format!("{e:?}"))
}

fn text(event: &Value, field: &str) -> Result<String, HandlerError> {
    event[field]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| bad_event(&format!("`{field}` (a string) is missing")))
}

fn config_value(name: &str) -> Result<String, HandlerError> {
    config::get(name)
        .map_err(|e| failure("config", format!("{e:?}")))?
        .ok_or_else(|| failure("config", format!("no configuration value {name}")))
}

fn run(event: &Value) -> Result<Value, HandlerError> {
    let op = text(event, "op")?;
    let bucket_name = event["b"].as_str().unwrap_or("default");
    let bucket = || store::open(bucket_name).map_err(store_error);
    Ok(match op.as_str() {
        "get" => {
            let v = bucket()?.get(&text(event, "key")?).map_err(store_error)?;
            json!({ "value": v.map(|v| String::from_utf8_lossy(&v).into_owned()) })
        }
        "set" => {
            bucket()?
                .set(&text(event, "key")?, text(event, "value")?.as_bytes())
                .map_err(store_error)?;
            json!({ "ok": true })
        }
        "incr" => {
            let delta = event["delta"].as_i64().unwrap_or(1);
            let v = atomics::increment(&bucket()?, &text(event, "key")?, delta).map_err(store_error)?;
            json!({ "value": v })
        }
        "cas_incr" => {
            let b = bucket()?;
            let key = text(event, "key")?;
            let mut cas = atomics::Cas::new(&b, &key).map_err(store_error)?;
            let mut retries = 0u32;
            loop {
                let current = cas.current().map_err(store_error)?;
                let n: u64 = current
                    .map(|v| String::from_utf8_lossy(&v).parse().unwrap_or(0))
                    .unwrap_or(0);
                match atomics::swap(cas, (n + 1).to_string().as_bytes()) {
                    Ok(()) => break json!({ "value": n + 1, "retries": retries }),
                    Err(atomics::CasError::CasFailed(again)) => {
                        retries += 1;
                        cas = again;
                    }
                    Err(atomics::CasError::StoreError(e)) => return Err(store_error(e)),
                }
            }
        }
        "list" => {
            let b = bucket()?;
            let mut keys = Vec::new();
            let mut cursor = None;
            loop {
                let page = b.list_keys(cursor.as_deref()).map_err(store_error)?;
                keys.extend(page.keys);
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            json!({ "keys": keys })
        }
        "get_many" => {
            let keys: Vec<String> = event["keys"]
                .as_array()
                .ok_or_else(|| bad_event("`keys` (a list of strings) is missing"))?
                .iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect();
            let found = batch::get_many(&bucket()?, &keys).map_err(store_error)?;
            let values: serde_json::Map<String, Value> = found
                .into_iter()
                .map(|(k, v)| (k, json!(v.map(|v| String::from_utf8_lossy(&v).into_owned()))))
                .collect();
            json!({ "values": values })
        }
        "config" => {
            let v = config::get(&text(event, "name")?).map_err(|e| failure("config", format!("{e:?}")))?;
            json!({ "value": v })
        }
        "config_names" => {
            let all = spin_config::get_all().map_err(|e| failure("config", format!("{e:?}")))?;
            json!({ "names": all.into_iter().map(|(k, _)| k).collect::<Vec<_>>() })
        }
        "send_secret" => {
            let secret = config_value(&text(event, "name")?)?;
            json!({ "status": io::get_with_bearer(&text(event, "url")?, &secret)? })
        }
        "trap_secret" => {
            let secret = config_value(&text(event, "name")?)?;
            panic!("trapping while holding the secret {secret}");
        }
        "noop" => json!({}),
        "bench" => bench(
            &bucket()?,
            event["kind"].as_str().unwrap_or("get"),
            event["n"].as_u64().unwrap_or(1000).clamp(1, 100_000),
        )?,
        other => return Err(bad_event(&format!("unknown op {other:?}"))),
    })
}

/// `n` timed operations of `kind` on one key of `b`: their p50 and p99, nanoseconds.
fn bench(b: &store::Bucket, kind: &str, n: u64) -> Result<Value, HandlerError> {
    let value = vec![b'v'; 64];
    b.set("bench-key", &value).map_err(store_error)?;
    let mut times = Vec::with_capacity(n as usize);
    for i in 0..n {
        let start = std::time::Instant::now();
        match kind {
            "get" => {
                b.get("bench-key").map_err(store_error)?;
            }
            "set" => b.set(&format!("bench-{}", i % 16), &value).map_err(store_error)?,
            "incr" => {
                atomics::increment(b, "bench-counter", 1).map_err(store_error)?;
            }
            other => return Err(bad_event(&format!("unknown kind {other:?}"))),
        }
        times.push(start.elapsed().as_nanos() as u64);
    }
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    Ok(json!({ "p50_ns": at(0.5), "p99_ns": at(0.99), "n": n }))
}

impl Guest for StateAgent {
    fn handle(event: Vec<u8>, _context: Context) -> Result<Vec<u8>, HandlerError> {
        let event: Value =
            serde_json::from_slice(&event).map_err(|_| bad_event("the event is not JSON"))?;
        if !event.is_object() {
            return Err(bad_event("the event is not a JSON object"));
        }
        Ok(run(&event)?.to_string().into_bytes())
    }
}

mod io {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

    use super::{HandlerError, bad_event, failure};

    /// GETs `url` with `authorization: Bearer <token>`; the status.
    pub fn get_with_bearer(url: &str, token: &str) -> Result<u16, HandlerError> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad_event("not an absolute http(s) URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let headers = Fields::from_list(&[(
            "authorization".to_string(),
            format!("Bearer {token}").into_bytes(),
        )])
        .map_err(|_| bad_event("the token is not a valid header value"))?;
        let request = OutgoingRequest::new(headers);
        let _ = request.set_method(&Method::Get);
        let _ = request.set_scheme(Some(&if https { Scheme::Https } else { Scheme::Http }));
        request
            .set_authority(Some(authority))
            .map_err(|()| bad_event("the URL's authority is not valid"))?;
        request
            .set_path_with_query(Some(path))
            .map_err(|()| bad_event("the URL's path is not valid"))?;
        let outgoing = request.body().map_err(|()| failure("request_failed", "no body"))?;
        let failed = |e: &wasip2::http::types::ErrorCode| {
            let name = format!("{e:?}");
            failure("request_failed", name.strip_prefix("ErrorCode::").unwrap_or(&name))
        };
        let future = outgoing_handler::handle(request, None).map_err(|e| failed(&e))?;
        let _ = OutgoingBody::finish(outgoing, None);
        future.subscribe().block();
        let response = future
            .get()
            .ok_or_else(|| failure("request_failed", "no response"))?
            .map_err(|()| failure("request_failed", "taken twice"))?
            .map_err(|e| failed(&e))?;
        Ok(response.status())
    }
}
