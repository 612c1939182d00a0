//! Deployed agents' components, sealed at rest and addressed by their SHA-256: files in the
//! data directory on the embedded backend ([`crate::storage::artifacts::ArtifactStore`]), a
//! table on PostgreSQL (every replica reads the code any replica stored).

use super::StorageError;
use super::agents::CodeHash;

/// The interface of a code store.
pub trait CodeStore: Send + Sync {
    /// The component with `hash`, opened, if stored and authentic.
    ///
    /// # Errors
    /// [`StorageError`].
    fn load(&self, hash: &CodeHash) -> Result<Option<Vec<u8>>, StorageError>;

    /// Stores the component with `hash` (sealed; storing it again is harmless).
    ///
    /// # Errors
    /// [`StorageError`].
    fn store(&self, hash: &CodeHash, data: &[u8]) -> Result<(), StorageError>;

    /// Removes the component with `hash`, which no agent version uses any more (best effort:
    /// a backend keeps it if a version uses it again meanwhile).
    fn remove(&self, hash: &CodeHash);
}

impl CodeStore for super::artifacts::ArtifactStore {
    fn load(&self, hash: &CodeHash) -> Result<Option<Vec<u8>>, StorageError> {
        super::artifacts::ArtifactStore::load(self, hash)
    }

    fn store(&self, hash: &CodeHash, data: &[u8]) -> Result<(), StorageError> {
        super::artifacts::ArtifactStore::store(self, hash, data)
    }

    fn remove(&self, hash: &CodeHash) {
        super::artifacts::ArtifactStore::remove(self, hash);
    }
}
