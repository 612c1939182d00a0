//! A handler agent (world `hypervisor:host/handler-agent`, exports `hypervisor:host/handler`):
//! statistics about a text.
//!
//! Event: `{"text": "..."}` (other fields ignored). Result:
//!
//! ```json
//! {"characters":n,"words":n,"lines":n,"sentences":n,"top_words":[["word",count],...],
//!  "agent":"<ctx.agent-name>","execution_id":"<ctx.execution-id>"}
//! ```
//!
//! - `characters`: Unicode scalar values (Rust `chars`).
//! - `words`: maximal runs of alphanumeric characters and apostrophes (`'`, `’`), with leading
//!   and trailing apostrophes trimmed and empty runs dropped (`don't` is one word).
//! - `lines`: Rust's `str::lines` (a final newline does not start a line; `""` has 0).
//! - `sentences`: runs of `.`, `!`, `?` that follow at least one alphanumeric character since
//!   the previous run, plus one for trailing text without a terminator (`"Hi. You?!"` has 2).
//! - `top_words`: the 5 most frequent words, lowercased, by count descending then word
//!   ascending.
//!
//! An event that is not JSON or has no string `text` fails with `handler-error`
//! `{code: "bad_event"}`. Each invocation writes one line to stderr (the agent's log): for
//! example `text-stats: 9 words, 1 lines, 2 sentences`, or `text-stats: bad event`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

wit_bindgen::generate!({
    path: "../../wit",
    world: "handler-agent",
});

use exports::hypervisor::host::handler::{Context, Guest, HandlerError};

struct TextStats;

export!(TextStats);

#[derive(Deserialize)]
struct Event {
    text: String,
}

#[derive(Serialize)]
struct Output<'a> {
    #[serde(flatten)]
    stats: Stats,
    agent: &'a str,
    execution_id: &'a str,
}

impl Guest for TextStats {
    fn handle(event: Vec<u8>, ctx: Context) -> Result<Vec<u8>, HandlerError> {
        let event: Event = serde_json::from_slice(&event).map_err(|e| {
            eprintln!("text-stats: bad event");
            HandlerError {
                code: "bad_event".into(),
                message: format!("expected {{\"text\": \"...\"}}: {e}"),
            }
        })?;
        let stats = stats(&event.text);
        eprintln!(
            "text-stats: {} words, {} lines, {} sentences",
            stats.words, stats.lines, stats.sentences
        );
        let output = Output {
            stats,
            agent: &ctx.agent_name,
            execution_id: &ctx.execution_id,
        };
        Ok(serde_json::to_vec(&output).expect("serialisable"))
    }
}

#[derive(Serialize, Debug, PartialEq)]
struct Stats {
    characters: usize,
    words: usize,
    lines: usize,
    sentences: usize,
    top_words: Vec<(String, usize)>,
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

fn stats(text: &str) -> Stats {
    // A BTreeMap, not a HashMap: no random seed needed (one WASI import less).
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut words = 0;
    for run in text.split(|c: char| !(c.is_alphanumeric() || is_apostrophe(c))) {
        let word = run.trim_matches(is_apostrophe);
        if !word.is_empty() {
            words += 1;
            *counts.entry(word.to_lowercase()).or_default() += 1;
        }
    }
    let mut top_words: Vec<(String, usize)> = counts.into_iter().collect();
    top_words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top_words.truncate(5);

    let mut sentences = 0;
    let mut in_sentence = false;
    for c in text.chars() {
        if matches!(c, '.' | '!' | '?') {
            if in_sentence {
                sentences += 1;
                in_sentence = false;
            }
        } else if c.is_alphanumeric() {
            in_sentence = true;
        }
    }
    if in_sentence {
        sentences += 1;
    }

    Stats {
        characters: text.chars().count(),
        words,
        lines: text.lines().count(),
        sentences,
        top_words,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let s = stats("The cat sat. The cat didn't run!\nWhy?");
        assert_eq!(s.characters, 37);
        assert_eq!(s.words, 8);
        assert_eq!(s.lines, 2);
        assert_eq!(s.sentences, 3);
        assert_eq!(
            s.top_words,
            vec![
                ("cat".to_string(), 2),
                ("the".to_string(), 2),
                ("didn't".to_string(), 1),
                ("run".to_string(), 1),
                ("sat".to_string(), 1),
            ]
        );
    }

    #[test]
    fn empty_and_edges() {
        let s = stats("");
        assert_eq!((s.characters, s.words, s.lines, s.sentences), (0, 0, 0, 0));
        assert!(s.top_words.is_empty());
        assert_eq!(stats("Wait... what?! ok").sentences, 3);
        assert_eq!(stats("...").sentences, 0);
        assert_eq!(stats("'quoted' ’tis").words, 2);
        assert_eq!(stats("a\n").lines, 1);
    }
}
