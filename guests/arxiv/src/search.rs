//! BM25 search over the bundled papers. Plain Rust with no WASI or WIT in sight, so the ranking
//! is unit-tested natively (`cargo test -p arxiv --target x86_64-unknown-linux-gnu`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// The dataset: real arXiv papers, summaries written for this project (not the abstracts).
pub const PAPERS_JSON: &str = include_str!("../data/papers.json");

/// BM25 term-frequency saturation.
const K1: f64 = 1.2;
/// BM25 length normalisation.
const B: f64 = 0.75;
/// How many times a title token counts (in its term frequency and in the document length).
const TITLE_WEIGHT: u32 = 2;

/// Dropped from documents and queries alike.
#[rustfmt::skip]
fn is_stopword(token: &str) -> bool {
    matches!(
        token,
        "a" | "an" | "and" | "are" | "as" | "at" | "be" | "by" | "for" | "from" | "in" | "is"
            | "it" | "its" | "of" | "on" | "or" | "that" | "the" | "this" | "to" | "was" | "we"
            | "with"
    )
}

/// One paper, borrowing from the embedded JSON (no copies unless a string has escapes).
#[derive(Deserialize)]
pub struct Paper<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub title: Cow<'a, str>,
    #[serde(borrow)]
    pub authors: Vec<Cow<'a, str>>,
    pub year: u16,
    #[serde(borrow)]
    pub category: Cow<'a, str>,
    #[serde(borrow)]
    pub summary: Cow<'a, str>,
}

#[derive(Serialize, Debug)]
pub struct Hit<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub authors: &'a [Cow<'a, str>],
    pub year: u16,
    pub category: &'a str,
    /// BM25 score rounded to 4 decimals.
    pub score: f64,
    pub url: String,
}

pub fn papers() -> Vec<Paper<'static>> {
    serde_json::from_str(PAPERS_JSON).expect("bundled dataset is valid")
}

/// Byte classes for the tokenizer's ASCII fast path.
const SEPARATOR: u8 = 0;
const LOWER: u8 = 1; // lowercase letter or digit
const UPPER: u8 = 2;
const NON_ASCII: u8 = 3;
static CLASSES: [u8; 256] = {
    let mut classes = [SEPARATOR; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        classes[b] = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            LOWER
        } else if c.is_ascii_uppercase() {
            UPPER
        } else if c.is_ascii() {
            SEPARATOR
        } else {
            NON_ASCII
        };
        b += 1;
    }
    classes
};

/// Calls `f` with each token of `text`: a maximal run of alphanumeric characters, lowercased,
/// unless it is a stopword. This is the hot loop of an invocation, hence the byte-class table
/// for ASCII (non-ASCII characters are decoded and classified as Unicode) and the one reused
/// buffer for runs that need lowercasing.
pub fn for_each_token(text: &str, mut f: impl FnMut(&str)) {
    let bytes = text.as_bytes();
    let mut lower = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let mut needs_lowering = false;
        while i < bytes.len() {
            match CLASSES[usize::from(bytes[i])] {
                LOWER => i += 1,
                UPPER => {
                    needs_lowering = true;
                    i += 1;
                }
                SEPARATOR => break,
                _ => {
                    let c = text[i..].chars().next().expect("char boundary");
                    if !c.is_alphanumeric() {
                        break;
                    }
                    needs_lowering = true;
                    i += c.len_utf8();
                }
            }
        }
        if i == start {
            // A separator: skip it (a whole character).
            i += text[i..].chars().next().map_or(1, char::len_utf8);
            continue;
        }
        let run = &text[start..i];
        let token = if !needs_lowering {
            run
        } else {
            lower.clear();
            if run.is_ascii() {
                lower.push_str(run);
                lower.make_ascii_lowercase();
            } else {
                lower.extend(run.chars().flat_map(char::to_lowercase));
            }
            lower.as_str()
        };
        if !is_stopword(token) {
            f(token);
        }
    }
}

/// The tokens of `text` (see [`for_each_token`]).
pub fn tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for_each_token(text, |t| tokens.push(t.to_string()));
    tokens
}

