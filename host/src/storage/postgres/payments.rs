//! The payment ledger on PostgreSQL (table `payments`): the replay key is the primary key, so
//! of several replicas reserving the same payment at once exactly one inserts it. Unfinished
//! payments of a run whose heartbeat stopped are adopted with `FOR UPDATE SKIP LOCKED`: two
//! survivors looking at once take disjoint sets.
//!
//! Every statement runs on the pool's runtime ([`Pg::run`]): the caller awaits it without
//! blocking its thread.

use std::future::Future;
use std::sync::Arc;

use super::{Pg, big, pg};
use crate::storage::StorageError;
use crate::storage::payments::{Adopted, Identified, KeptAnswer, NewPayment, PaymentLedger};

/// The PostgreSQL payment ledger.
pub struct PgPayments {
    pg: Arc<Pg>,
}

impl PgPayments {
    /// The ledger on `pg`.
    pub fn new(pg: Arc<Pg>) -> Self {
        Self { pg }
    }

    /// Runs the statements `work` makes with the pool on the pool's runtime, and awaits them.
    async fn on_pool<T, W, F>(&self, work: W) -> Result<T, StorageError>
    where
        T: Send + 'static,
        W: FnOnce(Arc<Pg>) -> F,
        F: Future<Output = Result<T, StorageError>> + Send + 'static,
    {
        self.pg.run(work(self.pg.clone())).await
    }

    /// Records an outcome (`state`, with its transaction or reason).
    async fn finish(
        &self,
        key: &str,
        state: &'static str,
        tx: Option<&str>,
        reason: Option<&str>,
        at: u64,
    ) -> Result<(), StorageError> {
        let (key, tx, reason) = (
            key.to_owned(),
            tx.map(str::to_owned),
            reason.map(str::to_owned),
        );
        self.on_pool(|db| async move {
            let client = db.client("record a settlement").await?;
            client
                .execute(
                    // Only an unfinished payment, or a failed one settled after all (a run
                    // taken over as dead whose own settlement then went through): a failure
                    // never overwrites another outcome.
                    "UPDATE payments SET state = $2, transaction_hash = $3, reason = $4,
                       updated_at = $5, sealed = NULL
                     WHERE replay_key = $1 AND (state IN ('reserved', 'settling')
                       OR ($2 = 'settled' AND state = 'settlement_failed'))",
                    &[&key, &state, &tx, &reason, &big(at)],
                )
                .await
                .map_err(pg("record a settlement"))?;
            Ok(())
        })
        .await
    }

    /// Inserts `p`, `reserved` or already `settled` with an empty transaction (a verify-only
    /// payment recorded after its run): whether it was inserted. A replay key or a payment
    /// identifier already in the ledger inserts nothing (no conflict target: either
    /// uniqueness).
    async fn insert(
        &self,
        p: &NewPayment<'_>,
        settled: bool,
        op: &'static str,
    ) -> Result<bool, StorageError> {
        let p = p.to_owned_payment();
        let at = big(p.at);
        self.on_pool(|db| async move {
            let client = db.client(op).await?;
            let stmt = client
                .prepare_cached(
                    "INSERT INTO payments (replay_key, payer, amount, network, route, state,
                       transaction_hash, owner, sealed, reserved_at, updated_at, payment_id,
                       payment_fingerprint)
                     VALUES ($1, $2, $3, $4, $5, $11, $12, $6, $7, $8, $8, $9, $10)
                     ON CONFLICT DO NOTHING",
                )
                .await
                .map_err(pg(op))?;
            let row = p.inserted(settled);
            let inserted = client
                .execute(
                    &stmt,
                    &[
                        &p.replay_key,
                        &p.payer,
                        &p.amount,
                        &p.network,
                        &p.route,
                        &p.owner,
                        &row.sealed,
                        &at,
                        &row.id,
                        &row.fingerprint,
                        &row.state,
                        &row.transaction,
                    ],
                )
                .await
                .map_err(pg(op))?;
            Ok(inserted == 1)
        })
        .await
    }

    /// Moves a payment reserved by `owner` with `update` (parameters: key, owner, time):
    /// whether it changed.
    async fn update_owned(
        &self,
        op: &'static str,
        update: &'static str,
        key: &str,
        owner: &str,
        at: u64,
    ) -> Result<bool, StorageError> {
        let (key, owner) = (key.to_owned(), owner.to_owned());
        self.on_pool(|db| async move {
            let client = db.client(op).await?;
            let stmt = client.prepare_cached(update).await.map_err(pg(op))?;
            let changed = client
                .execute(&stmt, &[&key, &owner, &big(at)])
                .await
                .map_err(pg(op))?;
            Ok(changed == 1)
        })
        .await
    }
}

