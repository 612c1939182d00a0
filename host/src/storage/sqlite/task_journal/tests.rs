//! The journal over a real `hypervisor.sqlite` and real segment files: what a crash (the
//! tasks dropped without a fold: their records written, the table not) leaves, torn and
//! foreign records, the fold's thread, the directory's lock. The quota and compare-and-set
//! rules on both backends are the storage conformance suite's (`storage::conformance`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::storage::tasks::TaskBackend;

const QUOTA: TaskQuota = TaskQuota {
    per_caller: 10,
    anonymous_per_agent: 10,
    total_bytes: 1 << 20,
};

fn relaxed(dir: &Path) -> Arc<Database> {
    Database::open(dir).unwrap();
    Arc::new(Database::open_relaxed(dir).unwrap())
}

/// Tasks over `dir`, folding only when asked (or when a read folds).
fn tasks(dir: &Path) -> (JournaledTasks, Arc<Database>) {
    let db = relaxed(dir);
    (
        JournaledTasks::open_with(dir, db.clone(), None).unwrap(),
        db,
    )
}

fn row(id: &str, caller: &str, state: &'static str, at: u64) -> SealedTask {
    SealedTask {
        id: id.into(),
        agent: "echo".into(),
        caller: caller.into(),
        context_id: "ctx".into(),
        state,
        owner: "run-a".into(),
        task: format!("sealed {id} {state}").into_bytes(),
        pending: None,
        created_ms: 1,
        updated_ms: at,
    }
}

const WORKING: &str = "TASK_STATE_WORKING";
const COMPLETED: &str = "TASK_STATE_COMPLETED";

/// `(rows, the last record folded)` in the table itself.
fn table(db: &Database) -> (i64, u64) {
    let conn = db.lock();
    let rows = conn
        .query_row("SELECT count(*) FROM a2a_tasks", [], |r| r.get(0))
        .unwrap();
    (rows, table::applied_on(&conn).unwrap())
}

