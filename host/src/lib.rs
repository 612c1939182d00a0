//! WASM Hypervisor: a confidential WebAssembly execution host.
//!
//! Layout (each arrow is "calls"; leaves never call back up):
//!
//! ```text
//! http (routes, extraction, error mapping)
//!   └─> pipeline (session → open → limits → admission → prepare → run → seal)
//!         ├─> engine (wasmtime: cache, sandbox, host imports, epoch ticker)
//!         ├─> session (in-memory session keys)
//!         └─> leaves: crypto, attestation, storage, config, net
//! ```
//!
//! `server` is the composition root that builds all of it from a [`config::Config`].

#![warn(missing_docs)]
// The one `unsafe` block (deserializing our own sealed compiled artifacts, engine/cache.rs)
// carries an explicit `allow` and its written reason.
#![deny(unsafe_code)]

pub mod attestation;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod engine;
pub mod error;
pub mod http;
pub mod metrics;
pub mod net;
pub mod pipeline;
pub mod plugins;
pub mod server;
pub mod session;
pub mod storage;
