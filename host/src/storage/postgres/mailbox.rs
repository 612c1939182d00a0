//! The cluster key's mailbox (tables `cluster_key`, `cluster_joins`): what the key exchange of
//! [`crate::cluster::key`] reads and writes. Nothing here is secret: the key's check value, and
//! join requests and answers whose key material is sealed to the joiner.

use std::sync::Arc;

use super::{Pg, big, pg};
use crate::clock::unix_millis;
use crate::storage::StorageError;

/// The cluster key's public record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// HMAC-SHA256 of a fixed label under the key, hex: tells a replica that the key it holds
    /// is this cluster's.
    pub key_check: String,
    /// The host measurement of the replica that created it, hex.
    pub measurement: String,
    /// The replica that created it.
    pub created_by: String,
}

/// A join request waiting for an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// The joining run.
    pub run: String,
    /// Its replica name.
    pub replica: String,
    /// The request document (JSON).
    pub request: String,
}

/// The answer to a join request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinAnswer {
    /// Not answered yet.
    Waiting,
    /// Granted: the answer document (JSON).
    Granted(String),
    /// Refused: why.
    Refused(String),
}

/// The mailbox on PostgreSQL.
pub struct Mailbox {
    pg: Arc<Pg>,
}

impl Mailbox {
    /// The mailbox on `pg`.
    pub fn new(pg: Arc<Pg>) -> Self {
        Self { pg }
    }

    /// The cluster key's record, if a replica created the key.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn key_record(&self) -> Result<Option<KeyRecord>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("read the cluster key record").await?;
            let row = client
                .query_opt(
                    "SELECT key_check, measurement, created_by FROM cluster_key WHERE id = 1",
                    &[],
                )
                .await
                .map_err(pg("read the cluster key record"))?;
            Ok(row.map(|r| KeyRecord {
                key_check: r.get(0),
                measurement: r.get(1),
                created_by: r.get(2),
            }))
        })
    }

    /// Records a new cluster key, unless one exists (another replica won the race). Returns
    /// whether this one was recorded.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn create_key_record(&self, record: &KeyRecord) -> Result<bool, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("record the cluster key").await?;
            let n = client
                .execute(
                    "INSERT INTO cluster_key (id, key_check, measurement, created_by, created_ms)
                     VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                    &[
                        &record.key_check,
                        &record.measurement,
                        &record.created_by,
                        &big(unix_millis()),
                    ],
                )
                .await
                .map_err(pg("record the cluster key"))?;
            Ok(n == 1)
        })
    }

    /// Posts (or re-posts) the join request of `run`.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn post_join(&self, run: &str, replica: &str, request: &str) -> Result<(), StorageError> {
        self.pg.block(async {
            let client = self.pg.client("post a join request").await?;
            client
                .execute(
                    "INSERT INTO cluster_joins (run, replica, request, state, created_ms)
                     VALUES ($1, $2, $3, 'waiting', $4)
                     ON CONFLICT (run) DO UPDATE SET request = EXCLUDED.request,
                       state = 'waiting', response = NULL, answered_by = NULL,
                       answered_ms = NULL",
                    &[&run, &replica, &request, &big(unix_millis())],
                )
                .await
                .map_err(pg("post a join request"))?;
            client
                .execute("SELECT pg_notify('hypervisor_joins', $1)", &[&run])
                .await
                .map_err(pg("post a join request"))?;
            Ok(())
        })
    }

    /// The answer to `run`'s join request.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn answer(&self, run: &str) -> Result<JoinAnswer, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("read a join answer").await?;
            let row = client
                .query_opt(
                    "SELECT state, response FROM cluster_joins WHERE run = $1",
                    &[&run],
                )
                .await
                .map_err(pg("read a join answer"))?;
            Ok(match row {
                None => JoinAnswer::Waiting,
                Some(r) => {
                    let state: String = r.get(0);
                    let response: Option<String> = r.get(1);
                    match state.as_str() {
                        "granted" => JoinAnswer::Granted(response.unwrap_or_default()),
                        "refused" => JoinAnswer::Refused(response.unwrap_or_default()),
                        _ => JoinAnswer::Waiting,
                    }
                }
            })
        })
    }

    /// Join requests not answered yet, posted since `since_ms`.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn waiting(&self, since_ms: u64) -> Result<Vec<JoinRequest>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("read join requests").await?;
            let rows = client
                .query(
                    "SELECT run, replica, request FROM cluster_joins
                     WHERE state = 'waiting' AND created_ms >= $1 ORDER BY created_ms",
                    &[&big(since_ms)],
                )
                .await
                .map_err(pg("read join requests"))?;
            Ok(rows
                .iter()
                .map(|r| JoinRequest {
                    run: r.get(0),
                    replica: r.get(1),
                    request: r.get(2),
                })
                .collect())
        })
    }

    /// Answers `run`'s request (`granted` with the answer document, or `refused` with why),
    /// unless another replica answered first. Returns whether this answer was recorded.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn respond(
        &self,
        run: &str,
        granted: bool,
        response: &str,
        answered_by: &str,
    ) -> Result<bool, StorageError> {
        let state = if granted { "granted" } else { "refused" };
        self.pg.block(async {
            let client = self.pg.client("answer a join request").await?;
            let n = client
                .execute(
                    "UPDATE cluster_joins SET state = $2, response = $3, answered_by = $4,
                       answered_ms = $5 WHERE run = $1 AND state = 'waiting'",
                    &[&run, &state, &response, &answered_by, &big(unix_millis())],
                )
                .await
                .map_err(pg("answer a join request"))?;
            Ok(n == 1)
        })
    }
}
