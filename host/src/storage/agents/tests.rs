//! The registry's unit tests: versions, owners, search, deletion, owner-operation order, logs.

use super::owner_order::DELETED_MARK_KEPT_SECONDS;
use std::sync::Arc;

use super::*;
use crate::storage::db::Database;

/// An operation signed at `t` with sequence `t`.
fn at(t: u64) -> OwnerOrder {
    OwnerOrder {
        signed_at: t,
        sequence: t,
    }
}

/// A signing time later than every earlier one.
fn later() -> u64 {
    static CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_000);
    CLOCK.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn deploy(
    r: &SqliteAgents,
    name: &str,
    owner: &str,
    description: &str,
    tags: &[&str],
) -> Result<u32, RegistryError> {
    deploy_signed(r, name, owner, description, tags, at(later()), 1)
}

fn deploy_signed(
    r: &SqliteAgents,
    name: &str,
    owner: &str,
    description: &str,
    tags: &[&str],
    order: OwnerOrder,
    now: u64,
) -> Result<u32, RegistryError> {
    let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    r.deploy(&NewDeployment {
        name,
        owner_key: owner,
        description,
        tags: &tags,
        public: true,
        price: None,
        expires_at: None,
        charge: ChargeRule::Success,
        content_type: None,
        grants: &Default::default(),
        code_hash: hypervisor_protocol::sha256(format!("{name}-{}", description.len()).as_bytes()),
        kind: AgentKind::Handler,
        size: 10,
        limits: Limits::default(),
        order,
        now,
    })
}

#[test]
fn versions_owners_search_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let r = SqliteAgents::new(Arc::new(Database::open(dir.path()).unwrap()));
    assert_eq!(
        deploy(
            &r,
            "arxiv",
            "k1",
            "search arXiv papers offline",
            &["papers", "search"]
        )
        .unwrap(),
        1
    );
    assert_eq!(
        deploy(
            &r,
            "arxiv",
            "k1",
            "search arXiv research papers",
            &["papers"]
        )
        .unwrap(),
        2
    );
    assert!(matches!(
        deploy(&r, "arxiv", "k2", "mine now", &[]),
        Err(RegistryError::NotOwner(_))
    ));
    deploy(
        &r,
        "text-stats",
        "k2",
        "word and sentence statistics for text",
        &["text", "nlp"],
    )
    .unwrap();
    deploy(&r, "hello", "k2", "says hello over HTTP", &["demo"]).unwrap();

    let a = r.get("arxiv").unwrap().unwrap();
    assert_eq!(
        (a.latest.version, a.description.as_str()),
        (2, "search arXiv research papers")
    );
    assert_eq!(r.versions("arxiv").unwrap().len(), 2);
    assert_eq!(r.list().unwrap().len(), 3);

    let hits = r.search("research papers", 10).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].agent.name, "arxiv");
    let hits = r.search("statistics hello", 10).unwrap();
    assert_eq!(hits.len(), 2, "any word matches");
    // Operators and quotes in the query are just text.
    assert!(r.search("\"arxiv\" OR NEAR(", 10).unwrap().len() == 1);
    assert!(r.search("  --- ", 10).unwrap().is_empty());

    let hashes = r.delete("arxiv", Some(at(later())), 1).unwrap().unwrap();
    assert_eq!(hashes.len(), 2);
    assert!(r.get("arxiv").unwrap().is_none());
    assert!(r.search("papers", 10).unwrap().is_empty());
    assert!(r.versions("arxiv").unwrap().is_empty());
    assert_eq!(r.delete("arxiv", Some(at(later())), 1).unwrap(), None);
}

