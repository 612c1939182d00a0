//! The ledger of agents' outgoing calls (table `agent_calls`): one row per request an agent's
//! run sent through its grants, queued when the response comes back, before the guest sees it,
//! on the records' group-commit writer ([`crate::storage::records::Records::insert_call_later`]):
//! committed within its linger, and never after the calling run's own record. Rows outlive
//! the caller's deletion: they are evidence of what was called and paid. Reads here see what
//! the writer committed: flush the records first.
//!
//! [`CallLedger`] is the interface of the table's reads; writes go through the records' sink.

use hypervisor_protocol::grants::CallRecord;

use super::StorageError;

/// The interface of the call ledger's reads: what a database backend implements.
pub trait CallLedger: Send + Sync {
    /// The newest `limit` calls made by agent `caller`, newest first.
    ///
    /// # Errors
    /// [`StorageError`].
    fn by_caller(&self, caller: &str, limit: u32) -> Result<Vec<CallRecord>, StorageError>;

    /// The calls made by one run (the caller's execution id), in the order they were made.
    ///
    /// # Errors
    /// [`StorageError`].
    fn by_execution(&self, execution: &str) -> Result<Vec<CallRecord>, StorageError>;
}
