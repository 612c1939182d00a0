//! The registry's unit tests: versions, owners, search, deletion, owner-operation order, logs.

use super::owner_order::DELETED_MARK_KEPT_SECONDS;
use std::sync::Arc;

use super::Database;
use super::agents::SqliteAgents;
use crate::storage::agents::*;
use crate::storage::testing::{at, deploy};
use hypervisor_protocol::agents::AgentKind;
use hypervisor_protocol::wire::Limits;

/// A signing time later than every earlier one.
fn later() -> u64 {
    static CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_000);
    CLOCK.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn marks_of_deleted_agents_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let r = SqliteAgents::new(Arc::new(Database::open(dir.path()).unwrap()));
    deploy(&r, "a", "k", "v1", &[], at(100)).unwrap();
    deploy(&r, "b", "k", "b", &[], at(50)).unwrap();
    assert!(r.delete("a", Some(at(120)), 120).unwrap().is_some());
    let marks = |r: &SqliteAgents| -> i64 {
        r.db.lock()
            .query_row("SELECT count(*) FROM agent_owner_ops", [], |row| row.get(0))
            .unwrap()
    };
    assert_eq!(marks(&r), 2);
    let much_later = 120 + DELETED_MARK_KEPT_SECONDS + 1;
    assert_eq!(deploy(&r, "c", "k", "c", &[], at(much_later)).unwrap(), 1);
    assert_eq!(marks(&r), 2, "a's mark pruned, b's and c's kept");
}

#[test]
fn logs_keep_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let r = SqliteAgents::new(Arc::new(Database::open(dir.path()).unwrap()));
    deploy(&r, "a", "k", "d", &[], at(later())).unwrap();
    for i in 0..(LOGS_KEPT + 5) {
        r.append_log(
            "a",
            &LogEntry {
                execution_id: format!("e{i}"),
                at_ms: u64::from(i),
                sealed: vec![1],
            },
        )
        .unwrap();
    }
    let logs = r.logs("a", 1000).unwrap();
    assert_eq!(logs.len(), LOGS_KEPT as usize);
    assert_eq!(logs[0].execution_id, "e5");
    assert_eq!(
        r.logs("a", 2).unwrap()[1].execution_id,
        format!("e{}", LOGS_KEPT + 4)
    );
}

#[test]
fn a_corrupt_stored_version_is_an_error_not_a_default() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::open(dir.path()).unwrap());
    let r = SqliteAgents::new(db.clone());
    deploy(&r, "typed", "k1", "typed fields", &[], at(later())).unwrap();
    let agent = r.get("typed").unwrap().unwrap();
    assert_eq!(agent.latest.kind, AgentKind::Handler);
    assert_eq!(agent.latest.limits, Limits::default());
    let wire = serde_json::to_value(&agent).unwrap();
    assert_eq!(wire["latest"]["kind"], "handler");
    assert_eq!(
        wire["latest"]["limits"], "{}",
        "limits stay a JSON text on the wire"
    );
    assert_eq!(
        wire["latest"]["code_hash"],
        hex::encode(agent.latest.code_hash),
        "the code hash stays hex on the wire"
    );
    for (column, value) in [
        ("limits", "not json"),
        ("kind", "daemon"),
        ("code_hash", "abcd"),
    ] {
        db.lock()
            .execute(
                &format!("UPDATE agent_versions SET {column} = ?1 WHERE name = 'typed'"),
                [value],
            )
            .unwrap();
        assert!(
            r.get("typed").is_err(),
            "a corrupt {column} must not read back"
        );
        deploy(&r, "typed", "k1", "typed fields", &[], at(later())).unwrap();
        db.lock()
            .execute("DELETE FROM agent_versions WHERE name = 'typed' AND version < (SELECT latest_version FROM agents WHERE name = 'typed')", [])
            .unwrap();
    }
}
