//! The journal through its interface, on real files in a temporary directory: replay after a
//! reopen, a record cut at every byte, damage, rotation, forgetting, a segment removed by hand,
//! an applier ahead of the journal.

use std::fs;
use std::path::{Path, PathBuf};

use hypervisor_journal::{Error, Journal, Options};

const PREFIX: &str = "tasks";

fn small() -> Options {
    Options {
        segment_bytes: 256,
        max_record: 1024,
        sync_on_rotate: false,
    }
}

/// Opens the journal in `dir` past `applied`, returning it and the records replayed.
fn open(dir: &Path, options: Options, applied: u64) -> (Journal, Vec<(u64, Vec<u8>)>) {
    let mut seen = Vec::new();
    let journal = Journal::open(dir, PREFIX, options, applied, |lsn, payload| {
        seen.push((lsn, payload.to_vec()));
        Ok(())
    })
    .expect("open");
    (journal, seen)
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "journal"))
        .collect();
    files.sort();
    files
}

/// Appends records 1 to `n` (`payload(i)`, one per append) in small segments.
fn fill(dir: &Path, n: u64) {
    let (mut journal, _) = open(dir, small(), 0);
    for i in 1..=n {
        journal.append(&[&payload(i)]).unwrap();
    }
}

fn payload(i: u64) -> Vec<u8> {
    format!("record {i}: {}", "x".repeat((i % 7) as usize)).into_bytes()
}

#[test]
fn appended_records_are_replayed_in_order_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, seen) = open(dir.path(), Options::default(), 0);
    assert!(seen.is_empty());
    assert_eq!(journal.next_lsn(), 1);
    assert_eq!(journal.append(&[b"a", b"bb"]).unwrap(), 2);
    assert_eq!(journal.append(&[b"ccc"]).unwrap(), 3);
    assert_eq!(journal.append(&[]).unwrap(), 3);
    drop(journal);

    let (journal, seen) = open(dir.path(), Options::default(), 0);
    let expected: Vec<(u64, Vec<u8>)> = vec![
        (1, b"a".to_vec()),
        (2, b"bb".to_vec()),
        (3, b"ccc".to_vec()),
    ];
    assert_eq!(seen, expected);
    assert_eq!(journal.next_lsn(), 4);
    drop(journal);

    // Only what was not applied is handed over.
    let (_, seen) = open(dir.path(), Options::default(), 2);
    assert_eq!(seen, vec![(3, b"ccc".to_vec())]);
}

#[test]
fn a_record_cut_at_any_byte_ends_the_replay_and_the_next_append_takes_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = open(dir.path(), Options::default(), 0);
    journal.append(&[b"first", b"second"]).unwrap();
    drop(journal);
    let file = segments(dir.path()).remove(0);
    let whole = fs::read(&file).unwrap();
    let first_len = 16 + b"first".len();
    for cut in first_len..whole.len() {
        fs::write(&file, &whole[..cut]).unwrap();
        let (mut journal, seen) = open(dir.path(), Options::default(), 0);
        assert_eq!(seen, vec![(1, b"first".to_vec())], "cut at {cut}");
        assert_eq!(fs::metadata(&file).unwrap().len(), first_len as u64);
        assert_eq!(journal.append(&[b"again"]).unwrap(), 2);
        drop(journal);
        let (_, seen) = open(dir.path(), Options::default(), 0);
        assert_eq!(seen, vec![(1, b"first".to_vec()), (2, b"again".to_vec())]);
    }
}

/// The first LSN of the segment file `path` (from its name).
fn first_lsn(path: &Path) -> u64 {
    let name = path.file_name().unwrap().to_str().unwrap();
    name[PREFIX.len() + 1..PREFIX.len() + 21].parse().unwrap()
}

/// Writes 40 records in small segments and flips a byte in the payload of the second record
/// of the second segment; returns the segments and that record's LSN.
fn damaged_journal(dir: &Path) -> (Vec<PathBuf>, u64) {
    fill(dir, 40);
    let files = segments(dir);
    assert!(files.len() >= 4, "{} segments", files.len());
    let first = first_lsn(&files[1]);
    let mut bytes = fs::read(&files[1]).unwrap();
    bytes[16 + payload(first).len() + 20] ^= 0xff;
    fs::write(&files[1], &bytes).unwrap();
    (files, first + 1)
}

