//! One storage test suite, run against every backend: SQLite (always) and PostgreSQL (a
//! throwaway server from the installed binaries; skipped, saying so, only where there are
//! none). Each check gets fresh stores and asserts through the stores' interfaces only.

use std::sync::Arc;

use hypervisor_protocol::a2a::TaskState;
use hypervisor_protocol::agents::AgentKind;
use hypervisor_protocol::grants::CallRecord;
use hypervisor_protocol::wallet::SpendingPolicy;

use super::StorageError;
use super::Stores;
use super::agent_config::{ConfigError, ConfigStore};
use super::agents::{AgentCatalog, LOGS_KEPT, LogEntry, OwnerOrder, RegistryError};
use super::payments::NewPayment;
use super::records::{ExecutionRecord, Reader, Records};
use super::state::{StateLimits, StateStore};
use super::tasks::{
    QuotaExceeded, SealedTask, StoredTask, TaskBackend, TaskFilter, TaskQuota, TaskStore,
};
use super::testing::{at, deploy, task};
use super::wallets::{NewSpend, SpendError, Wallets};

/// Fresh stores for one check (and whatever must live as long as they do).
pub type Factory<'a> = &'a dyn Fn(&str) -> (Stores, Box<dyn std::any::Any>);

/// One check: its name and body.
type Check = (&'static str, fn(&Stores));

/// Runs every check on stores from `fresh`.
pub fn run_all(fresh: Factory<'_>) {
    let checks: &[Check] = &[
        (
            "catalog_versions_owners_search_delete",
            catalog_versions_owners_search_delete,
        ),
        (
            "catalog_search_ranks_name_then_tags_then_description",
            catalog_search_ranking,
        ),
        ("catalog_owner_order", catalog_owner_order),
        ("catalog_keeps_tool_schemas", catalog_schemas),
        ("records_logs_and_calls", records_logs_and_calls),
        ("wallets_budgets_hold_under_concurrency", wallets_budgets),
        (
            "sign_in_nonces_once_and_windows_only_grow",
            sign_in_nonces_and_windows,
        ),
        ("tasks_round_trip_and_compare_and_set", tasks_round_trip),
        ("tasks_stay_within_their_quota", tasks_quota),
        (
            "tasks_committed_with_the_records_keep_their_checks",
            tasks_committed,
        ),
        (
            "a_task_refused_by_a_bound_freed_meanwhile_says_so",
            tasks_freed_meanwhile,
        ),
        (
            "payments_once_under_concurrency_and_adoption",
            payments_once,
        ),
        (
            "payment_identifiers_unique_with_their_answers",
            payment_identifiers,
        ),
        (
            "payments_recorded_settled_once_after_their_run",
            payments_recorded_after_run,
        ),
        ("code_store", code_store),
        (
            "state_counters_swaps_quotas_export_and_wipe",
            state_counters_quotas,
        ),
        ("config_in_order_and_sealed", config_in_order),
    ];
    for (name, check) in checks {
        let (stores, guard) = fresh(name);
        eprintln!("storage conformance ({}): {name}", stores.kind.name());
        check(&stores);
        drop(stores);
        drop(guard);
    }
}

/// A deployment's declared schemas are read back with the agent, and a redeployment without
/// them clears them.
fn catalog_schemas(s: &Stores) {
    use hypervisor_protocol::agents::{ChargeRule, ToolSchemas};
    let r = s.catalog.as_ref();
    let schemas = ToolSchemas {
        input: Some(serde_json::json!({"type": "object", "required": ["text"]})),
        output: None,
    };
    let json = serde_json::to_string(&schemas).unwrap();
    let grants = Default::default();
    let deployment = |declared: Option<&'static str>, order| super::agents::NewDeployment {
        name: "stats",
        owner_key: "k1",
        description: "",
        tags: &[],
        public: true,
        price: None,
        expires_at: None,
        charge: ChargeRule::Success,
        content_type: None,
        grants: &grants,
        schemas: declared,
        tariff: None,
        code_hash: [7; 32],
        kind: AgentKind::Handler,
        world: AgentKind::Handler.world(),
        size: 1,
        limits: Default::default(),
        order,
        now: 1,
    };
    let json: &'static str = Box::leak(json.into_boxed_str());
    r.deploy(&deployment(Some(json), at(1))).unwrap();
    let agent = r.get("stats").unwrap().unwrap();
    assert_eq!(agent.schemas, Some(schemas));
    r.deploy(&deployment(None, at(2))).unwrap();
    assert_eq!(r.get("stats").unwrap().unwrap().schemas, None);
}

/// The catalog's agents ranked for `text` by a search index built from it, after checking that
/// the catalog reads every hit back.
fn search(r: &dyn AgentCatalog, text: &str, k: usize) -> Vec<String> {
    let index = super::search::SearchIndex::load(r).unwrap();
    let names: Vec<String> = index.top(text, k).into_iter().map(|(n, _)| n).collect();
    assert_eq!(r.get_many(&names).unwrap().len(), names.len());
    names
}

fn catalog_versions_owners_search_delete(s: &Stores) {
    let r = s.catalog.as_ref();
    let papers = ["papers", "search"];
    assert_eq!(
        deploy(
            r,
            "arxiv",
            "k1",
            "search arXiv papers offline",
            &papers,
            at(1)
        )
        .unwrap(),
        1
    );
    assert_eq!(
        deploy(
            r,
            "arxiv",
            "k1",
            "search arXiv research papers",
            &["papers"],
            at(2)
        )
        .unwrap(),
        2
    );
    assert!(matches!(
        deploy(r, "arxiv", "k2", "mine now", &[], at(3)),
        Err(RegistryError::NotOwner(_))
    ));
    let stats = ["text", "nlp"];
    deploy(
        r,
        "text-stats",
        "k2",
        "word and sentence statistics for text",
        &stats,
        at(4),
    )
    .unwrap();
    deploy(r, "hello", "k2", "says hello over HTTP", &["demo"], at(5)).unwrap();
    let a = r.get("arxiv").unwrap().unwrap();
    assert_eq!(
        (a.latest.version, a.description.as_str()),
        (2, "search arXiv research papers")
    );
    assert_eq!(a.latest.kind, AgentKind::Handler);
    assert_eq!(r.versions("arxiv").unwrap().len(), 2);
    assert_eq!(r.list().unwrap().len(), 3);
    let first = r.page("", 2).unwrap();
    assert_eq!(
        first.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["arxiv", "hello"]
    );
    assert_eq!(r.page("hello", 2).unwrap()[0].name, "text-stats");
    assert_eq!(r.documents("", 10).unwrap().len(), 3);
    assert_eq!(r.count().unwrap(), 3);
    let hits = search(r, "research papers", 10);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0], "arxiv");
    assert_eq!(
        search(r, "statistics hello", 10).len(),
        2,
        "any word matches"
    );
    // Operators and quotes in the query are just text.
    assert_eq!(search(r, "\"arxiv\" OR NEAR(", 10).len(), 1);
    assert!(search(r, "  --- ", 10).is_empty());
    assert!(search(r, "a' | !b & (c:*", 10).is_empty());
    assert!(r.code_in_use(&a.latest.code_hash).unwrap());
    let hashes = r.delete("arxiv", Some(at(6)), 6).unwrap().unwrap();
    assert_eq!(hashes.len(), 2);
    assert!(!r.code_in_use(&a.latest.code_hash).unwrap());
    assert!(r.get("arxiv").unwrap().is_none());
    assert!(search(r, "papers", 10).is_empty());
    assert!(r.versions("arxiv").unwrap().is_empty());
    assert_eq!(r.delete("arxiv", Some(at(7)), 7).unwrap(), None);
}

