//! The overlay's decisions, against a table in memory.

use std::cell::RefCell;
use std::collections::HashMap;

use super::*;

/// A table in memory, counting its reads.
#[derive(Default)]
struct Memory {
    rows: HashMap<String, SealedTask>,
    reads: RefCell<usize>,
}

impl Table for Memory {
    fn usage(&self, key: &str) -> Result<(u64, u64), StorageError> {
        *self.reads.borrow_mut() += 1;
        let rows = self
            .rows
            .values()
            .filter(|r| key.is_empty() || usage_key(&r.caller, &r.agent) == key);
        Ok(rows.fold((0, 0), |(n, b), r| (n + 1, b + size(r))))
    }
    fn row(&self, id: &str) -> Result<Option<SealedTask>, StorageError> {
        *self.reads.borrow_mut() += 1;
        Ok(self.rows.get(id).cloned())
    }
}

fn task(id: &str, caller: &str, state: &'static str, len: usize) -> SealedTask {
    SealedTask {
        id: id.into(),
        agent: "echo".into(),
        caller: caller.into(),
        context_id: "c".into(),
        state,
        owner: "run".into(),
        task: vec![7; len],
        pending: None,
        created_ms: 1,
        updated_ms: 1,
    }
}

const QUOTA: TaskQuota = TaskQuota {
    per_caller: 2,
    anonymous_per_agent: 1,
    total_bytes: 100,
};
const WORKING: &str = "TASK_STATE_WORKING";

/// Bounds count the table's rows and the overlay's together; a replacement checks the
/// state it finds in the overlay, else in the table, keeps the row's identity, and moves
/// the byte count; nothing is read from the table twice while it is held.
#[test]
fn decisions_see_the_table_and_the_overlay_as_one() {
    let mut table = Memory::default();
    table
        .rows
        .insert("old".into(), task("old", "alice", WORKING, 10));
    let mut o = Overlay::new(Ids::new(["old"]));
    let t1 = o.insert(&table, &task("t1", "alice", WORKING, 20), &QUOTA);
    o.apply(t1.unwrap().unwrap(), 1);
    assert_eq!(o.usage(&table, "alice", "echo").unwrap(), (2, 30));
    // alice's third, refused; a duplicate id, an error; bob's, within the bytes left.
    assert!(
        o.insert(&table, &task("t2", "alice", WORKING, 1), &QUOTA)
            .unwrap()
            .is_none()
    );
    assert!(
        o.insert(&table, &task("t1", "bob", WORKING, 1), &QUOTA)
            .is_err()
    );
    assert!(
        o.insert(&table, &task("b1", "bob", WORKING, 71), &QUOTA)
            .unwrap()
            .is_none()
    );
    let b1 = o.insert(&table, &task("b1", "bob", WORKING, 70), &QUOTA);
    o.apply(b1.unwrap().unwrap(), 2);
    assert_eq!(o.usage(&table, "bob", "echo").unwrap(), (1, 100));
    let reads = *table.reads.borrow();

    // The table's row replaced: compare and set on its state; identity kept.
    let mut done = task("old", "mallory", "TASK_STATE_COMPLETED", 4);
    done.created_ms = 99;
    assert!(
        o.replace(&table, &done, Some("TASK_STATE_INPUT_REQUIRED"))
            .unwrap()
            .is_none()
    );
    let change = o.replace(&table, &done, Some(WORKING)).unwrap().unwrap();
    assert_eq!(
        (change.image.caller.as_str(), change.image.created_ms),
        ("alice", 1)
    );
    o.apply(change, 3);
    assert_eq!(o.usage(&table, "alice", "echo").unwrap(), (2, 94));
    // Finished: nothing replaces it any more; an unknown task is not replaced.
    assert!(o.replace(&table, &done, None).unwrap().is_none());
    assert!(
        o.replace(&table, &task("x", "", WORKING, 1), None)
            .unwrap()
            .is_none()
    );
    assert_eq!(*table.reads.borrow(), reads + 3, "two row reads, one miss");
}