#[test]
fn owner_operations_signed_no_later_than_the_last_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let r = SqliteAgents::new(Arc::new(Database::open(dir.path()).unwrap()));
    let replayed =
        |res: Result<u32, RegistryError>| matches!(res, Err(RegistryError::Replayed { .. }));
    assert_eq!(
        deploy_signed(&r, "a", "k", "v1", &[], at(100), 100).unwrap(),
        1
    );
    assert_eq!(
        deploy_signed(&r, "a", "k", "v2", &[], at(110), 110).unwrap(),
        2
    );
    // The first deployment again (a replay, to roll back), or one signed at the same time.
    assert!(replayed(deploy_signed(
        &r,
        "a",
        "k",
        "v1",
        &[],
        at(100),
        111
    )));
    assert!(replayed(deploy_signed(
        &r,
        "a",
        "k",
        "v3",
        &[],
        at(110),
        111
    )));
    assert_eq!(r.get("a").unwrap().unwrap().description, "v2");
    assert_eq!(r.versions("a").unwrap().len(), 2);
    // Another key is still told the name is taken, whatever its signing time.
    assert!(matches!(
        deploy_signed(&r, "a", "k2", "mine", &[], at(90), 111),
        Err(RegistryError::NotOwner(_))
    ));
    // A deletion signed before the last deployment is refused and changes nothing.
    assert!(matches!(
        r.delete("a", Some(at(105)), 112),
        Err(RegistryError::Replayed { last: 110 })
    ));
    assert!(r.get("a").unwrap().is_some());
    assert!(r.delete("a", Some(at(120)), 120).unwrap().is_some());
    // The deleted agent cannot be brought back by replaying its deployment…
    assert!(replayed(deploy_signed(
        &r,
        "a",
        "k",
        "v2",
        &[],
        at(110),
        121
    )));
    assert!(r.get("a").unwrap().is_none());
    // … but a new deployment, signed later, makes it anew.
    assert_eq!(
        deploy_signed(&r, "a", "k", "v4", &[], at(130), 130).unwrap(),
        1
    );
    // An expiry (no signature) is not ordered and keeps the mark.
    assert!(r.delete("a", None, 131).unwrap().is_some());
    assert!(replayed(deploy_signed(
        &r,
        "a",
        "k",
        "v4",
        &[],
        at(130),
        132
    )));
    // Marks are per name.
    assert_eq!(
        deploy_signed(&r, "b", "k", "b", &[], at(50), 132).unwrap(),
        1
    );
    // The mark of a deleted agent is forgotten once every signature it could stop has
    // expired; that of a live agent is kept.
    let marks = |r: &SqliteAgents| -> i64 {
        r.db.lock()
            .query_row("SELECT count(*) FROM agent_owner_ops", [], |row| row.get(0))
            .unwrap()
    };
    assert_eq!(marks(&r), 2);
    let much_later = 130 + DELETED_MARK_KEPT_SECONDS + 1;
    assert_eq!(
        deploy_signed(&r, "c", "k", "c", &[], at(much_later), much_later).unwrap(),
        1
    );
    assert_eq!(marks(&r), 2, "a's mark pruned, b's and c's kept");
}

/// Two operations signed within the same second are ordered by their sequence numbers.
#[test]
fn operations_in_the_same_second_are_ordered_by_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let r = SqliteAgents::new(Arc::new(Database::open(dir.path()).unwrap()));
    let second = |sequence| OwnerOrder {
        signed_at: 500,
        sequence,
    };
    assert_eq!(
        deploy_signed(&r, "a", "k", "v1", &[], second(7), 500).unwrap(),
        1
    );
    assert_eq!(
        deploy_signed(&r, "a", "k", "v2", &[], second(8), 500).unwrap(),
        2
    );
    assert!(matches!(
        deploy_signed(&r, "a", "k", "v3", &[], second(8), 500),
        Err(RegistryError::Replayed { last: 8 })
    ));
    assert!(r.delete("a", Some(second(9)), 500).unwrap().is_some());
}

#[test]
fn logs_keep_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let r = SqliteAgents::new(Arc::new(Database::open(dir.path()).unwrap()));
    deploy(&r, "a", "k", "d", &[]).unwrap();
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
    deploy(&r, "typed", "k1", "typed fields", &[]).unwrap();
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
        deploy(&r, "typed", "k1", "typed fields", &[]).unwrap();
        db.lock()
            .execute("DELETE FROM agent_versions WHERE name = 'typed' AND version < (SELECT latest_version FROM agents WHERE name = 'typed')", [])
            .unwrap();
    }
}