fn catalog_search_ranking(s: &Stores) {
    let r = s.catalog.as_ref();
    deploy(
        r,
        "weather",
        "k",
        "forecasts for any city",
        &["climate"],
        at(1),
    )
    .unwrap();
    deploy(
        r,
        "forecaster",
        "k",
        "reads tea leaves about the weather",
        &["fun"],
        at(2),
    )
    .unwrap();
    deploy(
        r,
        "almanac",
        "k",
        "dates and tides",
        &["weather", "sea"],
        at(3),
    )
    .unwrap();
    let names = search(r, "weather", 10);
    assert_eq!(
        names,
        ["weather", "almanac", "forecaster"],
        "name, then tags, then description"
    );
    assert_eq!(search(r, "weather", 2).len(), 2, "the limit holds");
}

fn catalog_owner_order(s: &Stores) {
    let r = s.catalog.as_ref();
    let replayed =
        |res: Result<u32, RegistryError>| matches!(res, Err(RegistryError::Replayed { .. }));
    assert_eq!(deploy(r, "a", "k", "v1", &[], at(100)).unwrap(), 1);
    assert_eq!(deploy(r, "a", "k", "v2", &[], at(110)).unwrap(), 2);
    assert!(replayed(deploy(r, "a", "k", "v1", &[], at(100))));
    assert!(replayed(deploy(r, "a", "k", "v3", &[], at(110))));
    assert_eq!(r.get("a").unwrap().unwrap().description, "v2");
    assert!(matches!(
        r.delete("a", Some(at(105)), 112),
        Err(RegistryError::Replayed { last: 110 })
    ));
    assert!(r.delete("a", Some(at(120)), 120).unwrap().is_some());
    // A deleted agent cannot be brought back by replaying its deployment…
    assert!(replayed(deploy(r, "a", "k", "v2", &[], at(110))));
    // … but a deployment signed later makes it anew.
    assert_eq!(deploy(r, "a", "k", "v4", &[], at(130)).unwrap(), 1);
    // Operations in the same second are ordered by their sequence.
    let second = |sequence| OwnerOrder {
        signed_at: 500,
        sequence,
    };
    assert_eq!(deploy(r, "b", "k", "v1", &[], second(7)).unwrap(), 1);
    assert!(matches!(
        deploy(r, "b", "k", "v2", &[], second(7)),
        Err(RegistryError::Replayed { last: 7 })
    ));
    let grants = hypervisor_protocol::grants::Grants::default();
    assert!(r.set_grants("b", &grants, second(8), 500).unwrap());
    assert!(r.set_grants("b", &grants, second(8), 500).is_err());
    assert!(!r.set_grants("nobody", &grants, second(9), 500).unwrap());
}

fn record(id: &str, agent: Option<&str>, caller: &str, started_ms: u64) -> ExecutionRecord {
    ExecutionRecord {
        id: id.into(),
        route: "/test/execute/wasm".into(),
        agent: agent.map(str::to_string),
        agent_version: agent.map(|_| 1),
        code_hash: "ab".repeat(32),
        caller_hash: caller.into(),
        started_ms,
        duration_us: 250,
        status: "exited".into(),
        exit_code: Some(0),
        commitment: Some("ef".repeat(32)),
        payment: None,
    }
}

