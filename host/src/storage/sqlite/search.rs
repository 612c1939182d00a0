//! Ranked full-text search over agents: SQLite FTS5 on name, description and tags, BM25 with
//! the name weighing most. User text never reaches FTS5 as syntax: every word is quoted.

use rusqlite::{Connection, Transaction, params};

use super::rows::{AGENT_COLUMN_COUNT, AGENT_COLUMNS, agent_row};
use super::sql;
use crate::storage::StorageError;
use crate::storage::agents::{SearchHit, search_words};

/// Turns free text into an FTS5 query: each word quoted (no operators from the user), any of
/// them may match, ranked by BM25. `None` when there is no word at all.
fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = search_words(text)
        .into_iter()
        .map(|w| format!("\"{w}\""))
        .collect();
    (!words.is_empty()).then(|| words.join(" OR "))
}
/// Ranked full-text search over name, description and tags on `conn` (BM25; a match in the
/// name weighs most, then tags, then the description).
///
/// # Errors
/// [`StorageError::Database`].
pub(super) fn search(
    conn: &Connection,
    text: &str,
    limit: u32,
) -> Result<Vec<SearchHit>, StorageError> {
    let Some(query) = fts_query(text) else {
        return Ok(Vec::new());
    };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {AGENT_COLUMNS}, bm25(agents_fts, 10.0, 1.0, 4.0) AS rank
             FROM agents_fts f
             JOIN agents a ON a.name = f.name
             JOIN agent_versions v ON v.name = a.name AND v.version = a.latest_version
             WHERE agents_fts MATCH ?1
             ORDER BY rank, a.name LIMIT ?2"
        ))
        .map_err(sql("search"))?;
    let rows = stmt
        .query_map(params![query, limit], |r| {
            let agent = agent_row(r)?;
            Ok(SearchHit::new(agent, -r.get::<_, f64>(AGENT_COLUMN_COUNT)?))
        })
        .map_err(sql("search"))?;
    rows.collect::<Result<_, _>>().map_err(sql("search"))
}

pub(super) fn index(
    tx: &Transaction<'_>,
    name: &str,
    description: &str,
    tags: &str,
) -> Result<(), StorageError> {
    tx.execute("DELETE FROM agents_fts WHERE name = ?1", [name])
        .map_err(sql("index"))?;
    tx.execute(
        "INSERT INTO agents_fts (name, description, tags) VALUES (?1, ?2, ?3)",
        params![name, description, tags],
    )
    .map_err(sql("index"))?;
    Ok(())
}
