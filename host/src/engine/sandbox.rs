//! Per-execution sandbox state: the WASI context, the resource table, the memory limiter, and
//! what the host imports need. What a store is granted comes from its role's capabilities, see
//! [`Capabilities`] (the one table of them); [`super::outgoing`] enforces its egress.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::capabilities::{Capabilities, Invocation};
use super::outgoing::OutgoingHttp;
use super::output::CappedOutput;
use super::state_grant::StateGrant;
use crate::attestation::Attestor;

/// Limits instances, tables and memories per store: generous for real components (a
/// componentized CPython has a few dozen core instances), small enough to stop abuse.
const MAX_INSTANCES: usize = 64;
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 8;
/// Elements per table.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Enforces the execution's memory limit over all its linear memories together, and records
/// whether it ever refused a growth, so a subsequent trap can be reported as
/// "memory limit exceeded" rather than a generic trap.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: usize,
    committed: usize,
    refused: bool,
}

impl MemoryLimiter {
    /// A limiter allowing `limit` bytes of linear memory in total.
    pub fn new(limit: u64) -> Self {
        Self {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            committed: 0,
            refused: false,
        }
    }

    /// Whether a growth was refused.
    pub fn refused(&self) -> bool {
        self.refused
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current);
        let total = self.committed.saturating_add(growth);
        if total > self.limit {
            self.refused = true;
            return Ok(false);
        }
        self.committed = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// The data of one execution's store.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    /// Origins this store may send `wasi:http` requests to (none by default).
    pub outgoing: OutgoingHttp,
    /// The memory limiter (wasmtime calls it on every growth).
    pub limiter: MemoryLimiter,
    /// Signs statements for `hypervisor:host/attestation`.
    pub attestor: Arc<Attestor>,
    /// SHA-256 of the running component (binds component statements).
    pub component_hash: [u8; 32],
    /// The agent's state and configuration, if the role grants them.
    pub(super) state: StateGrant,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outgoing,
        }
    }
}

/// What a guest is given: its role's capabilities, the invocation's arguments and stdin (as far
/// as the capabilities allow), output capture, memory limit.
pub struct SandboxSpec<'a> {
    /// The role's capabilities.
    pub capabilities: &'a Capabilities,
    /// Arguments and stdin.
    pub invocation: Invocation<'a>,
    /// Capture for stdout.
    pub stdout: CappedOutput,
    /// Capture for stderr.
    pub stderr: CappedOutput,
    /// Linear-memory limit.
    pub memory_bytes: u64,
    /// The host's attestor.
    pub attestor: Arc<Attestor>,
    /// Component hash.
    pub component_hash: [u8; 32],
}

impl HostState {
    /// Builds the state from the role's capabilities: its WASI context, its egress grant
    /// (nothing else is granted).
    pub fn new(spec: SandboxSpec<'_>) -> Self {
        let caps = spec.capabilities;
        let mut outgoing = OutgoingHttp::default();
        outgoing.allow(caps.egress.origins());
        if let Some(hook) = caps.egress.hook_of() {
            outgoing.hook(hook);
        }
        Self {
            wasi: caps.wasi.context(spec.invocation, spec.stdout, spec.stderr),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            outgoing,
            limiter: MemoryLimiter::new(spec.memory_bytes),
            attestor: spec.attestor,
            component_hash: spec.component_hash,
            state: StateGrant::new(caps.state.clone()),
        }
    }

    /// The store's resource table.
    pub(super) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_counts_all_memories_and_remembers_refusals() {
        let mut l = MemoryLimiter::new(100);
        assert!(l.memory_growing(0, 60, None).unwrap());
        assert!(l.memory_growing(0, 40, None).unwrap());
        assert!(!l.refused());
        assert!(!l.memory_growing(40, 41, None).unwrap());
        assert!(l.refused());
    }
}
