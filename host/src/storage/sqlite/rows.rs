//! Row mapping shared by the SQLite catalog's queries: typed values read back strictly (a
//! stored value that does not parse is an error, never a silent default).

use crate::storage::agents::{AgentRecord, CodeHash, VersionRecord};

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(super) const AGENT_COLUMNS: &str = "a.name, a.owner_key, a.description, a.tags, a.public, a.price_amount, \
     a.created_at, a.updated_at, a.expires_at, v.version, v.code_hash, v.kind, v.world, v.size, \
     v.limits, v.created_at, a.charge, a.content_type, a.grants, a.schemas, a.tariff";

pub(super) fn agent_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AgentRecord> {
    let tags: String = r.get(3)?;
    Ok(AgentRecord {
        name: r.get(0)?,
        owner_key: r.get(1)?,
        description: r.get(2)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        public: r.get(4)?,
        price: r.get(5)?,
        created_at: to_u64(r.get(6)?),
        updated_at: to_u64(r.get(7)?),
        expires_at: r.get::<_, Option<i64>>(8)?.map(to_u64),
        latest: version_row_at(r, 9)?,
        charge: {
            let charge: String = r.get(16)?;
            charge.parse().map_err(|e: String| corrupt(16, e))?
        },
        content_type: r.get(17)?,
        grants: {
            let grants: String = r.get(18)?;
            serde_json::from_str(&grants).map_err(|e| corrupt(18, e.to_string()))?
        },
        schemas: r
            .get::<_, Option<String>>(19)?
            .map(|s| serde_json::from_str(&s).map_err(|e| corrupt(19, e.to_string())))
            .transpose()?,
        tariff: r
            .get::<_, Option<String>>(20)?
            .map(|s| serde_json::from_str(&s).map_err(|e| corrupt(20, e.to_string())))
            .transpose()?,
    })
}

pub(super) fn version_row_at(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<VersionRecord> {
    let kind: String = r.get(i + 2)?;
    let limits: String = r.get(i + 5)?;
    Ok(VersionRecord {
        version: r.get(i)?,
        code_hash: hash_at(r, i + 1)?,
        kind: kind.parse().map_err(|e: String| corrupt(i + 2, e))?,
        world: r.get(i + 3)?,
        size: to_u64(r.get(i + 4)?),
        limits: serde_json::from_str(&limits).map_err(|e| corrupt(i + 5, e.to_string()))?,
        created_at: to_u64(r.get(i + 6)?),
    })
}

/// A code hash column (hex text): exactly 32 bytes, or the row is corrupt.
pub(super) fn hash_at(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<CodeHash> {
    let text: String = r.get(i)?;
    hex::decode(&text)
        .ok()
        .and_then(|b| CodeHash::try_from(b.as_slice()).ok())
        .ok_or_else(|| corrupt(i, format!("{text:?} is not a SHA-256 in hex")))
}

/// A column whose stored text does not parse: an error, never a silent default.
fn corrupt(column: usize, why: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("corrupt agent row: {why}").into(),
    )
}
