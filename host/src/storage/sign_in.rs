//! x402 sign-in-with-x (`pipeline::x402::sign_in`): the nonces of sign-ins already accepted
//! (table `siwx_nonces`: a signed sign-in is taken once, on any replica sharing the database)
//! and the last settled payment of each wallet to each agent (table `siwx_access`: the
//! pipeline lets wallet W call agent A of owner O without paying while that payment is within
//! the agent's current `after_payment_seconds`).
//!
//! Both tables forget what can no longer count, before a bound the caller gives (it leaves a
//! margin for the replicas' clocks).

use super::StorageError;

/// The interface of the sign-in tables: what a database backend implements (blocking calls).
pub trait SignInBackend: Send + Sync {
    /// Records `nonce` as used until `expires_ms`, after forgetting the nonces that expired
    /// before `forget_before_ms`. Returns false, recording nothing, when it is already
    /// recorded: the sign-in is a replay.
    ///
    /// # Errors
    /// [`StorageError`].
    fn use_nonce(
        &self,
        nonce: &str,
        expires_ms: u64,
        forget_before_ms: u64,
    ) -> Result<bool, StorageError>;

    /// Records that `address` (lowercase `0x…`) paid, settled at `paid_ms`, for a call of agent
    /// `agent` of owner `owner` (the hex SHA-256 of the owner's uncompressed key), keeping the
    /// latest; forgets the payments made before `forget_before_ms`.
    ///
    /// # Errors
    /// [`StorageError`].
    fn record_payment(
        &self,
        agent: &str,
        owner: &str,
        address: &str,
        paid_ms: u64,
        forget_before_ms: u64,
    ) -> Result<(), StorageError>;

    /// When `address` last paid for a call of agent `agent` of owner `owner` (`None`: never,
    /// or forgotten).
    ///
    /// # Errors
    /// [`StorageError`].
    fn last_payment(
        &self,
        agent: &str,
        owner: &str,
        address: &str,
    ) -> Result<Option<u64>, StorageError>;
}
