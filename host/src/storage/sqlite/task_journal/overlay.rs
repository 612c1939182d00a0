//! What the journal holds that the table does not yet: the image of every task written since
//! its last fold, and the usage counts (`a2a_usage`'s) as they are with those writes. Every
//! write is decided here, against the overlay and, for what it has not got, the table, so a
//! write's check (a quota, a compare and set) and its effect are one step under the journal's
//! lock. Pure bookkeeping: the journal appends, the fold applies.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use super::promised::Promised;
use crate::storage::StorageError;
use crate::storage::sqlite::tasks::usage_key;
use crate::storage::tasks::{SealedTask, StoredTask, TERMINAL, TaskQuota};

/// Usage keys kept once nothing unfolded refers to them (read again from the table after).
const USAGE_KEYS_KEPT: usize = 4_096;

/// What the table holds, for what the overlay has not got.
pub trait Table {
    /// `(tasks, bytes)` of the usage key (`''`: all tasks).
    ///
    /// # Errors
    /// [`StorageError`].
    fn usage(&self, key: &str) -> Result<(u64, u64), StorageError>;

    /// The stored row `id`.
    ///
    /// # Errors
    /// [`StorageError`].
    fn row(&self, id: &str) -> Result<Option<SealedTask>, StorageError>;
}

/// Which ids are taken, without a read per insert: a keyed 64-bit hash of every id stored or
/// held (10–20 bytes per task). A hash found is checked against the table (two ids with one
/// hash are the only false alarm), so a duplicate id is refused as on the table alone.
pub struct Ids {
    hasher: RandomState,
    taken: HashSet<u64>,
}

impl Ids {
    /// The ids of the tasks stored.
    pub fn new<'a>(stored: impl IntoIterator<Item = &'a str>) -> Self {
        let hasher = RandomState::new();
        let taken = stored.into_iter().map(|id| hasher.hash_one(id)).collect();
        Self { hasher, taken }
    }

    fn maybe(&self, id: &str) -> bool {
        self.taken.contains(&self.hasher.hash_one(id))
    }

    fn add(&mut self, id: &str) {
        self.taken.insert(self.hasher.hash_one(id));
    }

    /// Forgets `ids` (deleted).
    pub fn remove<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>) {
        for id in ids {
            self.taken.remove(&self.hasher.hash_one(id));
        }
    }
}

/// A task written and not yet folded (or being folded: it leaves once its fold committed,
/// if not written again meanwhile).
struct Entry {
    image: Arc<SealedTask>,
    /// The journal record that wrote it last.
    lsn: u64,
}

/// A usage key's counts as they are with the overlay's writes.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    tasks: u64,
    bytes: u64,
    /// Entries of the overlay counted under this key: while any is, the table's row for the
    /// key is behind, and the key is kept.
    refs: u32,
}

/// A decided write: what to append, then [`Overlay::apply`].
pub struct Change {
    /// The row's image after the write.
    pub image: Arc<SealedTask>,
    /// The image's size before the write (`None`: a new task).
    before: Option<u64>,
    /// Whether the overlay had the row (else it came from the table).
    held: bool,
}

/// The overlay.
pub struct Overlay {
    entries: HashMap<String, Entry>,
    ids: Ids,
    usage: HashMap<String, Usage>,
    /// Bytes of all stored tasks, once read.
    total_bytes: Option<u64>,
    /// Sealed bytes the entries hold.
    held_bytes: u64,
    /// Room held for tasks not stored yet ([`Self::hold`]).
    promised: Promised,
}

/// What a task's content takes against the byte budget.
fn size(row: &SealedTask) -> u64 {
    TaskQuota::size_of(row)
}

/// The image as the table's reads return it.
pub fn stored(image: &SealedTask) -> StoredTask {
    StoredTask {
        id: image.id.clone(),
        agent: image.agent.clone(),
        caller: image.caller.clone(),
        task: image.task.clone(),
        pending: image.pending.clone(),
        created_ms: image.created_ms,
        updated_ms: image.updated_ms,
    }
}

impl Overlay {
    /// An overlay over a table holding the tasks `ids`.
    pub fn new(ids: Ids) -> Self {
        Self {
            entries: HashMap::new(),
            ids,
            usage: HashMap::new(),
            total_bytes: None,
            held_bytes: 0,
            promised: Promised::default(),
        }
    }

    /// The ids taken (for the reaper to forget those it deletes).
    pub fn ids(&mut self) -> &mut Ids {
        &mut self.ids
    }