/// What `a2a_usage` says of `key`, and what the rows add up to.
fn usage_and_recount(db: &Database, key: &str) -> ((i64, i64), (i64, i64)) {
    let conn = db.lock();
    let usage = conn
        .query_row(
            "SELECT tasks, bytes FROM a2a_usage WHERE key = ?1",
            [key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let recount = conn
        .query_row(
            "SELECT count(*), sum(length(sealed_task)) FROM a2a_tasks WHERE caller = ?1",
            [key.trim_start_matches("caller:")],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    (usage, recount)
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir.join("journal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "journal"))
        .collect();
    found.sort();
    found
}

/// Every answered write is in the table after a crash before any fold: inserts, a
/// replacement, not the refused ones; the numbering goes on after them.
#[test]
fn answered_writes_survive_a_crash_before_the_fold() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (tasks, db) = tasks(dir.path());
        for id in ["t1", "t2", "t3"] {
            assert!(tasks.insert(&row(id, "alice", WORKING, 1), &QUOTA).unwrap());
        }
        assert!(
            tasks
                .replace(&row("t2", "alice", COMPLETED, 2), Some(WORKING))
                .unwrap()
        );
        // Refused: a finished task; a state other than the one expected; a bound.
        assert!(
            !tasks
                .replace(&row("t2", "alice", WORKING, 3), None)
                .unwrap()
        );
        assert!(
            !tasks
                .replace(&row("t1", "alice", COMPLETED, 3), Some(COMPLETED))
                .unwrap()
        );
        let tight = TaskQuota {
            per_caller: 3,
            ..QUOTA
        };
        assert!(
            !tasks
                .insert(&row("t4", "alice", WORKING, 1), &tight)
                .unwrap()
        );
        // Read back before any fold: from the overlay.
        assert_eq!(tasks.get("t2").unwrap().unwrap().updated_ms, 2);
        assert_eq!(tasks.usage("alice", "echo").unwrap().0, 3);
        assert_eq!(table(&db), (0, 0), "nothing folded");
        // The crash: dropped without folding.
    }
    let (tasks, db) = tasks(dir.path());
    assert_eq!(
        table(&db),
        (3, 4),
        "three inserts and a replacement replayed"
    );
    let t2 = tasks.get("t2").unwrap().unwrap();
    assert_eq!(
        (t2.updated_ms, t2.task),
        (2, b"sealed t2 TASK_STATE_COMPLETED".to_vec())
    );
    let (usage, recount) = usage_and_recount(&db, "caller:alice");
    assert_eq!(usage, recount);
    assert_eq!(usage.0, 3);
    // Numbered after what was replayed; replayed segments removed but the last.
    assert!(tasks.insert(&row("t5", "bob", WORKING, 1), &QUOTA).unwrap());
    tasks.fold().unwrap();
    assert_eq!(table(&db), (4, 5));
    assert_eq!(segments(dir.path()).len(), 1);
}

/// A held task (a blocking send's, stored once with its outcome): its room counts against
/// the bounds until given back; its insert, answered, survives a crash like any write; room
/// held for a task never stored leaves nothing, and no room survives a restart.
#[test]
fn a_held_tasks_room_counts_until_given_back_and_its_insert_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let tight = TaskQuota {
        per_caller: 2,
        ..QUOTA
    };
    {
        let (tasks, db) = tasks(dir.path());
        for _ in 0..2 {
            assert_eq!(
                tasks.hold("alice", "echo", 100, &tight).unwrap(),
                Some(true)
            );
        }
        assert_eq!(tasks.hold("alice", "echo", 1, &tight).unwrap(), Some(false));
        assert!(
            !tasks
                .insert(&row("t3", "alice", WORKING, 1), &tight)
                .unwrap()
        );
        assert_eq!(tasks.usage("alice", "echo").unwrap().0, 2);
        // One run ends and is stored (past the bound: not refused), its room given back in
        // the same step: the task counts once.
        let t1 = row("t1", "alice", COMPLETED, 2);
        tasks.insert_held(&t1, 100).unwrap();
        assert_eq!(tasks.usage("alice", "echo").unwrap().0, 2);
        // The other ends unstored.
        tasks.unhold("alice", "echo", 100);
        assert_eq!(tasks.usage("alice", "echo").unwrap().0, 1);
        assert!(
            tasks
                .insert(&row("t2", "alice", WORKING, 3), &tight)
                .unwrap()
        );
        // A held insert refused (its id taken) gives its room back all the same.
        let (bob, t1_again) = ("bob", row("t1", "bob", COMPLETED, 4));
        assert_eq!(tasks.hold(bob, "echo", 100, &tight).unwrap(), Some(true));
        assert!(tasks.insert_held(&t1_again, 100).is_err());
        assert_eq!(tasks.usage(bob, "echo").unwrap().0, 0);
        assert_eq!(table(&db), (0, 0), "nothing folded");
        // A third room held when the host stops.
        assert_eq!(tasks.hold("bob", "echo", 100, &tight).unwrap(), Some(true));
    }
    let (tasks, db) = tasks(dir.path());
    assert_eq!(table(&db).0, 2, "the held task's insert and t2 replayed");
    let t1 = tasks.get("t1").unwrap().unwrap();
    assert_eq!(t1.task, b"sealed t1 TASK_STATE_COMPLETED".to_vec());
    let (usage, recount) = usage_and_recount(&db, "caller:alice");
    assert_eq!((usage, usage.0), (recount, 2));
    assert_eq!(tasks.usage("bob", "echo").unwrap().0, 0, "no room survives");
}

/// A record cut short at the end of the journal (a write torn by a power loss) is cut; the
/// records before it are replayed, and writing goes on.
#[test]
fn a_torn_last_record_is_cut_and_the_ones_before_it_replayed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (tasks, _db) = tasks(dir.path());
        assert!(tasks.insert(&row("kept", "", WORKING, 1), &QUOTA).unwrap());
        assert!(tasks.insert(&row("torn", "", WORKING, 1), &QUOTA).unwrap());
    }
    let last = segments(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let (tasks, db) = tasks(dir.path());
    assert!(tasks.get("kept").unwrap().is_some());
    assert!(tasks.get("torn").unwrap().is_none());
    assert_eq!(table(&db), (1, 1));
    assert!(tasks.insert(&row("next", "", WORKING, 1), &QUOTA).unwrap());
    tasks.fold().unwrap();
    assert_eq!(table(&db), (2, 2));
}

