//! Sealed artifact files, addressed by a keyed name derived from their content hash (so the
//! directory listing does not reveal which programs ran here).
//!
//! A store that is only a cache (compiled components: anyone who sends a new component adds
//! one) takes a byte quota: past it, the least recently used files (by modification time,
//! refreshed on every hit) are removed until the store is back under 90 % of the quota. Stores
//! of data that must not be lost (deployed agents' code) have none.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

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
    quota: Option<Arc<Quota>>,
}

/// The byte budget of a cache store.
struct Quota {
    max: u64,
    /// Bytes stored, as counted since the last scan (an overwrite counts twice until then).
    used: AtomicU64,
    /// One trim at a time.
    trimming: Mutex<()>,
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
            quota: None,
        })
    }

    /// This store as a cache of at most `max_bytes`: what is already there counts, and the
    /// least recently used artifacts go when a new one takes the store past it.
    ///
    /// # Errors
    /// [`StorageError::Io`] if the directory cannot be listed.
    pub fn with_quota(mut self, max_bytes: u64) -> Result<Self, StorageError> {
        let used = self.files()?.iter().map(|f| f.size).sum();
        self.quota = Some(Arc::new(Quota {
            max: max_bytes,
            used: AtomicU64::new(used),
            trimming: Mutex::new(()),
        }));
        Ok(self)
    }

    /// Bytes in the store's files now.
    ///
    /// # Errors
    /// [`StorageError::Io`] if the directory cannot be listed.
    pub fn size(&self) -> Result<u64, StorageError> {
        Ok(self.files()?.iter().map(|f| f.size).sum())
    }

    /// The store's artifact files (temporary files of writes in progress excluded).
    fn files(&self) -> Result<Vec<FileInfo>, StorageError> {
        let suffix = format!(".{}", self.extension);
        let entries = std::fs::read_dir(&self.dir).map_err(io("list", &self.dir))?;
        let mut files = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.to_string_lossy().ends_with(&suffix) {
                continue;
            }
            if let Ok(meta) = entry.metadata() {
                files.push(FileInfo {
                    size: meta.len(),
                    used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    path,
                });
            }
        }
        Ok(files)
    }

    /// Removes the least recently used artifacts until the store is under 90 % of its quota.
    fn trim(&self, quota: &Quota) -> Result<(), StorageError> {
        let _one = quota
            .trimming
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut files = self.files()?;
        let mut total: u64 = files.iter().map(|f| f.size).sum();
        let target = quota.max / 10 * 9;
        if total > quota.max {
            files.sort_by_key(|f| f.used);
            let mut removed = 0usize;
            for f in &files {
                if total <= target {
                    break;
                }
                if std::fs::remove_file(&f.path).is_ok() {
                    total -= f.size;
                    removed += 1;
                }
            }
            tracing::info!(
                removed,
                bytes = total,
                quota = quota.max,
                dir = %self.dir.display(),
                "cache over its quota: least recently used artifacts removed"
            );
        }
        quota.used.store(total, Ordering::Relaxed);
        Ok(())
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
        match self.key.open_owned(&aad, sealed) {
            Ok(plain) => {
                if self.quota.is_some() {
                    touch(&path);
                }
                Ok(Some(plain))
            }
            Err(_) => {
                tracing::warn!(path = %path.display(), "sealed artifact failed authentication; discarding it");
                let _ = std::fs::remove_file(&path);
                Ok(None)
            }
        }
    }

    /// Whether an artifact for `content_hash` is stored (not whether it is authentic:
    /// [`Self::load`] says that).
    pub fn contains(&self, content_hash: &[u8; 32]) -> bool {
        self.path(content_hash).exists()
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
        let Some(quota) = &self.quota else {
            return write_atomic(&self.path(content_hash), &sealed, true);
        };
        let size = sealed.len() as u64;
        if size > quota.max {
            tracing::warn!(
                bytes = size,
                quota = quota.max,
                "artifact larger than the cache quota; not kept"
            );
            return Ok(());
        }
        write_atomic(&self.path(content_hash), &sealed, true)?;
        if quota.used.fetch_add(size, Ordering::Relaxed) + size > quota.max {
            self.trim(quota)?;
        }
        Ok(())
    }

    /// Removes the artifact for `content_hash`, if any.
    pub fn remove(&self, content_hash: &[u8; 32]) {
        let _ = std::fs::remove_file(self.path(content_hash));
    }
}

/// One artifact file.
struct FileInfo {
    path: PathBuf,
    size: u64,
    used: SystemTime,
}

/// Marks `path` as used now (its modification time is the cache's recency).
fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().write(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_over_its_quota_drops_the_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let key = Arc::new(SealingKey::generate().unwrap());
        let open = || {
            ArtifactStore::open(dir.path().join("c"), key.clone(), b"test", "bin")
                .unwrap()
                .with_quota(10_000)
                .unwrap()
        };
        let store = open();
        let data = vec![7u8; 1_900]; // ~1.9 KB sealed: five fit, the sixth does not
        let at = |i: u64| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000 + i);
        for i in 0..5u8 {
            store.store(&[i; 32], &data).unwrap();
            // Distinct, increasing recency without sleeping.
            let f = std::fs::File::options()
                .write(true)
                .open(store.path(&[i; 32]))
                .unwrap();
            f.set_modified(at(u64::from(i))).unwrap();
        }
        assert!(store.size().unwrap() <= 10_000);
        // Artifact 0 is used: now the most recent.
        assert!(store.load(&[0; 32]).unwrap().is_some());
        store.store(&[9; 32], &data).unwrap();
        let size = store.size().unwrap();
        assert!(size <= 9_000, "{size}");
        assert!(
            store.load(&[0; 32]).unwrap().is_some(),
            "recently used, kept"
        );
        assert!(store.load(&[9; 32]).unwrap().is_some(), "new, kept");
        assert_eq!(
            store.load(&[1; 32]).unwrap(),
            None,
            "least recently used, removed"
        );
        // Reopening counts what is there.
        let again = open();
        assert_eq!(
            again.quota.as_ref().unwrap().used.load(Ordering::Relaxed),
            size
        );
    }

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
