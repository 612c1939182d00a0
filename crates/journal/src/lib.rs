//! An append-only journal: numbered records (LSNs, from 1) in segment files
//! `<prefix>-<first LSN, 20 digits>.journal` in one directory. A group of records is appended
//! with one `pwrite`; nothing is flushed to disk unless asked ([`Journal::sync`],
//! [`Options::sync_on_rotate`]), so an appended record survives a crash of the process (it is
//! in the kernel's page cache) but not, unless synced, a power loss.
//!
//! Whoever applies the records elsewhere (a database, in one transaction with the last LSN it
//! applied) tells [`Journal::open`] that LSN: replay hands over every later record, in order.
//! The last segment may end with a record cut short or damaged (what a write torn at a power
//! loss leaves): it is cut there. Anywhere else, records not applied that cannot be read, or
//! are gone (a segment removed by hand), are an error, never skipped; opening deletes nothing.
//! [`Journal::forget`] removes the segments whose records are all applied.
//!
//! The record format and its test vectors are in [`record`] and `tests/vectors.rs`.

pub mod record;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use record::Decoded;

/// How a journal writes.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// A segment is closed and a new one begun when an append would take it past this many
    /// bytes (a group of records always goes whole into one segment, so one may be longer).
    pub segment_bytes: u64,
    /// The largest payload a record may hold; a longer one is refused ([`Error::TooLarge`]) and
    /// on replay a length field past it marks a damaged record.
    pub max_record: u32,
    /// Whether a segment is flushed to disk when it is closed, and the directory when a
    /// segment is created.
    pub sync_on_rotate: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            segment_bytes: 16 << 20,
            max_record: 64 << 20,
            sync_on_rotate: false,
        }
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file system refused (`op` says what was being done).
    #[error("journal: {op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A payload longer than [`Options::max_record`]; nothing of its group was appended.
    #[error("journal: a record of {len} bytes is longer than the limit of {max} bytes")]
    TooLarge {
        /// The payload's length.
        len: usize,
        /// The limit.
        max: u32,
    },
    /// Records not yet applied are missing: the first present after them is `found`.
    #[error(
        "journal: records from {expected} to {} are missing (not yet applied, and their \
         segment is gone)",
        found - 1
    )]
    Missing {
        /// The first missing LSN.
        expected: u64,
        /// The first LSN present after the gap.
        found: u64,
    },
    /// A record is damaged, cut short or out of sequence in a segment that is not the last,
    /// and records not yet applied follow it (or a segment overlaps the one before).
    #[error(
        "journal: record {lsn} in {segment} is damaged or out of sequence, and records not yet \
         applied follow it"
    )]
    Damaged {
        /// The LSN expected there (or the overlapping segment's first).
        lsn: u64,
        /// The segment's file name.
        segment: String,
    },
    /// `applied` is the last LSN there is: no record can follow it.
    #[error("journal: every LSN is used")]
    Exhausted,
    /// The replay's consumer refused a record.
    #[error("journal: applying record {lsn} failed: {detail}")]
    Apply {
        /// The record.
        lsn: u64,
        /// Why.
        detail: String,
    },
    /// An earlier append failed part-way: the journal takes no more records until reopened.
    #[error("journal: an earlier append failed; reopen the journal")]
    Stopped,
}

fn io(op: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { op, source }
}

/// An open journal, appending to its last segment.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    prefix: String,
    options: Options,
    /// First LSNs of the segments, oldest first; the last is [`Self::file`].
    segments: Vec<u64>,
    file: File,
    /// Bytes in the last segment.
    len: u64,
    /// The LSN the next record gets.
    next: u64,
    stopped: bool,
}

/// The file name of the segment beginning at `first`.
fn segment_name(prefix: &str, first: u64) -> String {
    format!("{prefix}-{first:020}.journal")
}