    /// The task `id`, if written since it was last folded.
    pub fn get(&self, id: &str) -> Option<Arc<SealedTask>> {
        self.entries.get(id).map(|e| e.image.clone())
    }

    /// Sealed bytes held, for the fold's trigger.
    pub fn held_bytes(&self) -> u64 {
        self.held_bytes
    }

    /// Tasks held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn key_usage(&mut self, table: &dyn Table, key: &str) -> Result<Usage, StorageError> {
        if let Some(usage) = self.usage.get(key) {
            return Ok(*usage);
        }
        if self.usage.len() >= USAGE_KEYS_KEPT {
            // (A decided change's key is loaded last, after this: never dropped before it
            // is applied.)
            self.usage.retain(|_, u| u.refs > 0);
        }
        let (tasks, bytes) = table.usage(key)?;
        let usage = Usage {
            tasks,
            bytes,
            refs: 0,
        };
        self.usage.insert(key.to_string(), usage);
        Ok(usage)
    }

    fn total(&mut self, table: &dyn Table) -> Result<u64, StorageError> {
        match self.total_bytes {
            Some(bytes) => Ok(bytes),
            None => {
                let (_, bytes) = table.usage("")?;
                self.total_bytes = Some(bytes);
                Ok(bytes)
            }
        }
    }

    /// `(tasks counted against caller on agent, bytes of all tasks)`.
    ///
    /// # Errors
    /// [`StorageError`] reading the table.
    pub fn usage(
        &mut self,
        table: &dyn Table,
        caller: &str,
        agent: &str,
    ) -> Result<(u64, u64), StorageError> {
        self.counted(table, &usage_key(caller, agent))
    }

    /// `(tasks of key, bytes of all tasks)`, room held for tasks not stored yet included.
    fn counted(&mut self, table: &dyn Table, key: &str) -> Result<(u64, u64), StorageError> {
        let tasks = self.key_usage(table, key)?.tasks + self.promised.tasks(key);
        let total = self.total(table)? + self.promised.bytes();
        Ok((tasks, total))
    }

    /// Whether a new task of `caller` on `agent`, of `bytes`, stays within `quota`, counting
    /// the table, the overlay and the room held.
    fn fits(
        &mut self,
        table: &dyn Table,
        caller: &str,
        agent: &str,
        bytes: u64,
        quota: &TaskQuota,
    ) -> Result<bool, StorageError> {
        let (tasks, total) = self.counted(table, &usage_key(caller, agent))?;
        Ok(tasks < quota.tasks_bound(caller) && total.saturating_add(bytes) <= quota.total_bytes)
    }

    /// Holds room for a new task of `caller` on `agent`, taking about `bytes`, to be stored
    /// later with [`Self::insert_held`]: `false` when a bound of `quota` refuses it. Every
    /// decision counts it until [`Self::unhold`].
    ///
    /// # Errors
    /// [`StorageError`] reading the table.
    pub fn hold(
        &mut self,
        table: &dyn Table,
        caller: &str,
        agent: &str,
        bytes: u64,
        quota: &TaskQuota,
    ) -> Result<bool, StorageError> {
        // (A task takes at least a byte, as in `TaskStore::admit`.)
        if !self.fits(table, caller, agent, bytes.max(1), quota)? {
            return Ok(false);
        }
        self.promised.add(usage_key(caller, agent), bytes);
        Ok(true)
    }

    /// Gives back room held by [`Self::hold`].
    pub fn unhold(&mut self, caller: &str, agent: &str, bytes: u64) {
        self.promised.remove(&usage_key(caller, agent), bytes);
    }

    /// Refuses an id taken (held or stored).
    fn check_free(&self, table: &dyn Table, id: &str) -> Result<(), StorageError> {
        if self.entries.contains_key(id) || (self.ids.maybe(id) && table.row(id)?.is_some()) {
            return Err(StorageError::Database {
                op: "insert task",
                detail: "a task with this id exists".into(),
            });
        }
        Ok(())
    }

    /// Decides the insert of `row`, whose room is held ([`Self::hold`]): no bound refuses it.
    ///
    /// # Errors
    /// [`StorageError`]: reading the table; an id taken.
    pub fn insert_held(
        &mut self,
        table: &dyn Table,
        row: &SealedTask,
    ) -> Result<Change, StorageError> {
        self.check_free(table, &row.id)?;
        // Loaded now, so that applying cannot fail.
        self.counted(table, &usage_key(&row.caller, &row.agent))?;
        Ok(Change {
            image: Arc::new(row.clone()),
            before: None,
            held: false,
        })
    }

    /// Decides the insert of `row` within `quota`: `None` when a bound refuses it.
    ///
    /// # Errors
    /// [`StorageError`]: reading the table; an id taken.
    pub fn insert(
        &mut self,
        table: &dyn Table,
        row: &SealedTask,
        quota: &TaskQuota,
    ) -> Result<Option<Change>, StorageError> {
        self.check_free(table, &row.id)?;
        if !self.fits(table, &row.caller, &row.agent, size(row), quota)? {
            return Ok(None);
        }
        Ok(Some(Change {
            image: Arc::new(row.clone()),
            before: None,
            held: false,
        }))
    }

    /// Decides the replacement of the task's state, content, time and owner by `row`'s, if
    /// the stored state is `expected` (any but a terminal one when `None`): `None` when it is
    /// not, or the task is not stored.
    ///
    /// # Errors
    /// [`StorageError`] reading the table.
    pub fn replace(
        &mut self,
        table: &dyn Table,
        row: &SealedTask,
        expected: Option<&str>,
    ) -> Result<Option<Change>, StorageError> {
        let (current, held) = match self.get(&row.id) {
            Some(image) => (image, true),
            None => match table.row(&row.id)? {
                Some(image) => (Arc::new(image), false),
                None => return Ok(None),
            },
        };
        let matches = match expected {
            Some(state) => current.state == state,
            None => !TERMINAL.contains(&current.state),
        };
        if !matches {
            return Ok(None);
        }
        // Loaded now, so that applying cannot fail.
        self.key_usage(table, &usage_key(&current.caller, &current.agent))?;
        self.total(table)?;
        let image = SealedTask {
            id: current.id.clone(),
            agent: current.agent.clone(),
            caller: current.caller.clone(),
            context_id: current.context_id.clone(),
            created_ms: current.created_ms,
            state: row.state,
            owner: row.owner.clone(),
            task: row.task.clone(),
            pending: row.pending.clone(),
            updated_ms: row.updated_ms,
        };
        Ok(Some(Change {
            image: Arc::new(image),
            before: Some(size(&current)),
            held,
        }))
    }

    /// Applies a decided `change`, appended as record `lsn`.
    pub fn apply(&mut self, change: Change, lsn: u64) {
        let image = change.image;
        let after = size(&image);
        let before = change.before.unwrap_or(0);
        let usage = self
            .usage
            .entry(usage_key(&image.caller, &image.agent))
            .or_default();
        if change.before.is_none() {
            usage.tasks += 1;
            self.ids.add(&image.id);
        }
        usage.bytes = (usage.bytes + after).saturating_sub(before);
        if !change.held {
            usage.refs += 1;
        }
        if let Some(total) = &mut self.total_bytes {
            *total = (*total + after).saturating_sub(before);
        }
        let entry = Entry { image, lsn };
        if let Some(old) = self.entries.insert(entry.image.id.clone(), entry) {
            self.held_bytes = self.held_bytes.saturating_sub(size(&old.image));
        }
        self.held_bytes += after;
    }

    /// What a fold applies: every image held, with the record that wrote it. (Folds take
    /// turns, and a fold that committed drops what it applied: whatever is held is unfolded,
    /// also after a fold that failed or panicked.)
    pub fn take(&self) -> Vec<(Arc<SealedTask>, u64)> {
        self.entries
            .values()
            .map(|e| (e.image.clone(), e.lsn))
            .collect()
    }

    /// Drops the entries of `folded` not written since (the table now has them), and the
    /// usage keys nothing refers to once more than [`USAGE_KEYS_KEPT`] are held.
    pub fn folded(&mut self, folded: &[(Arc<SealedTask>, u64)]) {
        for (image, lsn) in folded {
            if self.entries.get(&image.id).is_none_or(|e| e.lsn != *lsn) {
                continue;
            }
            self.entries.remove(&image.id);
            self.held_bytes = self.held_bytes.saturating_sub(size(image));
            if let Some(usage) = self.usage.get_mut(&usage_key(&image.caller, &image.agent)) {
                usage.refs = usage.refs.saturating_sub(1);
            }
        }
        if self.usage.len() > USAGE_KEYS_KEPT {
            self.usage.retain(|_, u| u.refs > 0);
        }
    }

    /// Forgets every usage count (the table's changed under them: tasks reaped). Only with no
    /// entry held.
    pub fn forget_usage(&mut self) {
        debug_assert!(self.entries.is_empty());
        self.usage.retain(|_, u| u.refs > 0);
        self.total_bytes = None;
    }
}

#[cfg(test)]
#[path = "overlay_tests.rs"]
mod tests;
