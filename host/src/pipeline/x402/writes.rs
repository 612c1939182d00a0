//! The two ledger writes that must not be lost with the request that makes them: a
//! reservation written while the request may be dropped ([`Reserving`]), and the release of an
//! unsettled reservation from a `Drop` ([`wait_for`]).

use std::future::Future;
use std::sync::Arc;

use crate::error::ApiError;
use crate::storage::StorageError;
use crate::storage::payments::{NewPayment, PaymentLedger};

/// A reservation being written, in a task of its own so that the write completes even if the
/// request is dropped while it waits (the client went away): the payment is then released as
/// soon as it is reserved, since no work will run for it.
pub(super) struct Reserving {
    /// `None` once it answered.
    task: Option<tokio::task::JoinHandle<Result<bool, StorageError>>>,
    ledger: Arc<dyn PaymentLedger>,
    key: String,
}

impl Reserving {
    /// Starts writing `payment` to `ledger`, in a task of its own that owns a copy of it.
    pub(super) fn start(ledger: &Arc<dyn PaymentLedger>, payment: &NewPayment<'_>) -> Self {
        let payment = payment.to_owned_payment();
        let key = payment.replay_key.clone();
        let writer = ledger.clone();
        let task = tokio::spawn(async move { writer.reserve(&payment.as_new()).await });
        Self::writing(ledger.clone(), key, task)
    }

    /// The reservation of `key` that `task` writes to `ledger`.
    fn writing(
        ledger: Arc<dyn PaymentLedger>,
        key: String,
        task: tokio::task::JoinHandle<Result<bool, StorageError>>,
    ) -> Self {
        Self {
            task: Some(task),
            ledger,
            key,
        }
    }

    /// Whether the payment was reserved (false: a replay).
    pub(super) async fn fresh(mut self) -> Result<bool, ApiError> {
        let Some(task) = self.task.as_mut() else {
            return Err(ApiError::Internal("a reservation was awaited twice".into()));
        };
        let written = task.await;
        self.task = None;
        match written {
            Ok(fresh) => Ok(fresh?),
            Err(e) => Err(ApiError::Internal(format!(
                "reserving a payment failed: {e}"
            ))),
        }
    }
}

impl Drop for Reserving {
    fn drop(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        let (ledger, key) = (self.ledger.clone(), std::mem::take(&mut self.key));
        tokio::spawn(async move {
            if let Ok(Ok(true)) = task.await {
                match ledger.release(&key).await {
                    Ok(_) => tracing::info!("released a payment reserved for an abandoned request"),
                    Err(e) => tracing::warn!(error = %e, "releasing a payment reservation failed"),
                }
            }
        });
    }
}

/// Waits for a ledger write from synchronous code (a `Drop`), so that it is durable before
/// the code goes on: an unsettled reservation is released before the error answer leaves, so
/// the payer may retry the same payment at once. The write runs on a helper thread's own small
/// executor (ledger futures need no particular runtime); on a worker of the multi-threaded
/// runtime, the worker hands its other tasks to its peers meanwhile
/// ([`tokio::task::block_in_place`]). Only failed runs take this path.
pub(super) fn wait_for<T: Send>(
    write: impl Future<Output = Result<T, StorageError>> + Send,
) -> Result<T, StorageError> {
    let on_helper = || {
        std::thread::scope(|s| {
            s.spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .build()
                    .map_err(|e| StorageError::Database {
                        op: "wait for the payment ledger",
                        detail: e.to_string(),
                    })?
                    .block_on(write)
            })
            .join()
            .unwrap_or_else(|_| {
                Err(StorageError::Database {
                    op: "wait for the payment ledger",
                    detail: "the helper thread panicked".into(),
                })
            })
        })
    };
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(on_helper),
        _ => on_helper(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::storage::sqlite::SqlitePayments;

    /// Polls `ledger` until the payment `key` is in `state` (`None`: absent), for 10 s at most.
    async fn until_state(ledger: &dyn PaymentLedger, key: &str, state: Option<&str>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while ledger.state(key).await.unwrap().as_deref() != state {
            assert!(Instant::now() < deadline, "{key} never became {state:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reservation_abandoned_while_it_is_written_is_released_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let ledger: Arc<dyn PaymentLedger> = Arc::new(SqlitePayments::open(dir.path()).unwrap());
        let (finish, finished) = tokio::sync::oneshot::channel::<()>();
        let writer = ledger.clone();
        // The write lands, but its task answers only when told: the request is dropped first.
        let task = tokio::spawn(async move {
            let reserved = writer
                .reserve(&NewPayment {
                    replay_key: "k",
                    payer: "0xb",
                    amount: "1",
                    network: "eip155:84532",
                    route: "/x402_execute/test/wasm",
                    owner: "run",
                    sealed: b"",
                    at: 1,
                    identifier: None,
                })
                .await;
            finished.await.ok();
            reserved
        });
        drop(Reserving::writing(ledger.clone(), "k".into(), task));
        until_state(ledger.as_ref(), "k", Some("reserved")).await;
        finish.send(()).unwrap();
        until_state(ledger.as_ref(), "k", None).await;
    }
}
