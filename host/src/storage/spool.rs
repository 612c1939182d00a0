//! Upload spools: the binary part of a large upload, written to an unnamed temporary file as it
//! arrives instead of being held in memory, sealed chunk by chunk ([`crate::crypto::chunks`])
//! and hashed on the way.
//!
//! A slow client trickling a large component holds a file descriptor and a few KiB of memory,
//! not the component: the bytes come back into memory once, in one buffer, only when the whole
//! upload has arrived and its request is about to be processed. The file has no name (created
//! with `O_TMPFILE` where the OS has it, otherwise unlinked at once), so it disappears when the
//! spool is dropped, also when the upload is abandoned or the process dies; its content on disk
//! is ciphertext under a key that never leaves this process.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{StorageError, io};
use crate::crypto::chunks::{ChunkKey, TAG_LEN};

/// Plaintext bytes per sealed chunk.
pub const CHUNK: usize = 64 << 10;

/// Purpose bound into every chunk of a spool.
const PURPOSE: &[u8] = b"wasm-hypervisor/v1/upload-spool";

/// A spool being written.
pub struct Spool {
    file: File,
    path: PathBuf,
    key: ChunkKey,
    /// The chunk being filled (sealed and written when full).
    pending: Vec<u8>,
    chunks: u64,
    len: u64,
    hash: Sha256,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// A new, empty spool in `dir` (created if missing).
    ///
    /// # Errors
    /// [`StorageError::Io`] if the directory or the file cannot be created;
    /// [`StorageError::KeyGeneration`] if the OS refuses randomness.
    pub fn create(dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(io("create directory", dir))?;
        let file = tempfile::tempfile_in(dir).map_err(io("create spool in", dir))?;
        Ok(Self {
            file,
            path: dir.to_path_buf(),
            key: ChunkKey::generate(PURPOSE).map_err(|_| StorageError::KeyGeneration)?,
            pending: Vec::with_capacity(CHUNK),
            chunks: 0,
            len: 0,
            hash: Sha256::new(),
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `data`: hashed now, sealed and written chunk by chunk (a partial chunk waits in
    /// memory for the next call or [`Self::finish`]).
    ///
    /// # Errors
    /// [`StorageError::Io`] if the file cannot be written.
    pub fn write(&mut self, mut data: &[u8]) -> Result<(), StorageError> {
        self.hash.update(data);
        self.len += data.len() as u64;
        while !data.is_empty() {
            let take = (CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == CHUNK {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Seals and writes the pending chunk.
    fn flush(&mut self) -> Result<(), StorageError> {
        let tag = self
            .key
            .seal(self.chunks, &mut self.pending)
            .map_err(|_| StorageError::KeyGeneration)?;
        self.file
            .write_all(&self.pending)
            .and_then(|()| self.file.write_all(&tag))
            .map_err(io("write spool in", &self.path))?;
        self.chunks += 1;
        self.pending.clear();
        Ok(())
    }

    /// Ends the upload: the last partial chunk is written; the spool can then be read back.
    ///
    /// # Errors
    /// [`StorageError::Io`] if the file cannot be written.
    pub fn finish(mut self) -> Result<Spooled, StorageError> {
        if !self.pending.is_empty() {
            self.flush()?;
        }
        Ok(Spooled {
            file: self.file,
            path: self.path,
            key: self.key,
            chunks: self.chunks,
            len: self.len,
            sha256: self.hash.finalize().into(),
        })
    }
}

/// A finished spool.
pub struct Spooled {
    file: File,
    path: PathBuf,
    key: ChunkKey,
    chunks: u64,
    len: u64,
    sha256: [u8; 32],
}

impl Spooled {
    /// Its length, bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// SHA-256 of its bytes, computed as they arrived.
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// Reads the bytes back into one buffer, opening every chunk in place (the file is
    /// removed when this returns). Blocking: call it off the async threads.
    ///
    /// # Errors
    /// [`StorageError::Io`] if the file cannot be read; [`StorageError::Tampered`] if a chunk
    /// does not open (the file was changed under the host) or chunks are missing.
    pub fn read(mut self) -> Result<Vec<u8>, StorageError> {
        let len = usize::try_from(self.len).map_err(|_| StorageError::Tampered("spool"))?;
        let mut out = vec![0u8; len];
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(io("rewind spool in", &self.path))?;
        let mut tag = [0u8; TAG_LEN];
        for (index, chunk) in (0u64..).zip(out.chunks_mut(CHUNK)) {
            if index >= self.chunks {
                return Err(StorageError::Tampered("spool"));
            }
            self.file
                .read_exact(chunk)
                .and_then(|()| self.file.read_exact(&mut tag))
                .map_err(io("read spool in", &self.path))?;
            self.key
                .open(index, chunk, &tag)
                .map_err(|_| StorageError::Tampered("spool"))?;
        }
        // Nothing may follow the last chunk.
        let mut probe = [0u8; 1];
        match self.file.read(&mut probe) {
            Ok(0) => Ok(out),
            Ok(_) => Err(StorageError::Tampered("spool")),
            Err(e) => Err(io("read spool in", &self.path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spooled(dir: &Path, data: &[u8], piece: usize) -> Spooled {
        let mut spool = Spool::create(dir).unwrap();
        for part in data.chunks(piece.max(1)) {
            spool.write(part).unwrap();
        }
        spool.finish().unwrap()
    }

    #[test]
    fn round_trips_any_length_in_any_pieces() {
        let dir = tempfile::tempdir().unwrap();
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 + i / 251) as u8).collect();
            for piece in [1000, CHUNK, 5 * CHUNK] {
                let s = spooled(dir.path(), &data, piece);
                assert_eq!(s.len(), n as u64);
                assert_eq!(s.sha256(), <[u8; 32]>::from(Sha256::digest(&data)));
                assert_eq!(s.read().unwrap(), data, "n = {n}, piece = {piece}");
            }
        }
        // nothing is left in the directory: the files have no name
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_disk_holds_ciphertext_and_tampering_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = b"(component) secret bytes ".repeat(10_000);
        let s = spooled(dir.path(), &data, 4096);
        let mut raw = Vec::new();
        let mut file = s.file.try_clone().unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut raw).unwrap();
        assert!(!raw.windows(14).any(|w| w == b"secret bytes ("));
        assert_eq!(
            raw.len(),
            data.len() + 4 * TAG_LEN,
            "four chunks, each tagged"
        );

        // one flipped bit in the second chunk
        let mut flip = [0u8; 1];
        file.seek(SeekFrom::Start(CHUNK as u64 + 20)).unwrap();
        file.read_exact(&mut flip).unwrap();
        file.seek(SeekFrom::Start(CHUNK as u64 + 20)).unwrap();
        file.write_all(&[flip[0] ^ 1]).unwrap();
        assert!(matches!(s.read(), Err(StorageError::Tampered(_))));

        // bytes appended after the last chunk
        let s = spooled(dir.path(), &data, 4096);
        let mut file = s.file.try_clone().unwrap();
        file.seek(SeekFrom::End(0)).unwrap();
        file.write_all(b"more").unwrap();
        assert!(matches!(s.read(), Err(StorageError::Tampered(_))));
    }
}