fn records_logs_and_calls(s: &Stores) {
    deploy(s.catalog.as_ref(), "a", "owner", "d", &[], at(1)).unwrap();
    let records = Records::open(s.records.clone()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..20u64 {
            records
                .insert(record(&format!("r{i:02}"), None, "alice", 1000 + i))
                .await
                .unwrap();
        }
        records.insert_later(record("agent-run", Some("a"), "", 2000));
        for i in 0..(LOGS_KEPT + 5) {
            records.append_log_later(
                "a",
                LogEntry {
                    execution_id: format!("e{i}"),
                    at_ms: u64::from(i),
                    sealed: vec![1],
                },
            );
        }
        // A log of an agent that does not exist is skipped; the batch still commits.
        records.append_log_later(
            "gone",
            LogEntry {
                execution_id: "x".into(),
                at_ms: 0,
                sealed: vec![1],
            },
        );
        let call = |run: &str, callee: &str, at_ms| CallRecord {
            caller_execution: run.into(),
            caller: "a".into(),
            callee: callee.into(),
            path: "/invoke".into(),
            status: 200,
            callee_execution: Some("x".into()),
            response_sha256: Some("ab".into()),
            settlement: Some(serde_json::json!({"transaction": "0x1"})),
            at_ms,
            duration_us: 5,
        };
        records.insert_call_later(call("r1", "seller", 1));
        records.insert_call_later(call("r1", "other", 2));
        records.insert_call_later(call("r2", "seller", 3));
        records.flush().await.unwrap();
        let op = Reader::Operator;
        assert_eq!(
            records.get("r07", &op).await.unwrap(),
            Some(record("r07", None, "alice", 1007))
        );
        assert_eq!(records.get("nope", &op).await.unwrap(), None);
        // Pages by (time, id) cursor.
        let first = records.list(1000, "", 5, &op).await.unwrap();
        assert_eq!(first.len(), 5);
        let last = first.last().unwrap();
        let next = records
            .list(last.started_ms, &last.id, 5, &op)
            .await
            .unwrap();
        assert_eq!(next[0].id, "r05");
        // Visibility: alice sees hers; the owner of `a` sees its anonymous run; bob nothing.
        let key = |caller: &str, owner: &str| Reader::Key {
            caller_hash: caller.into(),
            owner_key: owner.into(),
        };
        assert_eq!(
            records
                .list(0, "", 100, &key("alice", "x"))
                .await
                .unwrap()
                .len(),
            20
        );
        let owner_sees = records.list(0, "", 100, &key("zz", "owner")).await.unwrap();
        assert_eq!(owner_sees.len(), 1);
        assert!(
            records
                .get("r01", &key("bob", "x"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            records
                .get("agent-run", &key("", "x"))
                .await
                .unwrap()
                .is_none()
        );
        // A deferred write is committed no later than an awaited one submitted after it (an
        // agent's calls before its run's record), whichever thread commits: read from the
        // backend itself, without the flush that reads through `Records` make first.
        records.insert_later(record("deferred-first", None, "carol", 3000));
        records
            .insert(record("awaited-next", None, "carol", 3001))
            .await
            .unwrap();
        assert!(s.records.get("awaited-next", &op).unwrap().is_some());
        assert!(s.records.get("deferred-first", &op).unwrap().is_some());
    });
    let logs = s.catalog.logs("a", 1000).unwrap();
    assert_eq!(logs.len(), LOGS_KEPT as usize);
    assert_eq!(logs[0].execution_id, "e5");
    assert!(s.catalog.logs("gone", 10).unwrap().is_empty());
    let newest = s.calls.by_caller("a", 2).unwrap();
    assert_eq!(newest.len(), 2);
    assert_eq!(newest[0].caller_execution, "r2");
    let run = s.calls.by_execution("r1").unwrap();
    assert_eq!(
        run.iter().map(|c| c.callee.as_str()).collect::<Vec<_>>(),
        ["seller", "other"]
    );
    assert_eq!(
        run[0].settlement,
        Some(serde_json::json!({"transaction": "0x1"}))
    );
}

fn wallets_budgets(s: &Stores) {
    let policy = SpendingPolicy {
        networks: vec!["eip155:84532".into()],
        assets: vec!["0xa".into()],
        max_per_call: "10".into(),
        max_per_day: "1000".into(),
        max_total: "35".into(),
        payees: None,
    };
    let wallets = Arc::new(Wallets::new(s.wallets.clone(), s.key.clone()));
    wallets
        .attach("buyer", "0xAB", &[7u8; 32], &policy, None, 1)
        .unwrap();
    let stored = wallets.get("buyer").unwrap().unwrap();
    assert_eq!(stored.address, "0xab");
    assert_eq!(&*wallets.open_key(&stored).unwrap(), &[7u8; 32]);
    // Eight spends of 10 at once against a total of 35: exactly three pass.
    let passed: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (wallets, policy) = (wallets.clone(), policy.clone());
                scope.spawn(move || {
                    let run = format!("run{i}");
                    wallets
                        .reserve(
                            &policy,
                            &NewSpend {
                                agent: "buyer",
                                caller_execution: &run,
                                callee: "seller",
                                pay_to: "0xP",
                                asset: "0xa",
                                network: "eip155:84532",
                                amount: 10,
                                at_ms: 5_000,
                            },
                        )
                        .map(|id| wallets.update(id, "signed", Some("0xn"), None).unwrap())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join().unwrap() {
                Ok(()) => 1,
                Err(SpendError::OverTotal { .. }) => 0,
                Err(e) => panic!("unexpected {e}"),
            })
            .sum()
    });
    assert_eq!(passed, 3);
    assert_eq!(wallets.spent("buyer", 6_000).unwrap(), (30, 30));
    // A metered callee settled 4 of a spend's 10: the budgets count 4; never raised again.
    let id = wallets
        .reserve(
            &SpendingPolicy {
                max_total: "1000".into(),
                ..policy.clone()
            },
            &NewSpend {
                agent: "buyer",
                caller_execution: "metered",
                callee: "meter",
                pay_to: "0xP",
                asset: "0xa",
                network: "eip155:84532",
                amount: 10,
                at_ms: 5_000,
            },
        )
        .unwrap();
    assert_eq!(wallets.spent("buyer", 6_000).unwrap(), (40, 40));
    wallets.settled_amount(id, 4).unwrap();
    wallets.settled_amount(id, 9).unwrap();
    assert_eq!(wallets.spent("buyer", 6_000).unwrap(), (34, 34));
    wallets.detach("buyer").unwrap();
    assert!(wallets.get("buyer").unwrap().is_none());
}

fn sign_in_nonces_and_windows(s: &Stores) {
    let store = s.sign_in.clone();
    // Eight replicas' requests with one signed sign-in at once: exactly one is taken.
    let taken: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                scope.spawn(move || store.use_nonce("n0nce0001", 10_000, 1_000).unwrap())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| usize::from(h.join().unwrap()))
            .sum()
    });
    assert_eq!(taken, 1);
    assert!(!store.use_nonce("n0nce0001", 10_000, 9_000).unwrap());
    assert!(store.use_nonce("n0nce0002", 10_000, 9_000).unwrap());
    // Forgotten only before the bound the caller gives.
    assert!(!store.use_nonce("n0nce0001", 30_000, 10_000).unwrap());
    assert!(store.use_nonce("n0nce0001", 30_000, 20_000).unwrap());

    assert_eq!(store.last_payment("a", "o", "0xab").unwrap(), None);
    store
        .record_payment("a", "o", "0xab", 5_000, 1_000)
        .unwrap();
    assert_eq!(store.last_payment("a", "o", "0xab").unwrap(), Some(5_000));
    // The latest payment is kept, whatever the order the records arrive in.
    store
        .record_payment("a", "o", "0xab", 9_000, 2_000)
        .unwrap();
    store
        .record_payment("a", "o", "0xab", 3_000, 2_000)
        .unwrap();
    assert_eq!(store.last_payment("a", "o", "0xab").unwrap(), Some(9_000));
    // Another agent, owner or wallet has paid nothing.
    assert_eq!(store.last_payment("b", "o", "0xab").unwrap(), None);
    assert_eq!(store.last_payment("a", "p", "0xab").unwrap(), None);
    assert_eq!(store.last_payment("a", "o", "0xcd").unwrap(), None);
    // Payments before the bound are forgotten when another is recorded.
    store
        .record_payment("c", "o", "0xab", 50_000, 10_000)
        .unwrap();
    assert_eq!(store.last_payment("a", "o", "0xab").unwrap(), None);
}

/// A quota no round-trip check comes near.
const QUOTA: TaskQuota = TaskQuota {
    per_caller: 1000,
    anonymous_per_agent: 1000,
    total_bytes: 1 << 30,
};

