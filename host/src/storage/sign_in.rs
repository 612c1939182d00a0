//! x402 sign-in-with-x (`pipeline::x402::sign_in`): the nonces of sign-ins already accepted
//! (table `siwx_nonces`: a signed sign-in is taken once, on any replica sharing the database)
//! and the access windows paid for (table `siwx_access`: wallet W may call agent A of owner O
//! until T without paying again).
//!
//! Both tables forget what has ended: a nonce once its sign-in could no longer be accepted
//! anyway, a window once it closed.

use super::StorageError;

/// The interface of the sign-in tables: what a database backend implements (blocking calls).
pub trait SignInBackend: Send + Sync {
    /// Records `nonce` as used until `expires_ms`, after forgetting the nonces that expired
    /// before `now_ms`. Returns false, recording nothing, when it is already recorded: the
    /// sign-in is a replay.
    ///
    /// # Errors
    /// [`StorageError`].
    fn use_nonce(&self, nonce: &str, expires_ms: u64, now_ms: u64) -> Result<bool, StorageError>;

    /// Opens, or extends (never shortens), the window in which `address` (lowercase `0x…`)
    /// may call agent `agent` of owner `owner` (the hash of its key) to `until_ms`; forgets the
    /// windows that closed before `now_ms`.
    ///
    /// # Errors
    /// [`StorageError`].
    fn open_window(
        &self,
        agent: &str,
        owner: &str,
        address: &str,
        until_ms: u64,
        now_ms: u64,
    ) -> Result<(), StorageError>;

    /// Until when `address` may call agent `agent` of owner `owner` (`None`: no window).
    ///
    /// # Errors
    /// [`StorageError`].
    fn window(&self, agent: &str, owner: &str, address: &str) -> Result<Option<u64>, StorageError>;
}