/// A fold, then more writes, then a crash: the table ends with each task's last image, once,
/// and its usage rows add up to the rows.
#[test]
fn a_crash_after_a_fold_replays_only_what_followed_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (tasks, db) = tasks(dir.path());
        for i in 0..50 {
            assert!(
                tasks
                    .insert(
                        &row(&format!("f{i}"), "carol", WORKING, 1),
                        &TaskQuota {
                            per_caller: 100,
                            ..QUOTA
                        }
                    )
                    .unwrap()
            );
        }
        tasks.fold().unwrap();
        assert_eq!(table(&db), (50, 50));
        for i in 0..50 {
            let mut done = row(&format!("f{i}"), "carol", COMPLETED, 2);
            done.task.extend(std::iter::repeat_n(b'x', i));
            assert!(tasks.replace(&done, Some(WORKING)).unwrap());
        }
    }
    let (tasks, db) = tasks(dir.path());
    assert_eq!(table(&db), (50, 100));
    let f7 = tasks.get("f7").unwrap().unwrap();
    assert!(f7.task.starts_with(b"sealed f7 TASK_STATE_COMPLETED"));
    let (usage, recount) = usage_and_recount(&db, "caller:carol");
    assert_eq!(usage, recount);
    // The tasks' own counts agree with the table's.
    assert_eq!(
        tasks.usage("carol", "echo").unwrap().0,
        u64::try_from(usage.0).unwrap()
    );
}

/// `list`, `unfinished` and `reap` see what was written just before (they fold first); a
/// reap frees the bound it counted.
#[test]
fn reads_over_the_table_fold_first() {
    let dir = tempfile::tempdir().unwrap();
    let (tasks, db) = tasks(dir.path());
    let one = TaskQuota {
        per_caller: 1,
        ..QUOTA
    };
    assert!(tasks.insert(&row("w", "dave", WORKING, 5), &one).unwrap());
    let filter = TaskFilter {
        caller: "dave",
        ..Default::default()
    };
    assert_eq!(tasks.list(&filter, 0, 10).unwrap().1, 1);
    let mut theirs = row("o", "erin", WORKING, 5);
    theirs.owner = "run-b".into();
    assert!(tasks.insert(&theirs, &QUOTA).unwrap());
    assert_eq!(tasks.unfinished("run-a", 0).unwrap(), vec!["o".to_string()]);
    assert!(
        tasks
            .replace(&row("w", "dave", COMPLETED, 6), None)
            .unwrap()
    );
    assert!(!tasks.insert(&row("w2", "dave", WORKING, 7), &one).unwrap());
    assert_eq!(tasks.reap(7).unwrap(), 1);
    assert!(tasks.insert(&row("w2", "dave", WORKING, 7), &one).unwrap());
    tasks.fold().unwrap();
    assert_eq!(table(&db).0, 2);
}

/// The fold's thread folds by itself.
#[test]
fn the_fold_runs_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let db = relaxed(dir.path());
    let tasks =
        JournaledTasks::open_with(dir.path(), db.clone(), Some(Duration::from_millis(10))).unwrap();
    assert!(tasks.insert(&row("a", "", WORKING, 1), &QUOTA).unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while table(&db) != (1, 1) {
        assert!(Instant::now() < deadline, "not folded: {:?}", table(&db));
        std::thread::sleep(Duration::from_millis(10));
    }
    // Closed, it folds what is left: nothing to replay.
    let slow = JournaledTasks::open_with(dir.path(), db.clone(), Some(Duration::from_secs(3600)));
    assert!(slow.is_err(), "the first is still open");
    drop(tasks);
    let slow =
        JournaledTasks::open_with(dir.path(), db.clone(), Some(Duration::from_secs(3600))).unwrap();
    assert!(slow.insert(&row("b", "", WORKING, 1), &QUOTA).unwrap());
    assert_eq!(table(&db), (1, 1));
    drop(slow);
    assert_eq!(table(&db), (2, 2));
}

