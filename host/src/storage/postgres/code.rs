//! Deployed components on PostgreSQL (table `agent_code`): sealed with the cluster key, bound
//! to their hash, so every replica opens what any replica stored.

use std::sync::Arc;

use super::{Pg, big, pg};
use crate::clock::unix_millis;
use crate::crypto::at_rest::SealingKey;
use crate::storage::StorageError;
use crate::storage::agents::{AGENT_COMPONENT_PURPOSE, CodeHash};
use crate::storage::code::CodeStore;

/// The PostgreSQL code store.
pub struct PgCode {
    pg: Arc<Pg>,
    key: Arc<SealingKey>,
}

impl PgCode {
    /// The store on `pg`, sealing with `key`.
    pub fn new(pg: Arc<Pg>, key: Arc<SealingKey>) -> Self {
        Self { pg, key }
    }
}

fn aad(hash: &CodeHash) -> Vec<u8> {
    let mut aad = AGENT_COMPONENT_PURPOSE.to_vec();
    aad.extend_from_slice(hash);
    aad
}

impl CodeStore for PgCode {
    fn load(&self, hash: &CodeHash) -> Result<Option<Vec<u8>>, StorageError> {
        let sealed: Option<Vec<u8>> = self.pg.block(async {
            let client = self.pg.client("read code").await?;
            let row = client
                .query_opt(
                    "SELECT sealed FROM agent_code WHERE code_hash = $1",
                    &[&hex::encode(hash)],
                )
                .await
                .map_err(pg("read code"))?;
            Ok::<_, StorageError>(row.map(|r| r.get(0)))
        })?;
        sealed
            .map(|s| {
                self.key
                    .open_owned(&aad(hash), s)
                    .map_err(|_| StorageError::Tampered("agent component"))
            })
            .transpose()
    }

    fn store(&self, hash: &CodeHash, data: &[u8]) -> Result<(), StorageError> {
        let sealed = self
            .key
            .seal(&aad(hash), data)
            .map_err(|_| StorageError::KeyGeneration)?;
        self.pg.block(async {
            let client = self.pg.client("store code").await?;
            // Storing it again refreshes its time: a removal racing with a deployment of the
            // same component keeps it (see `remove`).
            client
                .execute(
                    "INSERT INTO agent_code (code_hash, sealed, stored_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (code_hash) DO UPDATE SET stored_ms = EXCLUDED.stored_ms",
                    &[&hex::encode(hash), &sealed, &big(unix_millis())],
                )
                .await
                .map_err(pg("store code"))?;
            Ok(())
        })
    }

    fn remove(&self, hash: &CodeHash) {
        let removed = self.pg.block(async {
            let client = self.pg.client("remove code").await?;
            // Only if no version uses it, and it was not stored again in the last minute (a
            // deployment of the same component on another replica, whose version is not
            // committed yet).
            client
                .execute(
                    "DELETE FROM agent_code c WHERE code_hash = $1 AND stored_ms < $2
                       AND NOT EXISTS (SELECT 1 FROM agent_versions v WHERE v.code_hash = c.code_hash)",
                    &[&hex::encode(hash), &big(unix_millis().saturating_sub(60_000))],
                )
                .await
                .map_err(pg("remove code"))
        });
        if let Err(e) = removed {
            tracing::warn!(error = %e, "an unused component stays in the database");
        }
    }
}
