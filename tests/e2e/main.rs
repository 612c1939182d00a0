//! End-to-end tests: the real `hypervisor` binary on an ephemeral loopback port, real
//! components from `guests/` (built by `scripts/build-programs.sh`), real crypto through the
//! client library.
//!
//! Tests that start a host with simulated attestation need the `simulated-attestation` feature
//! (CI builds with `--all-features`); without it they are left out, and the helpers only they
//! use would be unused: allowed in that build alone (with the feature, every lint applies).
#![cfg_attr(
    not(feature = "simulated-attestation"),
    allow(dead_code, unused_imports)
)]

mod harness;
mod local_chain;
mod memory;

mod a2a_quota;
mod agent_calls;
mod agent_state;
mod agents;
mod agents_access;
mod agents_charging;
mod agents_errors;
mod agents_lifecycle;
mod agents_security;
mod api;
#[cfg(feature = "simulated-attestation")]
mod attestation;
#[cfg(feature = "simulated-attestation")]
mod balancer;
mod cache;
mod cli_newcomer;
mod client_cli;
#[cfg(feature = "simulated-attestation")]
mod cluster;
mod cors;
mod discovery;
mod egress_safety;
mod environments;
mod execute;
mod faults;
mod hex_fields;
mod image;
#[cfg(feature = "simulated-attestation")]
mod interop_a2a;
mod javascript;
mod linger;
mod local_run;
mod mcp;
mod metered;
mod observe;
mod offer_receipt;
mod openapi;
mod owner_signatures;
mod payment_identifier;
mod payments;
mod payments_after_run;
mod paywall;
mod platform;
mod policy;
mod precompiled;
mod python;
mod readme;
mod readme_blocks;
mod riscv;
mod sandbox;
#[cfg(feature = "simulated-attestation")]
mod schemathesis;
mod settlement;
mod sign_in;
mod slow_clients;
mod starlingmonkey;
mod state_compat;
mod state_import;
mod templates;
#[cfg(feature = "simulated-attestation")]
mod tls;
mod uploads;
mod web_crypto;
mod web_platform;
mod web_rsa;
mod web_streams;
mod web_urlpattern;
mod x402_python;