#[test]
fn damage_before_the_last_segment_with_unapplied_records_after_it_is_an_error_and_nothing_is_deleted()
 {
    let dir = tempfile::tempdir().unwrap();
    let (files, bad) = damaged_journal(dir.path());
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| fs::metadata(f).unwrap().len())
        .collect();
    let mut seen = Vec::new();
    let error = Journal::open(dir.path(), PREFIX, small(), 0, |lsn, _| {
        seen.push(lsn);
        Ok(())
    })
    .unwrap_err();
    assert!(
        matches!(error, Error::Damaged { lsn, .. } if lsn == bad),
        "{error}"
    );
    assert_eq!(seen, (1..bad).collect::<Vec<_>>());
    let after: Vec<u64> = segments(dir.path())
        .iter()
        .map(|f| fs::metadata(f).unwrap().len())
        .collect();
    assert_eq!(after, sizes, "no segment cut or removed");
}

#[test]
fn damage_in_an_applied_record_does_not_hide_the_unapplied_records_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (files, bad) = damaged_journal(dir.path());
    // Applied past the damage, up to the middle of the third segment.
    let applied = first_lsn(&files[2]) + 1;
    assert!(applied > bad);
    let (mut journal, seen) = open(dir.path(), small(), applied);
    let lsns: Vec<u64> = seen.iter().map(|(l, _)| *l).collect();
    assert_eq!(lsns, (applied + 1..=40).collect::<Vec<_>>());
    assert_eq!(segments(dir.path()).len(), files.len(), "nothing removed");
    assert_eq!(journal.append(&[b"next"]).unwrap(), 41);
    // Applied only up to just before the damage: the records after it in its segment are
    // unreadable and not applied, so the next segment's start shows them missing.
    drop(journal);
    let error = Journal::open(dir.path(), PREFIX, small(), bad - 1, |_, _| Ok(())).unwrap_err();
    assert!(
        matches!(error, Error::Damaged { lsn, .. } if lsn == bad),
        "{error}"
    );
    let error = Journal::open(dir.path(), PREFIX, small(), bad, |_, _| Ok(())).unwrap_err();
    assert!(
        matches!(error, Error::Missing { expected, found } if expected == bad + 1 && found == first_lsn(&files[2])),
        "{error}"
    );
}

#[test]
fn damage_in_the_last_segment_cuts_it_there() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 40);
    let files = segments(dir.path());
    let last = files.last().unwrap();
    let first = first_lsn(last);
    let mut bytes = fs::read(last).unwrap();
    let first_len = 16 + payload(first).len();
    bytes[first_len + 20] ^= 0xff;
    fs::write(last, &bytes).unwrap();

    let (mut journal, seen) = open(dir.path(), small(), 0);
    let lsns: Vec<u64> = seen.iter().map(|(l, _)| *l).collect();
    assert_eq!(lsns, (1..=first).collect::<Vec<_>>());
    assert_eq!(segments(dir.path()).len(), files.len());
    assert_eq!(
        fs::metadata(last).unwrap().len(),
        first_len as u64,
        "cut before the damage"
    );
    assert_eq!(journal.append(&[b"after"]).unwrap(), first + 1);
}

#[test]
fn a_cut_inside_the_first_record_empties_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = open(dir.path(), Options::default(), 0);
    journal.append(&[b"only"]).unwrap();
    drop(journal);
    let file = segments(dir.path()).remove(0);
    let whole = fs::read(&file).unwrap();
    fs::write(&file, &whole[..10]).unwrap();
    let (mut journal, seen) = open(dir.path(), Options::default(), 0);
    assert!(seen.is_empty());
    assert_eq!(fs::metadata(&file).unwrap().len(), 0);
    assert_eq!(journal.append(&[b"again"]).unwrap(), 1);
}

#[test]
fn a_lower_record_limit_does_not_turn_written_records_into_damage() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = open(dir.path(), small(), 0);
    journal.append(&[&[1u8; 900], b"short"]).unwrap();
    drop(journal);
    let lower = Options {
        max_record: 100,
        ..small()
    };
    let (mut journal, seen) = open(dir.path(), lower, 0);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].1.len(), 900);
    assert!(matches!(
        journal.append(&[&[1u8; 101]]).unwrap_err(),
        Error::TooLarge { len: 101, max: 100 }
    ));
}

#[test]
fn other_files_in_the_directory_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "tasks-1.journal",
        "tasks-00000000000000000000.journal",
        "other-00000000000000000001.journal",
        "tasks-00000000000000000001.journal.bak",
        "notes.txt",
    ] {
        fs::write(dir.path().join(name), b"not a journal").unwrap();
    }
    let (mut journal, seen) = open(dir.path(), Options::default(), 0);
    assert!(seen.is_empty());
    assert_eq!(journal.append(&[b"one"]).unwrap(), 1);
    drop(journal);
    let (_, seen) = open(dir.path(), Options::default(), 0);
    assert_eq!(seen, vec![(1, b"one".to_vec())]);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 6);
}