#[async_trait::async_trait]
impl PaymentLedger for PgPayments {
    async fn reserve(&self, p: &NewPayment<'_>) -> Result<bool, StorageError> {
        self.insert(p, false, "reserve").await
    }

    async fn record_settled(&self, p: &NewPayment<'_>) -> Result<bool, StorageError> {
        self.insert(p, true, "record a settled payment").await
    }

    async fn recorded(&self, replay_key: &str) -> Result<bool, StorageError> {
        let key = replay_key.to_owned();
        self.on_pool(|db| async move {
            let client = db.client("look up a replay key").await?;
            let stmt = client
                .prepare_cached("SELECT 1 FROM payments WHERE replay_key = $1")
                .await
                .map_err(pg("look up a replay key"))?;
            let found = client
                .query_opt(&stmt, &[&key])
                .await
                .map_err(pg("look up a replay key"))?;
            Ok(found.is_some())
        })
        .await
    }

    async fn release(&self, replay_key: &str) -> Result<bool, StorageError> {
        let key = replay_key.to_owned();
        self.on_pool(|db| async move {
            let client = db.client("release").await?;
            let removed = client
                .execute(
                    "DELETE FROM payments WHERE replay_key = $1 AND state = 'reserved'",
                    &[&key],
                )
                .await
                .map_err(pg("release"))?;
            Ok(removed == 1)
        })
        .await
    }

    async fn settling(&self, replay_key: &str, owner: &str, at: u64) -> Result<bool, StorageError> {
        self.update_owned(
            "mark settling",
            "UPDATE payments SET state = 'settling', updated_at = $3
             WHERE replay_key = $1 AND owner = $2 AND state = 'reserved'",
            replay_key,
            owner,
            at,
        )
        .await
    }

    async fn settled_at_once(
        &self,
        replay_key: &str,
        owner: &str,
        at: u64,
    ) -> Result<bool, StorageError> {
        self.update_owned(
            "record a settlement",
            "UPDATE payments SET state = 'settled', transaction_hash = '', updated_at = $3,
               sealed = NULL WHERE replay_key = $1 AND owner = $2 AND state = 'reserved'",
            replay_key,
            owner,
            at,
        )
        .await
    }

    async fn settled(
        &self,
        replay_key: &str,
        transaction: &str,
        at: u64,
    ) -> Result<(), StorageError> {
        self.finish(replay_key, "settled", Some(transaction), None, at)
            .await
    }

    async fn settlement_failed(
        &self,
        replay_key: &str,
        reason: &str,
        at: u64,
    ) -> Result<(), StorageError> {
        self.finish(replay_key, "settlement_failed", None, Some(reason), at)
            .await
    }

    async fn charged(
        &self,
        replay_key: &str,
        owner: &str,
        amount: &str,
    ) -> Result<bool, StorageError> {
        let (key, owner, amount) = (replay_key.to_owned(), owner.to_owned(), amount.to_owned());
        self.on_pool(|db| async move {
            let client = db.client("record a charge").await?;
            let changed = client
                .execute(
                    "UPDATE payments SET amount = $3
                     WHERE replay_key = $1 AND owner = $2 AND state = 'reserved'",
                    &[&key, &owner, &amount],
                )
                .await
                .map_err(pg("record a charge"))?;
            Ok(changed == 1)
        })
        .await
    }

