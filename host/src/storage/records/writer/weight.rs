//! What a waiting write weighs, for the bound on the deferred writes kept waiting.

use super::Write;

impl Write {
    /// About how many bytes it holds while it waits (for the bound on waiting writes).
    pub(super) fn weight(&self) -> usize {
        /// A write's own size and its allocations' headers, roughly.
        const BASE: usize = 256;
        BASE + match self {
            Write::Record(r) => {
                r.id.len()
                    + r.route.len()
                    + r.code_hash.len()
                    + r.caller_hash.len()
                    + r.status.len()
                    + r.agent.as_ref().map_or(0, String::len)
                    + r.commitment.as_ref().map_or(0, String::len)
                    + r.payment.as_ref().map_or(0, String::len)
            }
            Write::Log { agent, entry } => {
                agent.len() + entry.execution_id.len() + entry.sealed.len()
            }
            Write::Call(c) => {
                c.caller_execution.len()
                    + c.caller.len()
                    + c.callee.len()
                    + c.path.len()
                    + c.callee_execution.as_ref().map_or(0, String::len)
                    + c.response_sha256.as_ref().map_or(0, String::len)
                    + c.settlement.as_ref().map_or(0, |_| 512)
            }
            Write::Task(t) => t.row.task.len() + t.row.pending.as_ref().map_or(0, Vec::len),
        }
    }
}
