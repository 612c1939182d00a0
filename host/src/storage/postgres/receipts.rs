//! The receipt log on PostgreSQL (table `receipts`): one row per receipt, a batch per
//! transaction.

use std::sync::Arc;

use hypervisor_protocol::wire::Receipt;

use super::{Pg, big, pg};
use crate::storage::StorageError;
use crate::storage::receipts::ReceiptSink;

/// The PostgreSQL receipt log.
pub struct PgReceipts {
    pg: Arc<Pg>,
}

impl PgReceipts {
    /// The log on `pg`.
    pub fn new(pg: Arc<Pg>) -> Self {
        Self { pg }
    }

    /// The receipts of session `session_id`, in order (audits, tests).
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn of_session(&self, session_id: &str) -> Result<Vec<Receipt>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("read receipts").await?;
            let rows = client
                .query(
                    "SELECT receipt FROM receipts WHERE session_id = $1 ORDER BY sequence, id",
                    &[&session_id],
                )
                .await
                .map_err(pg("read receipts"))?;
            rows.iter()
                .map(|r| {
                    serde_json::from_str(r.get(0)).map_err(|_| StorageError::Tampered("receipt"))
                })
                .collect()
        })
    }
}

impl ReceiptSink for PgReceipts {
    fn append(&self, batch: &[Receipt]) -> Result<(), String> {
        let rows: Vec<(String, i64, i64, String)> = batch
            .iter()
            .filter_map(|r| {
                let json = serde_json::to_string(r).ok()?;
                Some((
                    r.session_id.to_string(),
                    big(r.sequence),
                    big(r.issued_at),
                    json,
                ))
            })
            .collect();
        self.pg
            .block(async {
                let mut client = self.pg.client("append receipts").await?;
                let tx = client.transaction().await.map_err(pg("append receipts"))?;
                let stmt = tx
                    .prepare_cached(
                        "INSERT INTO receipts (session_id, sequence, issued_at, receipt)
                         VALUES ($1, $2, $3, $4)",
                    )
                    .await
                    .map_err(pg("append receipts"))?;
                for (session, sequence, issued, json) in &rows {
                    tx.execute(&stmt, &[session, sequence, issued, json])
                        .await
                        .map_err(pg("append receipts"))?;
                }
                tx.commit().await.map_err(pg("append receipts"))?;
                Ok::<_, StorageError>(())
            })
            .map_err(|e| e.to_string())
    }
}