    async fn amount(&self, replay_key: &str) -> Result<Option<String>, StorageError> {
        let key = replay_key.to_owned();
        self.on_pool(|db| async move {
            let client = db.client("read a payment").await?;
            let row = client
                .query_opt("SELECT amount FROM payments WHERE replay_key = $1", &[&key])
                .await
                .map_err(pg("read a payment"))?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }

    async fn state(&self, replay_key: &str) -> Result<Option<String>, StorageError> {
        let key = replay_key.to_owned();
        self.on_pool(|db| async move {
            let client = db.client("read a payment").await?;
            let row = client
                .query_opt("SELECT state FROM payments WHERE replay_key = $1", &[&key])
                .await
                .map_err(pg("read a payment"))?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }

    async fn adopt(
        &self,
        owner: &str,
        alive_since_ms: u64,
        limit: u32,
    ) -> Result<Vec<Adopted>, StorageError> {
        let owner = owner.to_owned();
        self.on_pool(|db| async move {
            let client = db.client("adopt payments").await?;
            let rows = client
                .query(
                    "WITH orphans AS (
                       SELECT p.replay_key, p.owner FROM payments p
                       WHERE p.state IN ('reserved', 'settling') AND p.owner <> $1
                         AND NOT EXISTS (SELECT 1 FROM cluster_members m
                                         WHERE m.run = p.owner AND m.heartbeat_ms >= $2)
                       LIMIT $3 FOR UPDATE SKIP LOCKED)
                     UPDATE payments p SET owner = $1 FROM orphans o
                     WHERE p.replay_key = o.replay_key
                     RETURNING p.replay_key, p.state, o.owner, p.sealed",
                    &[&owner, &big(alive_since_ms), &i64::from(limit)],
                )
                .await
                .map_err(pg("adopt payments"))?;
            Ok(rows
                .iter()
                .map(|r| Adopted {
                    replay_key: r.get(0),
                    state: r.get(1),
                    previous_owner: r.get(2),
                    sealed: r.get::<_, Option<Vec<u8>>>(3).unwrap_or_default(),
                })
                .collect())
        })
        .await
    }

    async fn identified(&self, id: &str) -> Result<Option<Identified>, StorageError> {
        let id = id.to_owned();
        self.on_pool(|db| async move {
            let op = "read a payment identifier";
            let client = db.client(op).await?;
            let row = client
                .query_opt(
                    "SELECT replay_key, payment_fingerprint, answer FROM payments
                     WHERE payment_id = $1",
                    &[&id],
                )
                .await
                .map_err(pg(op))?;
            Ok(row.map(|r| Identified {
                replay_key: r.get(0),
                fingerprint: r.get::<_, Option<Vec<u8>>>(1).unwrap_or_default(),
                answer: KeptAnswer::from_column(r.get(2)),
            }))
        })
        .await
    }

    async fn keep_answer(
        &self,
        replay_key: &str,
        sealed: &[u8],
        at: u64,
    ) -> Result<bool, StorageError> {
        let (key, sealed) = (replay_key.to_owned(), sealed.to_vec());
        self.on_pool(|db| async move {
            let op = "keep an answer";
            let client = db.client(op).await?;
            let kept = client
                .execute(
                    "UPDATE payments SET answer = $2, answer_at = $3
                     WHERE replay_key = $1 AND payment_id IS NOT NULL AND answer IS NULL",
                    &[&key, &sealed, &big(at)],
                )
                .await
                .map_err(pg(op))?;
            Ok(kept == 1)
        })
        .await
    }

    async fn forget_answers(
        &self,
        before: u64,
        unanswered_before: u64,
    ) -> Result<u64, StorageError> {
        self.on_pool(|db| async move {
            let op = "forget answers";
            let client = db.client(op).await?;
            client
                .execute(
                    "UPDATE payments SET answer = ''::bytea, answer_at = COALESCE(answer_at, updated_at)
                     WHERE payment_id IS NOT NULL AND (
                       (answer_at < $1 AND octet_length(answer) > 0)
                       OR (answer IS NULL AND state <> 'reserved' AND updated_at < $2))",
                    &[&big(before), &big(unanswered_before)],
                )
                .await
                .map_err(pg(op))
        })
        .await
    }
}