/// Room held for a task not stored yet counts against every bound (tasks and bytes)
/// until given back; the held task's insert is refused by no bound, and once stored it
/// counts as itself.
#[test]
fn held_room_counts_until_given_back_and_its_insert_is_not_refused() {
    let table = Memory::default();
    let mut o = Overlay::new(Ids::new([]));
    assert!(o.hold(&table, "alice", "echo", 30, &QUOTA).unwrap());
    assert_eq!(o.usage(&table, "alice", "echo").unwrap(), (1, 30));
    assert!(o.hold(&table, "alice", "echo", 30, &QUOTA).unwrap());
    // alice's third: refused, held or inserted; bob's, past the bytes left: refused.
    assert!(!o.hold(&table, "alice", "echo", 1, &QUOTA).unwrap());
    let third = o.insert(&table, &task("t3", "alice", WORKING, 1), &QUOTA);
    assert!(third.unwrap().is_none());
    assert!(!o.hold(&table, "bob", "echo", 41, &QUOTA).unwrap());
    assert!(
        o.insert(&table, &task("b1", "bob", WORKING, 41), &QUOTA)
            .unwrap()
            .is_none()
    );
    // The first held task stored larger than held: not refused; its room given back.
    let done = task("t1", "alice", "TASK_STATE_COMPLETED", 50);
    let change = o.insert_held(&table, &done).unwrap();
    o.apply(change, 1);
    o.unhold("alice", "echo", 30);
    assert_eq!(o.usage(&table, "alice", "echo").unwrap(), (2, 80));
    // Its id is taken like any other.
    assert!(o.insert_held(&table, &done).is_err());
    // The second given back unstored: its room is free again.
    o.unhold("alice", "echo", 30);
    assert_eq!(o.usage(&table, "alice", "echo").unwrap(), (1, 50));
    assert!(o.hold(&table, "alice", "echo", 50, &QUOTA).unwrap());
}

/// A fold takes what is held; what is written during a fold stays; a failed fold leaves
/// everything to the next; folded entries and, once forgotten, their keys leave.
#[test]
fn folds_take_what_is_held_and_drop_what_did_not_change() {
    let table = Memory::default();
    let mut o = Overlay::new(Ids::new([]));
    let quota = TaskQuota {
        anonymous_per_agent: 5,
        ..QUOTA
    };
    for (lsn, id) in [(1, "a"), (2, "b")] {
        let change = o.insert(&table, &task(id, "", WORKING, 10), &quota);
        o.apply(change.unwrap().unwrap(), lsn);
    }
    let taken = o.take();
    assert_eq!(taken.len(), 2);
    // "a" is written again while its fold runs.
    let again = o.replace(&table, &task("a", "", "TASK_STATE_FAILED", 12), None);
    o.apply(again.unwrap().unwrap(), 3);
    o.folded(&taken);
    assert_eq!(o.len(), 1);
    assert_eq!(o.held_bytes(), 12);
    assert_eq!(o.get("a").unwrap().state, "TASK_STATE_FAILED");
    // A fold that fails changes nothing: the next takes the same.
    let failed = o.take();
    assert_eq!(failed.len(), 1);
    let taken = o.take();
    assert_eq!(taken.len(), 1);
    o.folded(&taken);
    assert_eq!((o.len(), o.held_bytes()), (0, 0));
    // Counts survive until forgotten; then read from the table again.
    assert_eq!(o.usage(&table, "", "echo").unwrap(), (2, 22));
    o.forget_usage();
    assert_eq!(o.usage(&table, "", "echo").unwrap(), (0, 0));
    // The ids stay taken (the table has them): a duplicate is read for, and refused.
    let mut table = table;
    table.rows.insert("a".into(), task("a", "", WORKING, 1));
    assert!(
        o.insert(&table, &task("a", "", WORKING, 1), &quota)
            .is_err()
    );
    // Reaped, an id is free again without a read.
    o.ids().remove(["a"]);
    table.rows.clear();
    let reads = *table.reads.borrow();
    assert!(
        o.insert(&table, &task("a", "", WORKING, 1), &quota)
            .unwrap()
            .is_some()
    );
    assert_eq!(
        *table.reads.borrow(),
        reads,
        "no read: the id is free, the counts held"
    );
}