/// A record whose checksum holds but which is not a task's image stops the start with an
/// error naming it: the host does not start rather than drop a write.
#[test]
fn a_record_that_is_not_a_task_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    drop(tasks(dir.path()));
    let mut journal = Journal::open(&dir.path().join("journal"), PREFIX, OPTIONS, 0, |_, _| {
        Ok(())
    })
    .unwrap();
    journal.append(&[b"\x01\xff"]).unwrap();
    drop(journal);
    let db = relaxed(dir.path());
    let Err(e) = JournaledTasks::open_with(dir.path(), db.clone(), None) else {
        panic!("opened")
    };
    assert!(e.to_string().contains("malformed"), "{e}");
    assert_eq!(table(&db), (0, 0));
}

/// One process at a time: a second journal on the directory is refused while the first is
/// open.
#[test]
fn a_second_host_on_the_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _db) = tasks(dir.path());
    let db = relaxed(dir.path());
    let Err(e) = JournaledTasks::open_with(dir.path(), db.clone(), None) else {
        panic!("opened twice")
    };
    assert!(e.to_string().contains("another host"), "{e}");
    drop(first);
    // Free once the first is dropped. (A process that another test forks in between holds a
    // copy of the lock's descriptor until it execs, a moment: the lock is retried meanwhile.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match JournaledTasks::open_with(dir.path(), db.clone(), None) {
            Ok(_) => break,
            Err(e) if std::time::Instant::now() < deadline => {
                assert!(e.to_string().contains("another host"), "{e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("still refused 10 s after the first was dropped: {e}"),
        }
    }
}

/// A duplicate id is refused whether its task is held or already folded (as on the table
/// alone), also after a restart; a reaped id is free again.
#[test]
fn a_duplicate_id_is_refused_held_folded_or_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (tasks, _db) = tasks(dir.path());
        assert!(tasks.insert(&row("d", "", WORKING, 1), &QUOTA).unwrap());
        assert!(tasks.insert(&row("d", "", WORKING, 1), &QUOTA).is_err());
        tasks.fold().unwrap();
        let again = tasks.insert(&row("d", "other", WORKING, 9), &QUOTA);
        assert!(again.unwrap_err().to_string().contains("exists"));
    }
    let (tasks, db) = tasks(dir.path());
    assert!(tasks.insert(&row("d", "", WORKING, 1), &QUOTA).is_err());
    assert!(tasks.replace(&row("d", "", COMPLETED, 2), None).unwrap());
    assert_eq!(tasks.reap(3).unwrap(), 1);
    assert!(tasks.insert(&row("d", "", WORKING, 4), &QUOTA).unwrap());
    tasks.fold().unwrap();
    assert_eq!(table(&db), (1, 3));
    assert_eq!(tasks.usage("", "echo").unwrap().0, 1);
}

/// Segments past the first are removed once folded (after the table's record of the fold is
/// flushed), and what they held is in the table; the journal keeps one segment.
#[test]
fn folded_segments_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (tasks, db) = tasks(dir.path());
    // 16 MiB segments: 40 tasks of ~1 MiB fill three.
    let big = |i: usize| {
        let mut r = row(&format!("b{i}"), "", WORKING, 1);
        r.task = vec![u8::try_from(i).unwrap(); 1 << 20];
        r
    };
    for i in 0..40 {
        assert!(tasks.insert(&big(i), &QUOTA_LARGE).unwrap());
    }
    assert!(
        segments(dir.path()).len() >= 3,
        "{:?}",
        segments(dir.path())
    );
    tasks.fold().unwrap();
    assert_eq!(segments(dir.path()).len(), 1);
    // That fold was committed at synchronous = FULL (flushing the log before the segments
    // went); the connection, the records writer's, is back at NORMAL (1).
    let synchronous: i64 = db
        .lock()
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap();
    assert_eq!(synchronous, 1);
    assert_eq!(table(&db), (40, 40));
    assert_eq!(tasks.get("b39").unwrap().unwrap().task, vec![39; 1 << 20]);
}

