//! A batch the database refuses for one of its writes, committed in halves down to that write.

use super::{Failed, Write};
use crate::storage::records::{AsyncRecordSink, RecordSink};

/// Commits a batch, and when the database refuses it for one of its statements (not because it
/// is unreachable), its two halves apart, down to single writes: a write the database refuses
/// (its agent deleted meanwhile, a deadlock with another replica's batch) then costs only
/// itself, not every write committed with it. Commits keep the batch's order. When the
/// database turns out unreachable, the rest is not tried: it fails as unreachable.
struct Bisect {
    /// Ranges still to commit, the next last.
    todo: Vec<std::ops::Range<usize>>,
    results: Vec<Option<Result<(), Failed>>>,
    away: Option<Failed>,
}

impl Bisect {
    fn new(writes: usize) -> Self {
        Self {
            todo: (writes > 0).then_some(0..writes).into_iter().collect(),
            results: vec![None; writes],
            away: None,
        }
    }

    /// The next range to commit.
    fn next(&mut self) -> Option<std::ops::Range<usize>> {
        while let Some(range) = self.todo.pop() {
            match &self.away {
                Some(e) => self.fill(range, &Err(e.clone())),
                None => return Some(range),
            }
        }
        None
    }

    fn fill(&mut self, range: std::ops::Range<usize>, result: &Result<(), Failed>) {
        for slot in &mut self.results[range] {
            *slot = Some(result.clone());
        }
    }

    /// What committing `range` gave.
    fn done(&mut self, range: std::ops::Range<usize>, result: Result<(), Failed>) {
        match result {
            Err(e) if e.unavailable => {
                tracing::error!(error = %e.detail, writes = range.len(), "recording executions failed: the database is unreachable");
                self.fill(range, &Err(e.clone()));
                self.away = Some(e);
            }
            Err(e) if range.len() > 1 => {
                tracing::warn!(error = %e.detail, writes = range.len(), "the database refused a batch of records: committing its halves apart");
                let middle = range.start + range.len() / 2;
                self.todo.push(middle..range.end);
                self.todo.push(range.start..middle);
            }
            Err(e) => {
                tracing::error!(error = %e.detail, "the database refused a record write: it is dropped");
                self.fill(range, &Err(e));
            }
            Ok(()) => self.fill(range, &Ok(())),
        }
    }

    fn results(self) -> Vec<Result<(), Failed>> {
        self.results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(Failed {
                        unavailable: false,
                        detail: "not committed".into(),
                    })
                })
            })
            .collect()
    }
}

/// Commits `writes` through `sink` ([`Bisect`]): each write's result.
pub(super) fn commit_bisecting(
    sink: &mut dyn RecordSink,
    writes: &[Write],
) -> Vec<Result<(), Failed>> {
    let mut bisect = Bisect::new(writes.len());
    while let Some(range) = bisect.next() {
        let result = sink
            .commit(&writes[range.clone()])
            .map_err(|e| Failed::of(&e));
        bisect.done(range, result);
    }
    bisect.results()
}

/// [`commit_bisecting`] through a backend's asynchronous commit.
pub(super) async fn commit_bisecting_async(
    sink: &dyn AsyncRecordSink,
    writes: &[Write],
) -> Vec<Result<(), Failed>> {
    let mut bisect = Bisect::new(writes.len());
    while let Some(range) = bisect.next() {
        let result = sink
            .commit(&writes[range.clone()])
            .await
            .map_err(|e| Failed::of(&e));
        bisect.done(range, result);
    }
    bisect.results()
}

/// The writes from index `from` on whose commit found the database unreachable: deferred
/// writes to keep for the next attempt.
pub(super) fn unreached(
    writes: Vec<Write>,
    results: &[Result<(), Failed>],
    from: usize,
) -> Vec<Write> {
    writes
        .into_iter()
        .zip(results)
        .skip(from)
        .filter(|(_, r)| matches!(r, Err(f) if f.unavailable))
        .map(|(w, _)| w)
        .collect()
}

/// Whether any of `results` found the database unreachable.
pub(super) fn any_unreached(results: &[Result<(), Failed>]) -> bool {
    results.iter().any(|r| matches!(r, Err(f) if f.unavailable))
}
