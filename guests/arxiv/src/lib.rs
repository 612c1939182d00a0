//! The **arxiv** agent: a handler agent (world `hypervisor:host/handler-agent`, exports
//! `hypervisor:host/handler`) that searches a small bundled set of real arXiv papers offline.
//!
//! Event: `{"query": "...", "limit": 5}`. `limit` is optional (absent or `null`: 5); above 20
//! it is capped at 20; below 1, or not an integer, is an error. Result:
//!
//! ```json
//! {"query":"<as given>","results":[{"id":"1706.03762","title":"...","authors":["..."],
//!   "year":2017,"category":"cs.CL","score":7.1234,"url":"https://arxiv.org/abs/1706.03762"}],
//!  "total":<number of matching papers, before the limit>}
//! ```
//!
//! Ranking is BM25 (k1 1.2, b 0.75) over title (each title token counts twice), summary and
//! authors; tokens are lowercased alphanumeric runs minus a tiny stopword list, and repeated
//! query terms count once. Only papers matching at least one term are returned, best first,
//! ties by id. A query made only of stopwords or unknown words returns no results.
//!
//! Errors (`handler-error`, code `bad_event`): not JSON, no string `query`, a query with no
//! non-whitespace character, a bad `limit`.
//!
//! A successful invocation writes one line to stderr (the agent's log), for example
//! `arxiv: 4 matches for "learned index"`.
//!
//! The dataset (`data/papers.json`, embedded) is parsed on every invocation: each invocation
//! is a fresh instance. Logic lives in `search.rs`, which also builds and tests natively.

mod search;

use serde::{Deserialize, Serialize};

wit_bindgen::generate!({
    path: "../../wit",
    world: "handler-agent",
});

use exports::hypervisor::host::handler::{Context, Guest, HandlerError};

const DEFAULT_LIMIT: i64 = 5;
const MAX_LIMIT: i64 = 20;

struct Arxiv;

export!(Arxiv);

#[derive(Deserialize)]
struct Event {
    query: String,
    #[serde(default)]
    limit: Option<i64>,
}

#[derive(Serialize)]
struct Output<'a> {
    query: &'a str,
    results: Vec<search::Hit<'a>>,
    total: usize,
}

fn bad_event(message: String) -> HandlerError {
    HandlerError {
        code: "bad_event".into(),
        message,
    }
}

impl Guest for Arxiv {
    fn handle(event: Vec<u8>, _ctx: Context) -> Result<Vec<u8>, HandlerError> {
        let event: Event = serde_json::from_slice(&event).map_err(|e| {
            bad_event(format!(
                "expected {{\"query\": \"...\", \"limit\": n}}: {e}"
            ))
        })?;
        if event.query.trim().is_empty() {
            return Err(bad_event("empty query".into()));
        }
        let limit = event.limit.unwrap_or(DEFAULT_LIMIT);
        if limit < 1 {
            return Err(bad_event(format!("limit must be at least 1, got {limit}")));
        }
        let papers = search::papers();
        let mut results = search::search(&papers, &event.query);
        let total = results.len();
        eprintln!("arxiv: {total} matches for {:?}", event.query);
        results.truncate(limit.min(MAX_LIMIT) as usize);
        let output = Output {
            query: &event.query,
            results,
            total,
        };
        Ok(serde_json::to_vec(&output).expect("serialisable"))
    }
}
