//! Confidential-VM measurement event logs: parsing, replay into the four TDX RTMRs, and the
//! app identity a dstack guest measures into RTMR3.
//!
//! Two input formats: dstack's JSON event log ([`parse_json`], as the guest agent's `GetQuote`
//! and `Info` return it) and the TCG crypto-agile binary log firmware leaves in the CCEL
//! ([`parse_tcg`]). [`replay`] recomputes every dstack runtime event's digest (a supplied one
//! is never trusted) and extends `RTMR[i] = SHA384(RTMR[i] || digest)` from zero; compare the
//! result with the quote's registers before reading [`identity`] from the log.
//!
//! Every input is bounded ([`MAX_INPUT_BYTES`], [`MAX_EVENTS`], [`MAX_NAME_BYTES`],
//! [`MAX_PAYLOAD_BYTES`]) and refused with an [`EventLogError`], never a panic.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod error;
mod identity;
mod json;
mod replay;
mod runtime;
mod tcg;

pub use error::EventLogError;
pub use identity::{AppIdentity, identity};
pub use json::{MAX_PREIMAGE_BYTES, parse_json, to_json};
pub use replay::{covered, replay};
pub use runtime::{runtime_digest_v1, runtime_digest_v2, runtime_preimage_v1, runtime_preimage_v2};
pub use tcg::{EV_NO_ACTION, TPM_ALG_SHA384, parse_tcg};

/// The TCG event type of dstack runtime events (not a TCG-defined type), `134217729`.
pub const RUNTIME_EVENT_TYPE: u32 = 0x0800_0001;
/// Our launcher's RTMR3 runtime event: its payload is the 32 raw bytes of the SHA-256 of the
/// host binary.
pub const HOST_EVENT: &str = "hypervisor-host-sha256";
/// The runtime event dstack emits when boot is done: every later event is app-emitted.
pub const SYSTEM_READY: &str = "system-ready";

/// A SHA-384 digest or register value.
pub type Digest48 = [u8; 48];

/// The number of runtime measurement registers (RTMR0..RTMR3).
pub const NUM_RTMRS: usize = 4;
/// The largest JSON text or binary log accepted (4 MiB).
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;
/// The most events (TCG: records) a log may hold.
pub const MAX_EVENTS: usize = 4096;
/// The longest event name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// The largest event payload (TCG: event data), in bytes (64 KiB).
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// One measurement event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The register it extends: 0..=3 for RTMR0..RTMR3 (the TCG MR index minus one).
    pub imr: u32,
    /// The TCG event type; [`RUNTIME_EVENT_TYPE`] for dstack runtime events.
    pub event_type: u32,
    /// The digest as supplied (may be empty: runtime digests are recomputed anyway).
    pub digest: Vec<u8>,
    /// The event name (dstack runtime events; empty for firmware events).
    pub event: String,
    /// The event payload (may be empty: `GetQuote` strips most boot-event payloads).
    pub event_payload: Vec<u8>,
    /// The runtime digest version: `None` or `Some(1)` = v1, `Some(2)` = v2.
    pub version: Option<u32>,
    /// The exact bytes the runtime digest hashes, when the log supplies them (checked).
    pub preimage: Option<Vec<u8>>,
}

impl Event {
    /// A dstack v1 runtime event (`imr` 3, [`RUNTIME_EVENT_TYPE`]) with its digest computed.
    pub fn runtime(name: &str, payload: &[u8]) -> Event {
        Event {
            imr: 3,
            event_type: RUNTIME_EVENT_TYPE,
            digest: runtime_digest_v1(name, payload).to_vec(),
            event: name.to_owned(),
            event_payload: payload.to_vec(),
            version: None,
            preimage: None,
        }
    }
}
