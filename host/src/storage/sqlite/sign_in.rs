//! The sign-in tables on SQLite (`storage::sign_in`). The nonce's primary key makes a replay's
//! insert change no row.

use std::sync::Arc;

use rusqlite::{OptionalExtension, params};

use super::{Database, sql};
use crate::storage::StorageError;
use crate::storage::sign_in::SignInBackend;

/// The SQLite sign-in tables.
pub struct SqliteSignIn {
    db: Arc<Database>,
}

impl SqliteSignIn {
    /// The tables in `db`.
    pub fn new(db: Arc<Database>) -> Self {
        Self { db }
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SignInBackend for SqliteSignIn {
    fn use_nonce(
        &self,
        nonce: &str,
        expires_ms: u64,
        forget_before_ms: u64,
    ) -> Result<bool, StorageError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(sql("begin sign-in"))?;
        tx.execute(
            "DELETE FROM siwx_nonces WHERE expires_ms < ?1",
            [to_i64(forget_before_ms)],
        )
        .map_err(sql("forget sign-in nonces"))?;
        let inserted = tx
            .execute(
                "INSERT INTO siwx_nonces (nonce, expires_ms) VALUES (?1, ?2)
                 ON CONFLICT (nonce) DO NOTHING",
                params![nonce, to_i64(expires_ms)],
            )
            .map_err(sql("record sign-in nonce"))?;
        tx.commit().map_err(sql("commit sign-in"))?;
        Ok(inserted == 1)
    }

    fn record_payment(
        &self,
        agent: &str,
        owner: &str,
        address: &str,
        paid_ms: u64,
        forget_before_ms: u64,
    ) -> Result<(), StorageError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(sql("begin sign-in payment"))?;
        tx.execute(
            "DELETE FROM siwx_access WHERE paid_ms < ?1",
            [to_i64(forget_before_ms)],
        )
        .map_err(sql("forget sign-in payments"))?;
        tx.execute(
            "INSERT INTO siwx_access (agent, owner, address, paid_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (agent, owner, address)
             DO UPDATE SET paid_ms = max(paid_ms, excluded.paid_ms)",
            params![agent, owner, address, to_i64(paid_ms)],
        )
        .map_err(sql("record sign-in payment"))?;
        tx.commit().map_err(sql("commit sign-in payment"))?;
        Ok(())
    }

    fn last_payment(
        &self,
        agent: &str,
        owner: &str,
        address: &str,
    ) -> Result<Option<u64>, StorageError> {
        let paid: Option<i64> = self
            .db
            .lock()
            .query_row(
                "SELECT paid_ms FROM siwx_access WHERE agent = ?1 AND owner = ?2 AND address = ?3",
                params![agent, owner, address],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("read sign-in payment"))?;
        Ok(paid.and_then(|u| u64::try_from(u).ok()))
    }
}