fn tasks_quota(s: &Stores) {
    let quota = TaskQuota {
        per_caller: 3,
        anonymous_per_agent: 2,
        total_bytes: 1 << 30,
    };
    let store = TaskStore::new(s.tasks.clone(), s.key.clone(), "run-a".into(), quota);
    for (i, id) in ["a1", "a2", "a3"].into_iter().enumerate() {
        store.admit("alice", "echo", 0).unwrap().unwrap();
        store
            .insert(&task(id, "alice", TaskState::Completed, i as u64))
            .unwrap()
            .unwrap();
    }
    // A fourth for alice, on any agent and in any state, is refused, before and when stored;
    // bob is not alice.
    assert_eq!(
        store.admit("alice", "other", 0).unwrap(),
        Err(QuotaExceeded::Caller(3))
    );
    assert_eq!(
        store
            .insert(&task("a4", "alice", TaskState::Working, 9))
            .unwrap(),
        Err(QuotaExceeded::Caller(3))
    );
    assert!(store.get("a4").unwrap().is_none());
    store
        .insert(&task("b1", "bob", TaskState::Working, 9))
        .unwrap()
        .unwrap();
    // Anonymous callers share one bound per agent.
    for id in ["n1", "n2"] {
        store
            .insert(&task(id, "", TaskState::Working, 9))
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        store
            .insert(&task("n3", "", TaskState::Working, 9))
            .unwrap(),
        Err(QuotaExceeded::Anonymous(2))
    );
    let mut elsewhere = task("n4", "", TaskState::Working, 9);
    elsewhere.agent = "another".into();
    store.insert(&elsewhere).unwrap().unwrap();
    // Expired tasks free the caller's bound.
    assert_eq!(store.reap(3).unwrap(), 3);
    store.admit("alice", "echo", 0).unwrap().unwrap();

    // The byte budget: what is stored now, plus one more task, and not a byte more.
    let sealed = |id: &str| {
        let row = task(id, "carol", TaskState::Working, 9);
        (row.clone(), {
            let probe = TaskStore::new(s.tasks.clone(), s.key.clone(), "probe".into(), QUOTA);
            probe.insert(&row).unwrap().unwrap();
            let (_, after) = s.tasks.usage("carol", "echo").unwrap();
            after
        })
    };
    let (_, with_c1) = sealed("c1");
    let (_, with_c2) = sealed("c2");
    let one = with_c2 - with_c1;
    let tight = TaskStore::new(
        s.tasks.clone(),
        s.key.clone(),
        "run-a".into(),
        TaskQuota {
            total_bytes: with_c2 + one,
            ..QUOTA
        },
    );
    tight
        .insert(&task("c3", "carol", TaskState::Working, 9))
        .unwrap()
        .unwrap();
    assert_eq!(
        tight
            .insert(&task("c4", "carol", TaskState::Working, 9))
            .unwrap(),
        Err(QuotaExceeded::Bytes(with_c2 + one))
    );
    assert_eq!(
        tight.admit("dave", "echo", 0).unwrap(),
        Err(QuotaExceeded::Bytes(with_c2 + one))
    );

    // The usage the checks read follows every change (a task that grows, tasks reaped) and is
    // what the stored rows add up to.
    let all = ["b1", "n1", "n2", "n4", "c1", "c2", "c3"];
    let recount = || -> u64 {
        all.iter()
            .filter_map(|id| s.tasks.get(id).unwrap())
            .map(|t| (t.task.len() + t.pending.map_or(0, |p| p.len())) as u64)
            .sum()
    };
    assert_eq!(s.tasks.usage("carol", "echo").unwrap(), (3, recount()));
    let mut grown = task("c3", "carol", TaskState::Working, 10);
    grown.task.metadata =
        Some(serde_json::from_value(serde_json::json!({"pad": "x".repeat(1000)})).unwrap());
    assert!(tight.update(&grown).unwrap());
    let (_, bytes) = s.tasks.usage("carol", "echo").unwrap();
    assert!(bytes > with_c2 + one + 1000, "{bytes}");
    assert_eq!(s.tasks.usage("carol", "echo").unwrap(), (3, recount()));
    assert_eq!(s.tasks.usage("", "echo").unwrap(), (2, recount()));
    assert_eq!(s.tasks.usage("", "another").unwrap(), (1, recount()));
    for id in ["c1", "c2", "c3"] {
        let mut done = task(id, "carol", TaskState::Completed, 20);
        done.task.metadata = grown.task.metadata.clone();
        assert!(tight.update(&done).unwrap());
    }
    assert_eq!(tight.reap(30).unwrap(), 3);
    assert_eq!(s.tasks.usage("carol", "echo").unwrap(), (0, recount()));
    assert!(recount() > 0);
}

/// A task backend whose refused inserts are followed at once by the reaper's deletion of every
/// finished task: the race between a refusal and the read that names its bound, made certain.
struct ReapsAfterARefusal(Arc<dyn TaskBackend>);

impl TaskBackend for ReapsAfterARefusal {
    fn insert(&self, row: &SealedTask, quota: &TaskQuota) -> Result<bool, StorageError> {
        let inserted = self.0.insert(row, quota)?;
        if !inserted {
            self.0.reap(u64::MAX)?;
        }
        Ok(inserted)
    }
    fn usage(&self, caller: &str, agent: &str) -> Result<(u64, u64), StorageError> {
        self.0.usage(caller, agent)
    }
    fn get(&self, id: &str) -> Result<Option<StoredTask>, StorageError> {
        self.0.get(id)
    }
    fn replace(&self, row: &SealedTask, expected: Option<&str>) -> Result<bool, StorageError> {
        self.0.replace(row, expected)
    }
    fn list(
        &self,
        filter: &TaskFilter<'_>,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<StoredTask>, u64), StorageError> {
        self.0.list(filter, offset, limit)
    }
    fn unfinished(&self, owner: &str, alive_since_ms: u64) -> Result<Vec<String>, StorageError> {
        self.0.unfinished(owner, alive_since_ms)
    }
    fn reap(&self, before_ms: u64) -> Result<usize, StorageError> {
        self.0.reap(before_ms)
    }
}

/// A task refused by a bound that was freed before the refusal was explained is refused as
/// such, not as the byte budget (which it is far from).
fn tasks_freed_meanwhile(s: &Stores) {
    let quota = TaskQuota {
        per_caller: 1,
        ..QUOTA
    };
    let racing = Arc::new(ReapsAfterARefusal(s.tasks.clone()));
    let store = TaskStore::new(racing, s.key.clone(), "run-a".into(), quota);
    store
        .insert(&task("f1", "frank", TaskState::Completed, 1))
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .insert(&task("f2", "frank", TaskState::Working, 2))
            .unwrap(),
        Err(QuotaExceeded::Freed)
    );
    assert!(s.tasks.get("f1").unwrap().is_none(), "reaped meanwhile");
    assert!(s.tasks.get("f2").unwrap().is_none(), "refused");
    // With the room now free, the same task is stored.
    store
        .insert(&task("f2", "frank", TaskState::Working, 2))
        .unwrap()
        .unwrap();
}

