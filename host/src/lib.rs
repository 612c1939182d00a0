//! WASM Hypervisor: a confidential WebAssembly execution host.
//!
//! Layout (each arrow is "calls"; leaves never call back up):
//!
//! ```text
//! http (routes from protocol's route table, extraction, error → status mapping)
//!   └─> pipeline (verify → open → admit → prepare → run → seal → conclude)
//!         ├─> plugins (policy, python, payments)
//!         ├─> engine (wasmtime: cache, capabilities per role, sandbox, host imports, ticker)
//!         ├─> session (in-memory session keys)
//!         └─> leaves: clock, net, crypto, attestation, storage, config, memory
//! ```
//!
//! `server` is the composition root that builds all of it from a [`config::Config`].

#![warn(missing_docs)]
// Each `unsafe` block (deserializing compiled artifacts: engine/cache.rs, precompiled.rs,
// js_compiler.rs; collecting the allocator's heaps: memory.rs) carries an explicit `allow` and
// its written reason.
#![deny(unsafe_code)]

pub mod attestation;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod crypto;
pub mod egress;
pub mod engine;
pub mod error;
pub mod http;
pub mod memory;
pub mod metrics;
pub mod net;
pub mod pipeline;
pub mod plugins;
pub mod server;
pub mod session;
pub mod storage;
pub mod typescript;