/// Ranks `papers` against `query` by BM25 over title (×2), summary and authors. Returns every
/// paper that matches at least one query term, best first (ties by id), and leaves truncation
/// to the caller.
pub fn search<'a>(papers: &'a [Paper<'a>], query: &str) -> Vec<Hit<'a>> {
    let mut terms = tokens(query);
    terms.sort();
    terms.dedup();
    if terms.is_empty() || papers.is_empty() {
        return Vec::new();
    }

    // Per document: its length and the frequency of each query term (indexed like `terms`).
    let mut lengths = Vec::with_capacity(papers.len());
    let mut freqs = vec![0u32; papers.len() * terms.len()];
    for (d, paper) in papers.iter().enumerate() {
        let tf = &mut freqs[d * terms.len()..(d + 1) * terms.len()];
        let mut length = 0u32;
        let mut count = |text: &str, weight: u32| {
            for_each_token(text, |token| {
                length += weight;
                // A handful of terms: a linear scan (lengths differ first) beats a search.
                if let Some(i) = terms.iter().position(|t| t == token) {
                    tf[i] += weight;
                }
            });
        };
        count(&paper.title, TITLE_WEIGHT);
        count(&paper.summary, 1);
        for author in &paper.authors {
            count(author, 1);
        }
        lengths.push(length);
    }

    let n = papers.len() as f64;
    let avgdl = lengths.iter().map(|&l| f64::from(l)).sum::<f64>() / n;
    let idf: Vec<f64> = (0..terms.len())
        .map(|t| {
            let df = (0..papers.len())
                .filter(|d| freqs[d * terms.len() + t] > 0)
                .count() as f64;
            (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
        })
        .collect();

    let mut hits: Vec<Hit<'a>> = papers
        .iter()
        .enumerate()
        .filter_map(|(d, paper)| {
            let norm = K1 * (1.0 - B + B * f64::from(lengths[d]) / avgdl);
            let mut score = 0.0;
            for (t, idf) in idf.iter().enumerate() {
                let tf = f64::from(freqs[d * terms.len() + t]);
                if tf > 0.0 {
                    score += idf * tf * (K1 + 1.0) / (tf + norm);
                }
            }
            (score > 0.0).then(|| Hit {
                id: &paper.id,
                title: &paper.title,
                authors: &paper.authors,
                year: paper.year,
                category: &paper.category,
                score: (score * 10_000.0).round() / 10_000.0,
                url: format!("https://arxiv.org/abs/{}", paper.id),
            })
        })
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(b.id)));
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(query: &str) -> Vec<String> {
        let papers = papers();
        search(&papers, query)
            .iter()
            .take(3)
            .map(|h| h.id.to_string())
            .collect()
    }

    #[test]
    fn dataset_is_well_formed() {
        let papers = papers();
        assert!((40..=60).contains(&papers.len()), "{} papers", papers.len());
        let mut ids: Vec<&str> = papers.iter().map(|p| p.id.as_ref()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), papers.len(), "duplicate ids");
        for p in &papers {
            assert!(
                !p.title.is_empty() && !p.summary.is_empty() && !p.authors.is_empty(),
                "{}",
                p.id
            );
            assert!((1990..=2026).contains(&p.year), "{}", p.id);
        }
    }

    #[test]
    fn tokenizer() {
        let t = tokens("The Case for Learned-Index STRUCTURES, 2017!");
        assert_eq!(t, ["case", "learned", "index", "structures", "2017"]);
        assert!(tokens("the of And").is_empty());
        assert_eq!(tokens("Jégou ÉCOLE"), ["jégou", "école"]);
    }

    #[test]
    fn ranking() {
        assert_eq!(top("attention transformer")[0], "1706.03762");
        assert_eq!(top("learned index")[0], "1712.01208");
        assert_eq!(top("WebAssembly SGX enclave")[0], "2103.15860");
        assert_eq!(top("Intel TDX")[0], "2303.15540");
        assert_eq!(top("BFT consensus")[0], "1807.04938");
        // Author names are searchable.
        assert!(top("Kraska").contains(&"1712.01208".to_string()));
        // Case-insensitive, and repeated terms count once.
        assert_eq!(top("SPECTRE"), top("spectre spectre"));
    }

    fn paper(id: &'static str, title: &'static str, summary: &'static str) -> Paper<'static> {
        Paper {
            id: id.into(),
            title: title.into(),
            authors: Vec::new(),
            year: 2020,
            category: "cs.XX".into(),
            summary: summary.into(),
        }
    }

    #[test]
    fn bm25_with_title_counting_double() {
        // All of length 6 (2 title tokens ×2 + 2 summary tokens); the term in a's title counts 2.
        let papers = [
            paper("a", "quantum x", "y z"),
            paper("b", "x y", "quantum z"),
            paper("c", "x y", "w z"),
        ];
        let hits = search(&papers, "Quantum");
        assert_eq!(hits.len(), 2);
        // N = 3, df = 2: idf = ln(1 + (3 - 2 + 0.5) / (2 + 0.5)); dl = avgdl, so the norm is k1.
        let idf = (1.0f64 + 1.5 / 2.5).ln();
        assert_eq!(hits[0].id, "a");
        assert_eq!(
            hits[0].score,
            (idf * 2.0 * 2.2 / (2.0 + 1.2) * 1e4).round() / 1e4
        );
        assert_eq!(hits[1].id, "b");
        assert_eq!(
            hits[1].score,
            (idf * 1.0 * 2.2 / (1.0 + 1.2) * 1e4).round() / 1e4
        );
        // A term only in one title: that paper alone matches.
        let papers = super::papers();
        let hits = search(&papers, "meltdown");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].id, "1801.01207");
    }

    #[test]
    fn no_match_and_stopwords_only() {
        let papers = papers();
        assert!(search(&papers, "zebra giraffe").is_empty());
        assert!(search(&papers, "the of").is_empty());
    }

    #[test]
    fn scores_sorted_and_rounded() {
        let papers = papers();
        let hits = search(&papers, "privacy learning model");
        assert!(hits.len() > 5);
        for pair in hits.windows(2) {
            assert!(pair[0].score >= pair[1].score);
        }
        for h in &hits {
            assert_eq!((h.score * 10_000.0).round() / 10_000.0, h.score);
        }
    }

    #[test]
    fn fast_enough() {
        const N: u32 = 100;
        let start = std::time::Instant::now();
        for _ in 0..N {
            assert_eq!(papers().len(), 58);
        }
        let parse = start.elapsed() / N;
        let papers = papers();
        let start = std::time::Instant::now();
        for _ in 0..N {
            let hits = search(&papers, "confidential computing attestation webassembly");
            assert!(!hits.is_empty());
        }
        let rank = start.elapsed() / N;
        // What one invocation does. Natively with optimisation: well under a millisecond.
        println!("parse {parse:?} + search {rank:?}");
        assert!(
            parse + rank < std::time::Duration::from_millis(20),
            "{parse:?} {rank:?}"
        );
    }
}