#[test]
fn segments_rotate_and_forgetting_removes_only_applied_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = open(dir.path(), small(), 0);
    for i in 1..=100 {
        assert_eq!(journal.append(&[&payload(i)]).unwrap(), i);
    }
    let count = journal.segments();
    assert_eq!(count, segments(dir.path()).len());
    assert!(count > 10, "{count} segments");
    for file in segments(dir.path()) {
        // A segment is closed before it passes its size (single records are smaller).
        assert!(
            fs::metadata(&file).unwrap().len() <= 256,
            "{}",
            file.display()
        );
    }
    // Nothing applied: nothing to forget.
    assert_eq!(journal.forget(0).unwrap(), 0);
    // Half applied: the segments wholly before 51 go, and only those.
    let firsts: Vec<u64> = segments(dir.path()).iter().map(|f| first_lsn(f)).collect();
    let wholly_applied = firsts.windows(2).filter(|w| w[1] - 1 <= 50).count();
    let removed = journal.forget(50).unwrap();
    assert_eq!(removed, wholly_applied);
    assert!(removed > 0 && removed < count);
    assert_eq!(journal.segments(), count - removed);
    assert_eq!(segments(dir.path()).len(), count - removed);
    drop(journal);

    // Reopening past what was forgotten replays the rest, and nothing applied is missed.
    let (journal, seen) = open(dir.path(), small(), 50);
    let lsns: Vec<u64> = seen.iter().map(|(l, _)| *l).collect();
    assert_eq!(lsns, (51..=100).collect::<Vec<_>>());
    for (lsn, bytes) in &seen {
        assert_eq!(bytes, &payload(*lsn));
    }
    drop(journal);

    // All applied: every segment but the last goes, and the journal goes on after it.
    let (mut journal, _) = open(dir.path(), small(), 100);
    journal.forget(100).unwrap();
    assert_eq!(segments(dir.path()).len(), 1);
    assert_eq!(journal.append(&[b"next"]).unwrap(), 101);
}

#[test]
fn unapplied_records_gone_with_their_segment_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 40);
    let files = segments(dir.path());
    fs::remove_file(&files[1]).unwrap();
    let error = Journal::open(dir.path(), PREFIX, small(), 0, |_, _| Ok(())).unwrap_err();
    assert!(
        matches!(error, Error::Missing { expected, found } if expected == first_lsn(&files[1]) && found == first_lsn(&files[2])),
        "{error}"
    );
    // Applied up to just before the third segment: nothing missing.
    let applied = first_lsn(&files[2]) - 1;
    let (_, seen) = open(dir.path(), small(), applied);
    assert_eq!(seen.first().map(|(l, _)| *l), Some(applied + 1));
    // One record less applied: that one is missing.
    let error = Journal::open(dir.path(), PREFIX, small(), applied - 1, |_, _| Ok(())).unwrap_err();
    assert!(
        matches!(error, Error::Missing { expected, .. } if expected == applied),
        "{error}"
    );
    // The first segment removed: the records it held are missing too, unless applied.
    fs::remove_file(&files[0]).unwrap();
    let error = Journal::open(dir.path(), PREFIX, small(), 0, |_, _| Ok(())).unwrap_err();
    assert!(
        matches!(error, Error::Missing { expected: 1, .. }),
        "{error}"
    );
}

#[test]
fn an_applier_ahead_of_the_journal_never_sees_a_number_reused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = open(dir.path(), Options::default(), 0);
    journal.append(&[b"one", b"two"]).unwrap();
    drop(journal);
    // The applier had applied up to 5 (the journal's tail was lost at a power loss).
    let (mut journal, seen) = open(dir.path(), Options::default(), 5);
    assert!(seen.is_empty());
    assert_eq!(journal.append(&[b"six"]).unwrap(), 6);
    drop(journal);
    let (_, seen) = open(dir.path(), Options::default(), 5);
    assert_eq!(seen, vec![(6, b"six".to_vec())]);
}

#[test]
fn a_record_over_the_limit_is_refused_whole_and_a_refused_apply_stops_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = open(dir.path(), small(), 0);
    let long = vec![0u8; 1025];
    let error = journal.append(&[b"fits", &long]).unwrap_err();
    assert!(
        matches!(
            error,
            Error::TooLarge {
                len: 1025,
                max: 1024
            }
        ),
        "{error}"
    );
    assert_eq!(
        journal.append(&[b"fits"]).unwrap(),
        1,
        "nothing of the group was appended"
    );
    drop(journal);
    let error = Journal::open(dir.path(), PREFIX, small(), 0, |lsn, _| {
        Err(format!("no room for {lsn}"))
    })
    .unwrap_err();
    assert!(matches!(error, Error::Apply { lsn: 1, .. }), "{error}");
    // The journal is as it was: the record is replayed next time.
    let (_, seen) = open(dir.path(), small(), 0);
    assert_eq!(seen, vec![(1, b"fits".to_vec())]);
}