const QUOTA_LARGE: TaskQuota = TaskQuota {
    per_caller: 100,
    anonymous_per_agent: 100,
    total_bytes: 1 << 30,
};

/// Writers and folds at once: every task ends in the table in its last state, once, and the
/// usage rows add up to the rows (a task written again while its fold runs stays held and is
/// folded again, never lost or counted twice).
#[test]
fn writes_racing_folds_end_folded_and_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let (tasks, db) = tasks(dir.path());
    let quota = TaskQuota {
        per_caller: 10_000,
        ..QUOTA
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let folder = scope.spawn(|| {
            let mut folds = 0;
            loop {
                tasks.fold().unwrap();
                folds += 1;
                if done.load(std::sync::atomic::Ordering::Relaxed) {
                    break folds;
                }
            }
        });
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let (tasks, quota) = (&tasks, &quota);
                scope.spawn(move || {
                    for i in 0..150 {
                        let id = format!("w{w}-{i}");
                        assert!(tasks.insert(&row(&id, "racer", WORKING, 1), quota).unwrap());
                        let mut end = row(&id, "racer", COMPLETED, 2);
                        end.task.extend(std::iter::repeat_n(b'.', i % 7));
                        assert!(tasks.replace(&end, Some(WORKING)).unwrap());
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(folder.join().unwrap() > 0);
    });
    tasks.fold().unwrap();
    assert_eq!(lock(&tasks.inner.state).overlay.len(), 0);
    assert_eq!(table(&db), (450, 900));
    let completed: i64 = db
        .lock()
        .query_row(
            "SELECT count(*) FROM a2a_tasks WHERE state = 'TASK_STATE_COMPLETED'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(completed, 450);
    let (usage, recount) = usage_and_recount(&db, "caller:racer");
    assert_eq!(usage, recount);
}

/// While the table cannot be written, writes go on until 64 MiB are held unfolded, then are
/// refused (memory stays bounded); once it can, the next write folds and is stored.
#[test]
fn held_writes_are_bounded_while_folds_fail() {
    let dir = tempfile::tempdir().unwrap();
    let (tasks, db) = tasks(dir.path());
    let mib = |i: usize| {
        let mut r = row(&format!("m{i}"), "", WORKING, 1);
        r.task = vec![7; 1 << 20];
        r
    };
    db.lock()
        .execute_batch("ALTER TABLE a2a_journal RENAME TO a2a_journal_away")
        .unwrap();
    let mut stored = 0;
    let refused = loop {
        match tasks.insert(&mib(stored), &QUOTA_LARGE) {
            Ok(true) => stored += 1,
            Ok(false) => panic!("refused by a bound after {stored}"),
            Err(e) => break e,
        }
        assert!(stored < 100, "never refused");
    };
    assert!((64..=66).contains(&stored), "{stored}");
    assert!(refused.is_unavailable(), "{refused}");
    assert!(
        refused.to_string().contains("cannot be folded"),
        "{refused}"
    );
    // Within a second of the failed fold the next insert is refused without folding again.
    let again = tasks.insert(&mib(stored), &QUOTA_LARGE).unwrap_err();
    assert!(
        again.to_string().contains("within the last second"),
        "{again}"
    );
    // Nor is room held for a task that would be stored later (a blocking send's).
    let held = tasks.hold("", "echo", 1, &QUOTA_LARGE).unwrap_err();
    assert!(held.is_unavailable(), "{held}");
    // A run's outcome is never refused.
    let mut outcome = mib(0);
    outcome.state = COMPLETED;
    assert!(tasks.replace(&outcome, Some(WORKING)).unwrap());
    assert!(lock(&tasks.inner.state).overlay.held_bytes() <= HELD_BYTES_MAX + (1 << 20) + 1024);
    db.lock()
        .execute_batch("ALTER TABLE a2a_journal_away RENAME TO a2a_journal")
        .unwrap();
    std::thread::sleep(Duration::from_millis(1_100));
    assert!(tasks.insert(&mib(stored), &QUOTA_LARGE).unwrap());
    tasks.fold().unwrap();
    assert_eq!(table(&db).0, i64::try_from(stored + 1).unwrap());
}
