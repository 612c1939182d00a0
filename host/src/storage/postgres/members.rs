//! The runs of the replicas on PostgreSQL (table `cluster_members`).

use std::sync::Arc;

use super::{Pg, big, pg, unsigned};
use crate::storage::StorageError;
use crate::storage::members::{Member, Members};

/// The PostgreSQL member table.
pub struct PgMembers {
    pg: Arc<Pg>,
}

impl PgMembers {
    /// The table on `pg`.
    pub fn new(pg: Arc<Pg>) -> Self {
        Self { pg }
    }
}

impl Members for PgMembers {
    fn join(&self, m: &Member) -> Result<(), StorageError> {
        self.pg.block(async {
            let client = self.pg.client("join the cluster").await?;
            client
                .execute(
                    "INSERT INTO cluster_members (run, replica, tag, signing_key, url, started_ms,
                       heartbeat_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (run) DO UPDATE SET heartbeat_ms = EXCLUDED.heartbeat_ms,
                       signing_key = EXCLUDED.signing_key, url = EXCLUDED.url",
                    &[
                        &m.run,
                        &m.replica,
                        &i32::from(m.tag),
                        &m.signing_key,
                        &m.url,
                        &big(m.started_ms),
                        &big(m.heartbeat_ms),
                    ],
                )
                .await
                .map_err(pg("join the cluster"))?;
            Ok(())
        })
    }

    fn heartbeat(&self, run: &str, url: &str, now_ms: u64) -> Result<(), StorageError> {
        self.pg.block(async {
            let client = self.pg.client("heartbeat").await?;
            client
                .execute(
                    "UPDATE cluster_members SET heartbeat_ms = $2, url = $3 WHERE run = $1",
                    &[&run, &big(now_ms), &url],
                )
                .await
                .map_err(pg("heartbeat"))?;
            Ok(())
        })
    }

    fn leave(&self, run: &str, forget_before_ms: u64) -> Result<(), StorageError> {
        self.pg.block(async {
            let client = self.pg.client("leave the cluster").await?;
            client
                .execute(
                    "DELETE FROM cluster_members WHERE run = $1 OR heartbeat_ms < $2",
                    &[&run, &big(forget_before_ms)],
                )
                .await
                .map_err(pg("leave the cluster"))?;
            Ok(())
        })
    }

    fn list(&self) -> Result<Vec<Member>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("list members").await?;
            let rows = client
                .query(
                    "SELECT run, replica, tag, signing_key, url, started_ms, heartbeat_ms
                     FROM cluster_members ORDER BY heartbeat_ms DESC",
                    &[],
                )
                .await
                .map_err(pg("list members"))?;
            Ok(rows
                .iter()
                .map(|r| Member {
                    run: r.get(0),
                    replica: r.get(1),
                    tag: u16::try_from(r.get::<_, i32>(2)).unwrap_or(0),
                    signing_key: r.get(3),
                    url: r.get(4),
                    started_ms: unsigned(r.get(5)),
                    heartbeat_ms: unsigned(r.get(6)),
                })
                .collect())
        })
    }
}