/// Task writes through the execution records' group-commit writer (as the A2A front makes
/// them): each keeps its own quota check or state check, also when several share one commit.
fn tasks_committed(s: &Stores) {
    let records = Arc::new(Records::open(s.records.clone()).unwrap());
    let quota = TaskQuota {
        per_caller: 2,
        anonymous_per_agent: 1,
        total_bytes: 1 << 30,
    };
    let store = TaskStore::new(s.tasks.clone(), s.key.clone(), "run-a".into(), quota)
        .with_committer(records.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let working = |id: &str, at| task(id, "gina", TaskState::Working, at);
        store.create(&working("g1", 1)).await.unwrap().unwrap();
        store.create(&working("g2", 1)).await.unwrap().unwrap();
        assert_eq!(
            store.create(&working("g3", 1)).await.unwrap(),
            Err(QuotaExceeded::Caller(2))
        );
        assert!(store.get("g3").unwrap().is_none());
        assert_eq!(
            store.get("g2").unwrap().unwrap().task.status.state,
            TaskState::Working
        );
        // Compare and set: from working once; a finished task never changes again.
        let waiting = task("g1", "gina", TaskState::InputRequired, 2);
        assert!(
            store
                .change(&waiting, Some(TaskState::Working))
                .await
                .unwrap()
        );
        assert!(
            !store
                .change(&waiting, Some(TaskState::Working))
                .await
                .unwrap()
        );
        let done = task("g1", "gina", TaskState::Completed, 3);
        assert!(store.change(&done, None).await.unwrap());
        assert!(!store.change(&working("g1", 4), None).await.unwrap());
        assert_eq!(
            store.get("g1").unwrap().unwrap().task.status.state,
            TaskState::Completed
        );
        // Eight anonymous tasks at once, with records beside them: the commits they share
        // still give each its own outcome, and the bound of one holds.
        let attempts = (0..8).map(|i| {
            let (store, records) = (store.clone(), records.clone());
            tokio::spawn(async move {
                records
                    .insert(record(&format!("beside-{i}"), None, "", 5000 + i))
                    .await
                    .unwrap();
                store
                    .create(&task(&format!("anon-{i}"), "", TaskState::Working, 5))
                    .await
                    .unwrap()
            })
        });
        let outcomes: Vec<_> = futures_util::future::join_all(attempts)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            outcomes.iter().filter(|o| o.is_ok()).count(),
            1,
            "{outcomes:?}"
        );
        assert!(
            outcomes
                .iter()
                .filter_map(|o| o.err())
                .all(|e| e == QuotaExceeded::Anonymous(1))
        );
        assert_eq!(s.tasks.usage("", "echo").unwrap().0, 1);
    });
}