/// The segments of `prefix` in `dir`: their first LSNs, sorted.
fn list(dir: &Path, prefix: &str) -> Result<Vec<u64>, Error> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io("read the directory"))? {
        let name = entry.map_err(io("read the directory"))?.file_name();
        let Some(name) = name.to_str() else { continue };
        let first = name
            .strip_prefix(prefix)
            .and_then(|n| n.strip_prefix('-'))
            .and_then(|n| n.strip_suffix(".journal"))
            .filter(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok())
            // LSNs start at 1: a segment named 0 is not one this crate wrote.
            .filter(|&first| first > 0);
        if let Some(first) = first {
            found.push(first);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Cuts the segment at `path` to `len` bytes and flushes the cut (so that the bytes cut
/// cannot come back after a power loss under records appended in their place).
fn cut(path: &Path, len: u64) -> Result<(), Error> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io("open a segment to cut it"))?;
    if file.metadata().map_err(io("read a segment's size"))?.len() > len {
        file.set_len(len).map_err(io("cut a segment"))?;
        file.sync_all().map_err(io("flush a cut segment"))?;
    }
    Ok(())
}

/// Flushes `dir`'s entries (a segment created in it).
fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("flush the directory"))
}

impl Journal {
    /// Opens (creating `dir` and a first segment if needed) the journal `prefix` in `dir`,
    /// calling `apply` with every record after `applied`, in order. Nothing is deleted:
    /// - the last segment may end with a record cut short, damaged or out of sequence (a write
    ///   torn at a power loss): it is cut there, and the cut flushed;
    /// - in an earlier segment, a bad record at or before `applied` ends the reading of that
    ///   segment only (what follows it there was applied, or the next segment's start shows
    ///   it missing); one after `applied` is [`Error::Damaged`].
    ///
    /// The next record appended is numbered after both the last one read and `applied`.
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::Missing`] if records after `applied` are gone;
    /// [`Error::Damaged`]; [`Error::Apply`] if `apply` refused one (the journal is left as it
    /// was); [`Error::Exhausted`] if `applied` is `u64::MAX`.
    pub fn open<F>(
        dir: &Path,
        prefix: &str,
        options: Options,
        applied: u64,
        mut apply: F,
    ) -> Result<Self, Error>
    where
        F: FnMut(u64, &[u8]) -> Result<(), String>,
    {
        let after = applied.checked_add(1).ok_or(Error::Exhausted)?;
        fs::create_dir_all(dir).map_err(io("create the directory"))?;
        let found = list(dir, prefix)?;
        // The LSN the next record read must carry.
        let mut next = found.first().copied().unwrap_or(after);
        // Where the last segment's whole records end.
        let mut end = 0;
        for (i, &first) in found.iter().enumerate() {
            let name = segment_name(prefix, first);
            if first < next {
                // Overlaps the records read already: not one sequence.
                return Err(Error::Damaged {
                    lsn: first,
                    segment: name,
                });
            }
            // Records before `first` may be gone only if they were all applied.
            let expected = if i == 0 { after } else { next.max(after) };
            if first > expected {
                return Err(Error::Missing {
                    expected,
                    found: first,
                });
            }
            next = first;
            let last = i + 1 == found.len();
            let path = dir.join(&name);
            let bytes = fs::read(&path).map_err(io("read a segment"))?;
            let mut at = 0;
            loop {
                // No length limit on replay: a length past the bytes read is a cut record,
                // and a limit lowered since must not turn written records into damage.
                match record::decode(&bytes[at..], u32::MAX) {
                    Decoded::Record {
                        lsn,
                        payload,
                        taken,
                    } if lsn == next => {
                        if lsn > applied {
                            apply(lsn, payload).map_err(|detail| Error::Apply { lsn, detail })?;
                        }
                        next += 1;
                        at += taken;
                    }
                    Decoded::End => break,
                    Decoded::Record { .. } | Decoded::Cut | Decoded::Damaged => {
                        if last {
                            cut(&path, at as u64)?;
                            break;
                        }
                        if next <= applied {
                            break;
                        }
                        return Err(Error::Damaged {
                            lsn: next,
                            segment: name,
                        });
                    }
                }
            }
            end = at as u64;
        }
        let mut journal = match found.last() {
            Some(&last) => Self {
                file: OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(dir.join(segment_name(prefix, last)))
                    .map_err(io("open the last segment"))?,
                dir: dir.to_path_buf(),
                prefix: prefix.to_owned(),
                options,
                segments: found,
                len: end,
                next,
                stopped: false,
            },
            None => Self::begin(dir, prefix, options, Vec::new(), after)?,
        };
        // The applier may be ahead of what the journal kept (a power loss took the journal's
        // tail after the applier had flushed it): never number a new record as an applied one.
        if journal.next <= applied {
            journal = Self::begin(dir, prefix, options, journal.segments, after)?;
        }
        Ok(journal)
    }

    /// A journal appending to a new segment beginning at `first`, after `segments`.
    fn begin(
        dir: &Path,
        prefix: &str,
        options: Options,
        mut segments: Vec<u64>,
        first: u64,
    ) -> Result<Self, Error> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.join(segment_name(prefix, first)))
            .map_err(io("create a segment"))?;
        if options.sync_on_rotate {
            sync_dir(dir)?;
        }
        segments.push(first);
        Ok(Self {
            dir: dir.to_path_buf(),
            prefix: prefix.to_owned(),
            options,
            segments,
            file,
            len: 0,
            next: first,
            stopped: false,
        })
    }

    /// The LSN the next record appended gets.
    #[must_use]
    pub fn next_lsn(&self) -> u64 {
        self.next
    }

    /// How many segment files the journal has.
    #[must_use]
    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    /// Appends `payloads` as consecutive records, with one write, and returns the LSN of the
    /// last (of the one before the first, for none).
    ///
    /// # Errors
    /// [`Error::TooLarge`] (nothing appended); [`Error::Io`], after which the journal takes
    /// no more records ([`Error::Stopped`]) until reopened. After an `Io` error the group's
    /// fate is unknown: a reopen replays the records of it that were written whole, so a
    /// caller must not report them as refused.
    pub fn append(&mut self, payloads: &[&[u8]]) -> Result<u64, Error> {
        if self.stopped {
            return Err(Error::Stopped);
        }
        if let Some(long) = payloads
            .iter()
            .find(|p| p.len() > self.options.max_record as usize)
        {
            return Err(Error::TooLarge {
                len: long.len(),
                max: self.options.max_record,
            });
        }
        if payloads.is_empty() {
            return Ok(self.next - 1);
        }
        let mut bytes = Vec::new();
        for (lsn, payload) in (self.next..).zip(payloads) {
            record::encode_into(&mut bytes, lsn, payload);
        }
        let size = bytes.len() as u64;
        if self.len > 0 && self.len + size > self.options.segment_bytes {
            self.rotate()?;
        }
        if let Err(e) = self.file.write_all_at(&bytes, self.len) {
            self.stopped = true;
            return Err(io("append")(e));
        }
        self.len += size;
        self.next += payloads.len() as u64;
        Ok(self.next - 1)
    }

    /// Closes the last segment (flushed if [`Options::sync_on_rotate`]) and begins another.
    fn rotate(&mut self) -> Result<(), Error> {
        if self.options.sync_on_rotate
            && let Err(e) = self.file.sync_data()
        {
            // A failed flush may have dropped the pages it could not write: stop.
            self.stopped = true;
            return Err(io("flush a segment")(e));
        }
        let segments = self.segments.clone();
        let next = Self::begin(&self.dir, &self.prefix, self.options, segments, self.next);
        match next {
            Ok(journal) => {
                *self = journal;
                Ok(())
            }
            Err(e) => {
                self.stopped = true;
                Err(e)
            }
        }
    }

    /// Flushes what was appended, and the directory's entries, to disk.
    ///
    /// # Errors
    /// [`Error::Stopped`]; [`Error::Io`], after which the journal takes no more records until
    /// reopened (a failed flush may have dropped the pages it could not write).
    pub fn sync(&mut self) -> Result<(), Error> {
        if self.stopped {
            return Err(Error::Stopped);
        }
        let flushed = self
            .file
            .sync_data()
            .map_err(io("flush"))
            .and_then(|()| sync_dir(&self.dir));
        if flushed.is_err() {
            self.stopped = true;
        }
        flushed
    }

    /// Removes the segments, the last excepted, whose records are all at or before `applied`.
    /// Returns how many.
    ///
    /// # Errors
    /// [`Error::Io`] (the segments before the one that failed are removed).
    pub fn forget(&mut self, applied: u64) -> Result<usize, Error> {
        let mut removed = 0;
        // (Segment names are at least 1, so `self.segments[1] - 1` is their last LSN.)
        while self.segments.len() > 1 && self.segments[1] - 1 <= applied {
            let path = self.dir.join(segment_name(&self.prefix, self.segments[0]));
            match fs::remove_file(&path) {
                Ok(()) => {}
                // Already gone: what it held was applied, as asked.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("remove an applied segment")(e)),
            }
            self.segments.remove(0);
            removed += 1;
        }
        Ok(removed)
    }
}
