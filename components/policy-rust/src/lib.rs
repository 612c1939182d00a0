//! A minimal policy for `hypervisor:host/policy-component`, in Rust: a route allow-list.
//!
//! Rules (JSON): `{"routes": ["/test/execute/wasm", ...], "max_time_ms": 1000, "reuse_ms": 0}`.
//! A request on a route not listed is denied with rule `rust.routes`; `max_time_ms` (optional)
//! tightens the time limit of admitted requests; `reuse_ms` (default 0) lets the host reuse a
//! decision for identical requests. An empty document allows every route.
//!
//! It exists to show that any component exporting the `policy` interface can replace the
//! default Python policy through configuration alone.

use std::sync::Mutex;

wit_bindgen::generate!({
    path: "../../wit",
    world: "policy-component",
});

use exports::hypervisor::host::policy::{Decision, Denial, Guest, Limits, RequestInfo, Verdict};

struct Rules {
    routes: Option<Vec<String>>,
    max_time_ms: Option<u64>,
    reuse_ms: u32,
}

static RULES: Mutex<Rules> = Mutex::new(Rules {
    routes: None,
    max_time_ms: None,
    reuse_ms: 0,
});

struct RoutePolicy;

impl Guest for RoutePolicy {
    fn configure(rules: String) -> Result<(), String> {
        let doc: serde_json::Value =
            serde_json::from_str(&rules).map_err(|e| format!("rules are not JSON: {e}"))?;
        let obj = doc.as_object().ok_or("rules must be a JSON object")?;
        for key in obj.keys() {
            if !["routes", "max_time_ms", "reuse_ms"].contains(&key.as_str()) {
                return Err(format!(
                    "unknown key {key} (known: routes, max_time_ms, reuse_ms)"
                ));
            }
        }
        let routes = match obj.get("routes") {
            None => None,
            Some(v) => Some(
                v.as_array()
                    .ok_or("routes must be a list of strings")?
                    .iter()
                    .map(|r| r.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("routes must be a list of strings")?,
            ),
        };
        let max_time_ms = match obj.get("max_time_ms") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or("max_time_ms must be a non-negative integer")?,
            ),
        };
        let reuse_ms = match obj.get("reuse_ms") {
            None => 0,
            Some(v) => v
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or("reuse_ms must be an integer below 2^32")?,
        };
        *RULES.lock().map_err(|_| "rules lock poisoned")? = Rules {
            routes,
            max_time_ms,
            reuse_ms,
        };
        Ok(())
    }

    fn evaluate(request: RequestInfo) -> Verdict {
        let Ok(rules) = RULES.lock() else {
            return Verdict {
                decision: Decision::Deny(Denial {
                    rule: "rust.internal".into(),
                    reason: "policy state unavailable".into(),
                }),
                reuse_ms: 0,
            };
        };
        let decision = match &rules.routes {
            Some(routes) if !routes.contains(&request.route) => Decision::Deny(Denial {
                rule: "rust.routes".into(),
                reason: format!("route {} is not allowed by the Rust policy", request.route),
            }),
            _ => Decision::Allow(Limits {
                time_ms: rules.max_time_ms,
                memory_bytes: None,
                fuel: None,
            }),
        };
        Verdict {
            decision,
            reuse_ms: rules.reuse_ms,
        }
    }
}

export!(RoutePolicy);
