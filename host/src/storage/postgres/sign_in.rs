//! The sign-in tables on PostgreSQL (`storage::sign_in`), shared by every replica: the nonce's
//! primary key makes a replay's insert change no row, whichever replica took the first.

use std::sync::Arc;

use super::{Pg, big, pg};
use crate::storage::StorageError;
use crate::storage::sign_in::SignInBackend;

/// The PostgreSQL sign-in tables.
pub struct PgSignIn {
    pg: Arc<Pg>,
}

impl PgSignIn {
    /// The tables on `pg`.
    pub fn new(pg: Arc<Pg>) -> Self {
        Self { pg }
    }
}

impl SignInBackend for PgSignIn {
    fn use_nonce(
        &self,
        nonce: &str,
        expires_ms: u64,
        forget_before_ms: u64,
    ) -> Result<bool, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("record sign-in nonce").await?;
            client
                .execute(
                    "DELETE FROM siwx_nonces WHERE expires_ms < $1",
                    &[&big(forget_before_ms)],
                )
                .await
                .map_err(pg("forget sign-in nonces"))?;
            let inserted = client
                .execute(
                    "INSERT INTO siwx_nonces (nonce, expires_ms) VALUES ($1, $2)
                     ON CONFLICT (nonce) DO NOTHING",
                    &[&nonce, &big(expires_ms)],
                )
                .await
                .map_err(pg("record sign-in nonce"))?;
            Ok(inserted == 1)
        })
    }

    fn record_payment(
        &self,
        agent: &str,
        owner: &str,
        address: &str,
        paid_ms: u64,
        forget_before_ms: u64,
    ) -> Result<(), StorageError> {
        self.pg.block(async {
            let client = self.pg.client("record sign-in payment").await?;
            client
                .execute(
                    "DELETE FROM siwx_access WHERE paid_ms < $1",
                    &[&big(forget_before_ms)],
                )
                .await
                .map_err(pg("forget sign-in payments"))?;
            client
                .execute(
                    "INSERT INTO siwx_access AS a (agent, owner, address, paid_ms)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (agent, owner, address)
                     DO UPDATE SET paid_ms = GREATEST(a.paid_ms, EXCLUDED.paid_ms)",
                    &[&agent, &owner, &address, &big(paid_ms)],
                )
                .await
                .map_err(pg("record sign-in payment"))?;
            Ok(())
        })
    }

    fn last_payment(
        &self,
        agent: &str,
        owner: &str,
        address: &str,
    ) -> Result<Option<u64>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("read sign-in payment").await?;
            let row = client
                .query_opt(
                    "SELECT paid_ms FROM siwx_access
                     WHERE agent = $1 AND owner = $2 AND address = $3",
                    &[&agent, &owner, &address],
                )
                .await
                .map_err(pg("read sign-in payment"))?;
            Ok(row.and_then(|r| u64::try_from(r.get::<_, i64>(0)).ok()))
        })
    }
}