fn tasks_round_trip(s: &Stores) {
    let store = TaskStore::new(s.tasks.clone(), s.key.clone(), "run-a".into(), QUOTA);
    let other = TaskStore::new(s.tasks.clone(), s.key.clone(), "run-b".into(), QUOTA);
    store
        .insert(&task("a", "alice", TaskState::Working, 1))
        .unwrap()
        .unwrap();
    store
        .insert(&task("b", "alice", TaskState::Completed, 2))
        .unwrap()
        .unwrap();
    store
        .insert(&task("c", "bob", TaskState::Working, 3))
        .unwrap()
        .unwrap();
    assert!(
        store
            .insert(&task("a", "alice", TaskState::Working, 1))
            .is_err()
    );
    assert_eq!(
        store.get("a").unwrap().unwrap(),
        task("a", "alice", TaskState::Working, 1)
    );
    let filter = super::tasks::TaskFilter {
        caller: "alice",
        ..Default::default()
    };
    let (tasks, total) = store.list(&filter, 0, 10).unwrap();
    assert_eq!((total, tasks[0].task.id.as_str()), (2, "b"));
    let working = super::tasks::TaskFilter {
        state: Some(TaskState::Working),
        ..filter
    };
    assert_eq!(store.list(&working, 0, 10).unwrap().1, 1);
    // Tasks written by run-a are unfinished to another run once run-a is dead.
    let mut ids = other.unfinished(u64::MAX).unwrap();
    ids.sort();
    assert_eq!(ids, ["a", "c"]);
    assert!(
        store.unfinished(u64::MAX).unwrap().is_empty(),
        "not to its own run"
    );
    // Compare and set: of many continuations of one waiting task, exactly one wins.
    assert!(
        store
            .update(&task("a", "alice", TaskState::InputRequired, 4))
            .unwrap()
    );
    let wins: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = other.clone();
                scope.spawn(move || {
                    let row = task("a", "alice", TaskState::Working, 10 + i);
                    usize::from(store.update_from(&row, TaskState::InputRequired).unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(wins, 1);
    assert!(
        store
            .update(&task("a", "alice", TaskState::Canceled, 20))
            .unwrap()
    );
    assert!(
        !store
            .update(&task("a", "alice", TaskState::Completed, 21))
            .unwrap()
    );
    assert_eq!(
        store.get("a").unwrap().unwrap().task.status.state,
        TaskState::Canceled
    );
    assert_eq!(
        store.reap(3).unwrap(),
        1,
        "only finished tasks older than the cut"
    );
    assert!(store.get("b").unwrap().is_none());
}

/// Waits for a ledger call (the ledger's futures run on any executor).
fn wait<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(call)
}

/// Payment identifiers: unique across payments (eight threads reserving eight payments under
/// one identifier: one wins), freed with a released reservation, answers kept once, forgotten
/// after their time.
fn payment_identifiers(s: &Stores) {
    use super::payments::{Identifier, KeptAnswer};
    let ledger = s.payments.as_ref();
    let payment =
        |key: &'static str, id: Option<&'static str>, fingerprint: &'static [u8]| NewPayment {
            replay_key: key,
            payer: "0xb",
            amount: "10",
            network: "eip155:1",
            route: "/x402_execute/test/wasm",
            owner: "run-a",
            sealed: b"",
            at: 1,
            identifier: id.map(|id| Identifier { id, fingerprint }),
        };
    assert_eq!(
        wait(ledger.identified("pay_0123456789abcdef")).unwrap(),
        None
    );
    // Eight different payments under one identifier, at once: exactly one is recorded.
    let keys: Vec<String> = (0..8).map(|i| format!("id-{i}")).collect();
    let won: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = keys
            .iter()
            .map(|key| {
                let ledger = s.payments.clone();
                scope.spawn(move || {
                    let p = NewPayment {
                        replay_key: key,
                        ..payment("", Some("pay_0123456789abcdef"), b"fp")
                    };
                    wait(ledger.reserve(&p)).unwrap().then(|| key.clone())
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(won.len(), 1, "{won:?}");
    let found = wait(ledger.identified("pay_0123456789abcdef"))
        .unwrap()
        .unwrap();
    assert_eq!(found.replay_key, won[0]);
    assert_eq!(found.fingerprint, b"fp");
    assert_eq!(found.answer, KeptAnswer::Pending);
    // The same replay key under another identifier is still a replay.
    let replay = NewPayment {
        replay_key: &won[0],
        ..payment("", Some("pay_another-identifier"), b"fp")
    };
    assert!(!wait(ledger.reserve(&replay)).unwrap());
    assert_eq!(
        wait(ledger.identified("pay_another-identifier")).unwrap(),
        None
    );
    // Payments without an identifier never collide on it.
    assert!(wait(ledger.reserve(&payment("plain-1", None, b""))).unwrap());
    assert!(wait(ledger.reserve(&payment("plain-2", None, b""))).unwrap());
    assert!(!wait(ledger.keep_answer("plain-1", b"answer", 5)).unwrap());
    // The answer is kept once.
    assert!(wait(ledger.keep_answer(&won[0], b"sealed answer", 5)).unwrap());
    assert!(!wait(ledger.keep_answer(&won[0], b"another", 6)).unwrap());
    assert_eq!(
        wait(ledger.identified("pay_0123456789abcdef"))
            .unwrap()
            .unwrap()
            .answer,
        KeptAnswer::Kept(b"sealed answer".to_vec())
    );
    // A released reservation frees its identifier.
    assert!(wait(ledger.reserve(&payment("freed", Some("pay_freed-0123456789"), b"a"))).unwrap());
    assert!(wait(ledger.release("freed")).unwrap());
    assert_eq!(
        wait(ledger.identified("pay_freed-0123456789")).unwrap(),
        None
    );
    assert!(wait(ledger.reserve(&payment("freed-2", Some("pay_freed-0123456789"), b"b"))).unwrap());
    // An answer not kept (too large) is gone at once; kept ones are forgotten after their time.
    assert!(wait(ledger.keep_answer("freed-2", b"", 9)).unwrap());
    assert_eq!(
        wait(ledger.identified("pay_freed-0123456789"))
            .unwrap()
            .unwrap()
            .answer,
        KeptAnswer::Gone
    );
    assert_eq!(wait(ledger.forget_answers(5, 0)).unwrap(), 0);
    assert_eq!(wait(ledger.forget_answers(6, 0)).unwrap(), 1);
    assert_eq!(wait(ledger.forget_answers(100, 0)).unwrap(), 0);
    // An identified payment settled (at 20) whose answer never came is given up on after the
    // grace; one still reserved is not (its request may still run).
    assert!(
        wait(ledger.reserve(&payment("unanswered", Some("pay_unanswered-000001"), b"u"))).unwrap()
    );
    assert!(wait(ledger.settled_at_once("unanswered", "run-a", 20)).unwrap());
    assert!(
        wait(ledger.reserve(&payment("running", Some("pay_still-running-0001"), b"r"))).unwrap()
    );
    assert_eq!(wait(ledger.forget_answers(0, 20)).unwrap(), 0);
    assert_eq!(wait(ledger.forget_answers(0, 21)).unwrap(), 1);
    let gone = |id| wait(ledger.identified(id)).unwrap().unwrap().answer;
    assert_eq!(gone("pay_unanswered-000001"), KeptAnswer::Gone);
    assert_eq!(gone("pay_still-running-0001"), KeptAnswer::Pending);
    assert_eq!(
        wait(ledger.identified("pay_0123456789abcdef"))
            .unwrap()
            .unwrap()
            .answer,
        KeptAnswer::Gone
    );
    // The payment itself stays recorded (a replay is still refused).
    assert_eq!(
        wait(ledger.state(&won[0])).unwrap().as_deref(),
        Some("reserved")
    );
}

fn payments_once(s: &Stores) {
    let payment = |key: &'static str, owner: &'static str| NewPayment {
        replay_key: key,
        payer: "0xb",
        amount: "10",
        network: "eip155:1",
        route: "/x402_execute/test/wasm",
        owner,
        sealed: b"sealed",
        at: 1,
        identifier: None,
    };
    // The same payment from eight threads at once: exactly one reservation.
    let reserved: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let ledger = s.payments.clone();
                scope.spawn(move || {
                    usize::from(wait(ledger.reserve(&payment("k1", "run-a"))).unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(reserved, 1);
    let ledger = s.payments.as_ref();
    // A metered payment's charge replaces its maximum while it is reserved, and only then.
    assert_eq!(wait(ledger.amount("k1")).unwrap().as_deref(), Some("10"));
    assert!(
        !wait(ledger.charged("k1", "run-b", "7")).unwrap(),
        "not run-b's reservation"
    );
    assert!(wait(ledger.charged("k1", "run-a", "7")).unwrap());
    assert_eq!(wait(ledger.amount("k1")).unwrap().as_deref(), Some("7"));
    assert!(!wait(ledger.charged("absent", "run-a", "7")).unwrap());
    assert_eq!(wait(ledger.amount("absent")).unwrap(), None);
    assert!(
        !wait(ledger.settling("k1", "run-b", 2)).unwrap(),
        "not run-b's reservation"
    );
    assert!(wait(ledger.settling("k1", "run-a", 2)).unwrap());
    assert!(
        !wait(ledger.release("k1")).unwrap(),
        "a settling payment is never released"
    );
    assert!(
        !wait(ledger.charged("k1", "run-a", "3")).unwrap(),
        "no charge changes once settling"
    );
    assert_eq!(wait(ledger.amount("k1")).unwrap().as_deref(), Some("7"));
    wait(ledger.settled("k1", "0xtx", 3)).unwrap();
    assert_eq!(
        wait(ledger.state("k1")).unwrap().as_deref(),
        Some("settled")
    );
    // A failure never overwrites another outcome (a late failure of another run's
    // settlement)...
    wait(ledger.settlement_failed("k1", "late", 4)).unwrap();
    assert_eq!(
        wait(ledger.state("k1")).unwrap().as_deref(),
        Some("settled"),
        "a settled payment stays settled"
    );
    assert!(
        !wait(ledger.reserve(&payment("k1", "run-a"))).unwrap(),
        "a replay"
    );
    // A dead run's reservations are adopted once: reserved and settling ones.
    assert!(wait(ledger.reserve(&payment("k2", "run-dead"))).unwrap());
    assert!(wait(ledger.reserve(&payment("k3", "run-dead"))).unwrap());
    assert!(wait(ledger.settling("k3", "run-dead", 4)).unwrap());
    let mut adopted = wait(ledger.adopt("run-a", u64::MAX, 10)).unwrap();
    adopted.sort_by(|a, b| a.replay_key.cmp(&b.replay_key));
    assert_eq!(adopted.len(), 2);
    assert_eq!(
        (adopted[0].replay_key.as_str(), adopted[0].state.as_str()),
        ("k2", "reserved")
    );
    assert_eq!(adopted[1].state, "settling");
    assert_eq!(adopted[1].previous_owner, "run-dead");
    assert_eq!(adopted[1].sealed, b"sealed");
    assert!(
        wait(ledger.adopt("run-c", u64::MAX, 10))
            .unwrap()
            .iter()
            .all(|a| a.previous_owner == "run-a")
    );
    assert!(
        !wait(ledger.settling("k3", "run-dead", 5)).unwrap(),
        "the dead run lost it"
    );
    assert!(wait(ledger.release("k2")).unwrap());
    assert_eq!(wait(ledger.state("k2")).unwrap(), None);
    // ...but a settlement does overwrite a failure: the adopter of a run taken for dead
    // found the payment refused (the run's own settlement had gone through), and the run
    // then records its transaction.
    wait(ledger.settlement_failed("k3", "already settled", 5)).unwrap();
    wait(ledger.settled("k3", "0xtx3", 6)).unwrap();
    assert_eq!(
        wait(ledger.state("k3")).unwrap().as_deref(),
        Some("settled")
    );

    // Verify-only settles in one step, only the owner's reservation, never twice.
    assert!(wait(ledger.reserve(&payment("k4", "run-a"))).unwrap());
    assert!(!wait(ledger.settled_at_once("k4", "run-b", 6)).unwrap());
    assert!(wait(ledger.settled_at_once("k4", "run-a", 6)).unwrap());
    assert_eq!(
        wait(ledger.state("k4")).unwrap().as_deref(),
        Some("settled")
    );
    assert!(!wait(ledger.settled_at_once("k4", "run-a", 7)).unwrap());
    assert!(
        !wait(ledger.release("k4")).unwrap(),
        "a settled payment is never released"
    );

    // Many payments from many threads at once (the writes are group-committed on SQLite):
    // each distinct one reserved exactly once, the duplicates refused, all of them readable.
    let keys: Vec<String> = (0..40).map(|i| format!("many-{i}")).collect();
    let reserved: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let (ledger, keys) = (s.payments.clone(), &keys);
                scope.spawn(move || {
                    // every thread tries every key, starting at its own place
                    (0..keys.len())
                        .filter(|i| {
                            let key = &keys[(i + t * 5) % keys.len()];
                            let p = NewPayment {
                                replay_key: key,
                                ..payment("", "run-a")
                            };
                            wait(ledger.reserve(&p)).unwrap()
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(reserved, keys.len());
    for key in &keys {
        assert_eq!(
            wait(ledger.state(key)).unwrap().as_deref(),
            Some("reserved")
        );
    }
}

/// A verify-only payment of side-effect-free work is recorded `settled` in one write after
/// its run: once, from any number of threads, never over a reservation or another record, and
/// seen by [`PaymentLedger::recorded`] once durable.
///
/// [`PaymentLedger::recorded`]: crate::storage::payments::PaymentLedger::recorded
fn payments_recorded_after_run(s: &Stores) {
    let payment = |key: &'static str| NewPayment {
        replay_key: key,
        payer: "0xb",
        amount: "10",
        network: "eip155:1",
        route: "/x402_execute/test/wasm",
        owner: "run-a",
        sealed: b"",
        at: 5,
        identifier: None,
    };
    let ledger = s.payments.as_ref();
    assert!(!wait(ledger.recorded("r1")).unwrap());
    // The same payment recorded from eight threads at once: exactly one record.
    let recorded: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let ledger = s.payments.clone();
                scope.spawn(move || {
                    usize::from(wait(ledger.record_settled(&payment("r1"))).unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(recorded, 1);
    assert!(wait(ledger.recorded("r1")).unwrap());
    assert_eq!(
        wait(ledger.state("r1")).unwrap().as_deref(),
        Some("settled")
    );
    assert_eq!(wait(ledger.amount("r1")).unwrap().as_deref(), Some("10"));
    assert!(!wait(ledger.release("r1")).unwrap(), "never released");
    assert!(!wait(ledger.reserve(&payment("r1"))).unwrap(), "a replay");
    assert!(
        wait(ledger.adopt("run-b", u64::MAX, 10))
            .unwrap()
            .is_empty(),
        "nothing unfinished to adopt"
    );
    // A key reserved (by the reserving path) is not recorded over, and is `recorded`.
    assert!(wait(ledger.reserve(&payment("r2"))).unwrap());
    assert!(wait(ledger.recorded("r2")).unwrap());
    assert!(!wait(ledger.record_settled(&payment("r2"))).unwrap());
    assert_eq!(
        wait(ledger.state("r2")).unwrap().as_deref(),
        Some("reserved")
    );
    // Released, it is free again.
    assert!(wait(ledger.release("r2")).unwrap());
    assert!(!wait(ledger.recorded("r2")).unwrap());
    assert!(wait(ledger.record_settled(&payment("r2"))).unwrap());
}

fn code_store(s: &Stores) {
    let hash = hypervisor_protocol::sha256(b"component");
    assert_eq!(s.code.load(&hash).unwrap(), None);
    s.code.store(&hash, b"component").unwrap();
    s.code.store(&hash, b"component").unwrap();
    assert_eq!(
        s.code.load(&hash).unwrap().as_deref(),
        Some(&b"component"[..])
    );
    assert!(!s.audience.is_empty());
}

fn state_store(s: &Stores, max_keys: u64) -> Arc<StateStore> {
    Arc::new(StateStore::new(
        s.state.clone(),
        s.key.clone(),
        StateLimits {
            max_keys,
            max_bytes: 1 << 20,
            max_value_bytes: 1024,
            max_key_bytes: 64,
            cache_bytes: 1 << 20,
        },
    ))
}

fn state_counters_quotas(s: &Stores) {
    let state = state_store(s, 4);
    let a = state.keys("a", "04aa");
    let b = state.keys("b", "04aa");
    // Eight threads adding 1 ten times each: 80, whatever the interleaving.
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let (state, a) = (state.clone(), &a);
            scope.spawn(move || {
                for _ in 0..10 {
                    state.add(a, "c", "n", 1, false).unwrap();
                }
            });
        }
    });
    assert_eq!(state.add(&a, "c", "n", 0, false).unwrap(), 80);
    // Eight threads swapping on one version: exactly one wins.
    let (version, _) = state.read_for_swap(&a, "c", "s").unwrap();
    let won: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8u8)
            .map(|i| {
                let (state, a) = (state.clone(), &a);
                scope.spawn(move || state.swap(a, "c", "s", version, &[i]).is_ok())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| usize::from(h.join().unwrap()))
            .sum()
    });
    assert_eq!(won, 1);
    // Buckets and agents are separate; values read back (cache or not).
    state.set(&a, "c", "k", b"v").unwrap();
    assert_eq!(
        state
            .get(&a, "c", "k")
            .unwrap()
            .as_deref()
            .map(|v| v.as_slice()),
        Some(&b"v"[..])
    );
    assert!(state.get(&a, "other", "k").unwrap().is_none());
    assert!(state.get(&b, "c", "k").unwrap().is_none());
    // Quota: a holds n, s, k (3 of 4); one more fits, then refused; replacing still works.
    state.set(&a, "c", "k2", b"v").unwrap();
    assert!(state.set(&a, "c", "k3", b"v").unwrap_err().is_quota());
    state.set(&a, "c", "k2", b"w").unwrap();
    assert_eq!(state.usage("a").unwrap().keys, 4);
    let (keys, next) = state.list(&a, "c", 0).unwrap();
    assert_eq!(keys.len(), 4);
    assert!(next.is_none());
    assert_eq!(state.export(&a).unwrap()["c"].len(), 4);
    // The owner's wipe is ordered; a replay is refused.
    let order = OwnerOrder {
        signed_at: 10,
        sequence: 10,
    };
    assert_eq!(state.wipe("a", Some(order), 10).unwrap(), 4);
    assert!(matches!(
        state.wipe("a", Some(order), 10),
        Err(RegistryError::Replayed { .. })
    ));
    assert!(state.get(&a, "c", "k").unwrap().is_none());
    assert_eq!(state.usage("a").unwrap(), Default::default());

    // An import is ordered after the wipe, and a replay of it is refused.
    let later = OwnerOrder {
        signed_at: 11,
        sequence: 11,
    };
    assert!(matches!(
        state.mark_order("a", order, 11),
        Err(RegistryError::Replayed { .. })
    ));
    state.mark_order("a", later, 11).unwrap();
    assert!(matches!(
        state.mark_order("a", later, 11),
        Err(RegistryError::Replayed { .. })
    ));
    // Checked whole first (4 keys at most), merged, then replacing.
    let entries = |pairs: &[(&str, &str)]| {
        let mut out = crate::storage::state::Buckets::new();
        for (key, value) in pairs {
            out.entry("c".to_string()).or_default().insert(
                (*key).to_string(),
                zeroize::Zeroizing::new(value.as_bytes().to_vec()),
            );
        }
        out
    };
    let three = entries(&[("x", "1"), ("y", "2"), ("z", "3")]);
    state.check_import("a", &three, false).unwrap();
    assert_eq!(state.import(&a, &three, false).unwrap().keys, 3);
    assert!(
        state
            .check_import("a", &three, false)
            .unwrap_err()
            .is_quota()
    );
    state.check_import("a", &three, true).unwrap();
    let two = entries(&[("x", "one"), ("w", "new")]);
    let done = state.import(&a, &two, true).unwrap();
    assert_eq!((done.keys, done.removed), (2, 2));
    let kept = state.export(&a).unwrap();
    assert_eq!(kept["c"].keys().collect::<Vec<_>>(), ["w", "x"]);
    assert_eq!(kept["c"]["x"].as_slice(), b"one");
    assert_eq!(state.usage("a").unwrap().keys, 2);
}

fn config_in_order(s: &Stores) {
    let config = ConfigStore::new(s.config.clone(), s.key.clone(), 1 << 20);
    let mut change = hypervisor_protocol::state::ConfigChange::default();
    change.set.insert("API_KEY".into(), "secret-value".into());
    let order = |n| OwnerOrder {
        signed_at: n,
        sequence: n,
    };
    let info = config.apply("a", "04aa", &change, order(5), 5).unwrap();
    assert_eq!(info.entries[0].version, 1);
    assert!(matches!(
        config.apply("a", "04aa", &change, order(5), 5),
        Err(ConfigError::Registry(RegistryError::Replayed { .. }))
    ));
    let info = config.apply("a", "04aa", &change, order(6), 6).unwrap();
    assert_eq!(info.entries[0].version, 2);
    assert_eq!(
        config.get("a", "04aa").unwrap().get("API_KEY"),
        Some("secret-value")
    );
    // Sealed under the agent's (and owner's) key: another owner's key does not open it.
    config.forget("a");
    assert!(config.get("a", "04bb").is_err());
    let sealed = s.config.get("a").unwrap().unwrap();
    assert!(!sealed.windows(12).any(|w| w == b"secret-value"));
    config.remove("a").unwrap();
    assert!(config.get("a", "04aa").unwrap().get("API_KEY").is_none());
}

#[test]
fn sqlite_backend() {
    run_all(&|_| {
        let dir = tempfile::tempdir().unwrap();
        let key = Arc::new(crate::crypto::at_rest::SealingKey::generate().unwrap());
        let stores = super::sqlite::open(dir.path(), key).unwrap();
        (stores, Box::new(dir))
    });
}

#[test]
fn postgres_backend() {
    let server = match super::postgres::scratch::ScratchPostgres::start() {
        Ok(server) => server,
        Err(why) => {
            eprintln!("SKIPPED: the PostgreSQL storage suite needs a server: {why}");
            return;
        }
    };
    run_all(&|name| {
        server.create_database(name).unwrap();
        let config = crate::config::StorageConfig {
            database: Some(server.url(name)),
            pool_size: 12,
            ..Default::default()
        };
        let pg = super::postgres::Pg::connect(&config).unwrap();
        super::postgres::schema::migrate(&pg).unwrap();
        // Migrating again (a second replica starting) changes nothing.
        super::postgres::schema::migrate(&pg).unwrap();
        let key = Arc::new(crate::crypto::at_rest::SealingKey::generate().unwrap());
        let stores = super::postgres::stores(&pg, key).unwrap();
        (stores, Box::new(pg))
    });
}

/// A backend whose reads, once `pause` is set, wait at a barrier after reading (twice:
/// read, then go on).
struct Paused {
    inner: Arc<dyn crate::storage::agent_config::ConfigBackend>,
    pause: std::sync::atomic::AtomicBool,
    barrier: std::sync::Barrier,
}

impl crate::storage::agent_config::ConfigBackend for Paused {
    fn get(&self, agent: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let read = self.inner.get(agent);
        if self.pause.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.barrier.wait();
            self.barrier.wait();
        }
        read
    }
    fn update(
        &self,
        agent: &str,
        order: OwnerOrder,
        now: u64,
        change: &mut crate::storage::agent_config::Rewrite<'_>,
    ) -> Result<(), RegistryError> {
        self.inner.update(agent, order, now, change)
    }
    fn remove(&self, agent: &str) -> Result<(), StorageError> {
        self.inner.remove(agent)
    }
}

fn api_key(value: &str) -> hypervisor_protocol::state::ConfigChange {
    let mut change = hypervisor_protocol::state::ConfigChange::default();
    change.set.insert("API_KEY".into(), value.into());
    change
}

/// A read that began before a secret was rotated and ends after it does not leave the old
/// value in the cache: the next read gets the new one. (Before, the reader cached the
/// document it had read after the change forgot the old one: the agent kept the revoked
/// secret until the next change. Found by review.)
#[test]
fn a_read_racing_a_rotation_does_not_cache_the_old_secret() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(crate::crypto::at_rest::SealingKey::generate().unwrap());
    let stores = crate::storage::sqlite::open(dir.path(), key.clone()).unwrap();
    let backend = Arc::new(Paused {
        inner: stores.config.clone(),
        pause: false.into(),
        barrier: std::sync::Barrier::new(2),
    });
    let config = Arc::new(ConfigStore::new(backend.clone(), key, 1 << 20));
    let order = |n| OwnerOrder {
        signed_at: n,
        sequence: n,
    };
    config
        .apply("a", "04aa", &api_key("v1"), order(1), 1)
        .unwrap();
    backend
        .pause
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let reader = {
        let config = config.clone();
        std::thread::spawn(move || {
            config
                .get("a", "04aa")
                .unwrap()
                .get("API_KEY")
                .map(str::to_string)
        })
    };
    backend.barrier.wait(); // the reader has read v1
    config
        .apply("a", "04aa", &api_key("v2"), order(2), 2)
        .unwrap();
    backend.barrier.wait(); // the reader goes on
    assert_eq!(
        reader.join().unwrap().as_deref(),
        Some("v1"),
        "it read before"
    );
    assert_eq!(
        config.get("a", "04aa").unwrap().get("API_KEY"),
        Some("v2"),
        "the rotated value, not the cached old one"
    );
}
