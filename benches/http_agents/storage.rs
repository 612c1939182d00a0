//! The storage costs of an invocation, measured on an in-process host's data directory: the
//! execution record and the agent-log append.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use hypervisor::storage::agents::LogEntry;
use hypervisor::storage::records::{ExecutionRecord, Records};
use hypervisor::storage::sqlite::{Database, SqliteRecords};

use crate::common::process::cpu_time_of;
use crate::common::stats::{report, us};

/// What the per-invocation writes cost, on the data directory of the in-process host (same
/// SQLite file and settings, own connections): the execution record (group-commit writer,
/// `synchronous = NORMAL`), one at a time and 32 at once, and the agent-log append that a
/// clear invocation writing to stderr does (`synchronous = FULL`, on the shared connection).
pub fn costs(rt: &tokio::runtime::Runtime, data_dir: &Path, agent: &str, iterations: usize) {
    let db = Arc::new(Database::open(data_dir).unwrap());
    let writer = Arc::new(Database::open_relaxed(data_dir).unwrap());
    let store = Arc::new(SqliteRecords::new(db, writer));
    let records = Arc::new(Records::open(store).unwrap());
    let record = |agent: &str, i: usize| ExecutionRecord {
        id: uuid::Uuid::now_v7().to_string(),
        route: format!("/agents/{agent}/"),
        agent: Some(agent.to_string()),
        agent_version: Some(1),
        code_hash: "ab".repeat(32),
        caller_hash: String::new(),
        started_ms: 1_700_000_000_000 + i as u64,
        duration_us: 80,
        status: "exited".into(),
        exit_code: Some(0),
        commitment: None,
        payment: None,
    };
    let samples = rt.block_on(async {
        let mut out = Vec::with_capacity(iterations);
        for i in 0..iterations {
            let r = record(agent, i);
            let t = Instant::now();
            records.insert(r).await.unwrap();
            out.push(t.elapsed());
        }
        out
    });
    report("  execution record insert, one at a time", samples);
    let total = iterations * 10;
    rate(
        "  execution record insert, 32 at once",
        "record",
        total,
        || {
            rt.block_on(async {
                let tasks: Vec<_> = (0..32)
                    .map(|k| {
                        let records = records.clone();
                        let agent = agent.to_string();
                        tokio::spawn(async move {
                            for i in (k..total).step_by(32) {
                                records.insert(record(&agent, i)).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
            });
        },
    );
    // Deferred writes, as HTTP agents and invocation logs make them: a record and a log
    // entry per request, committed in batches by the writer.
    let sealed = vec![0u8; 64];
    rate(
        "  deferred record + log entry (HTTP agents, logs)",
        "pair",
        total,
        || {
            for i in 0..total {
                records.insert_later(record(agent, i));
                records.append_log_later(
                    agent,
                    LogEntry {
                        execution_id: format!("bench-{i}"),
                        at_ms: 1_700_000_000_000,
                        sealed: sealed.clone(),
                    },
                );
            }
            rt.block_on(records.flush()).unwrap();
        },
    );
}

/// Runs `work`, `total` operations named `unit`, and prints how many it did per second and the
/// CPU time of the whole process per operation.
fn rate(name: &str, unit: &str, total: usize, work: impl FnOnce()) {
    let (cpu, t) = (cpu_time_of("self"), Instant::now());
    work();
    let (cpu, wall) = (cpu_time_of("self") - cpu, t.elapsed());
    println!(
        "{name:<58} {:.0} {unit}s/s, {:.1} µs CPU per {unit} (whole process)",
        total as f64 / wall.as_secs_f64(),
        us(cpu) / total as f64
    );
}
