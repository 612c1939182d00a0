//! Sealed artifact files, addressed by a keyed name derived from their content hash (so the
//! directory listing does not reveal which programs ran here).

use std::path::PathBuf;
use std::sync::Arc;

use super::{StorageError, io, write_atomic};
use crate::crypto::at_rest::SealingKey;

const NAME_PURPOSE: &[u8] = b"wasm-hypervisor/v1/artifact-name";

/// A directory of sealed artifacts of one kind (the `purpose` is bound into every seal).
#[derive(Clone)]
pub struct ArtifactStore {
    dir: PathBuf,
    key: Arc<SealingKey>,
    purpose: &'static [u8],
    extension: &'static str,
}

impl ArtifactStore {
    /// Opens (creating) `dir`.
    ///
    /// # Errors
    /// [`StorageError::Io`] if the directory cannot be created.
    pub fn open(
        dir: PathBuf,
        key: Arc<SealingKey>,
        purpose: &'static [u8],
        extension: &'static str,
    ) -> Result<Self, StorageError> {
        std::fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
        Ok(Self {
            dir,
            key,
            purpose,
            extension,
        })
    }

    fn path(&self, content_hash: &[u8; 32]) -> PathBuf {
        let name = self.key.derive_name(NAME_PURPOSE, content_hash);
        self.dir
            .join(format!("{}.{}", hex::encode(&name[..20]), self.extension))
    }

    /// The artifact for `content_hash`, if present and authentic. A file that fails
    /// authentication is treated as absent (and removed), so it will be rebuilt.
    ///
    /// # Errors
    /// [`StorageError::Io`] for read errors other than "not found".
    pub fn load(&self, content_hash: &[u8; 32]) -> Result<Option<Vec<u8>>, StorageError> {
        let path = self.path(content_hash);
        let sealed = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", &path)(e)),
        };
        let mut aad = self.purpose.to_vec();
        aad.extend_from_slice(content_hash);
        match self.key.open(&aad, &sealed) {
            Ok(plain) => Ok(Some(plain)),
            Err(_) => {
                tracing::warn!(path = %path.display(), "sealed artifact failed authentication; discarding it");
                let _ = std::fs::remove_file(&path);
                Ok(None)
            }
        }
    }

    /// Stores the artifact for `content_hash` (atomically).
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn store(&self, content_hash: &[u8; 32], data: &[u8]) -> Result<(), StorageError> {
        let mut aad = self.purpose.to_vec();
        aad.extend_from_slice(content_hash);
        let sealed = self
            .key
            .seal(&aad, data)
            .map_err(|_| StorageError::KeyGeneration)?;
        write_atomic(&self.path(content_hash), &sealed, true)
    }

    /// Removes the artifact for `content_hash`, if any.
    pub fn remove(&self, content_hash: &[u8; 32]) {
        let _ = std::fs::remove_file(self.path(content_hash));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let dir = tempfile::tempdir().unwrap();
        let key = Arc::new(SealingKey::generate().unwrap());
        let store = ArtifactStore::open(dir.path().join("a"), key, b"test", "bin").unwrap();
        let h = [3u8; 32];
        assert_eq!(store.load(&h).unwrap(), None);
        store.store(&h, b"compiled").unwrap();
        assert_eq!(store.load(&h).unwrap().as_deref(), Some(&b"compiled"[..]));
        let path = store.path(&h);
        assert!(
            !path.to_string_lossy().contains(&hex::encode(h)),
            "file name hides the hash"
        );
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(store.load(&h).unwrap(), None, "tampered file is discarded");
        assert!(!path.exists());
    }
}
