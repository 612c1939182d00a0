//! The one error type of the crate.

/// Why an event log was refused. Every variant about one event names its index in the log
/// (for the TCG binary log: its record number, the Spec ID header being record 0, and its
/// byte offset).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum EventLogError {
    /// The JSON text or binary log is larger than [`crate::MAX_INPUT_BYTES`].
    #[error("event log is {size} bytes, over the limit of {limit} bytes")]
    InputTooLarge {
        /// Size of the input in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The log holds more than [`crate::MAX_EVENTS`] events.
    #[error("event log has {count} events, over the limit of {limit}")]
    TooManyEvents {
        /// Number of events seen (at least `limit + 1`).
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The JSON text is not a JSON array of events of the expected shape.
    #[error("event log is not a valid JSON event array: {0}")]
    Json(String),
    /// An event's name is longer than [`crate::MAX_NAME_BYTES`].
    #[error("event {index}: name is {len} bytes, over the limit of {limit} bytes")]
    NameTooLong {
        /// Index of the event in the log.
        index: usize,
        /// Length of the name in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// An event's payload (or preimage) is larger than its limit.
    #[error("event {index}: {field} is {len} bytes, over the limit of {limit} bytes")]
    FieldTooLarge {
        /// Index of the event in the log (TCG: record number).
        index: usize,
        /// Which field: `event_payload`, `preimage`, `event data`.
        field: &'static str,
        /// Its length in bytes (as claimed, for a binary record).
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A hex field does not decode.
    #[error("event {index}: field `{field}` is not valid hex: {reason}")]
    InvalidHex {
        /// Index of the event in the log.
        index: usize,
        /// The JSON field name.
        field: &'static str,
        /// What the hex decoder said.
        reason: String,
    },
    /// An RTMR3 event that is not a runtime event. Its digest could not be recomputed, so its
    /// type could be relabelled without changing the replay, hiding it from
    /// [`crate::identity`] (a relabelled `system-ready` or `compose-hash` would let a later,
    /// app-emitted event stand as identity): refused.
    #[error(
        "event {index}: RTMR3 event of type {event_type:#010x}, not a runtime event \
         (0x08000001): RTMR3 events must have digests a verifier recomputes"
    )]
    NotRuntimeEvent {
        /// Index of the event in the log.
        index: usize,
        /// The type found.
        event_type: u32,
    },
    /// A v1 runtime event's name holds `:`, the separator of the digest's preimage: the same
    /// digest would read as another name and payload.
    #[error("event {index}: runtime event name {name:?} contains `:`")]
    AmbiguousName {
        /// Index of the event in the log.
        index: usize,
        /// The name.
        name: String,
    },
    /// `imr` is not 0..=3 (RTMR0..RTMR3).
    #[error("event {index}: imr {imr} is out of range (0..=3 for RTMR0..RTMR3)")]
    InvalidImr {
        /// Index of the event in the log.
        index: usize,
        /// The value found.
        imr: u32,
    },
    /// A digest that is replayed as supplied is not a 48-byte SHA-384 digest.
    #[error("event {index}: digest is {len} bytes, expected 48 (SHA-384)")]
    DigestLength {
        /// Index of the event in the log.
        index: usize,
        /// Length found.
        len: usize,
    },
    /// A runtime event's supplied digest differs from the digest recomputed from its name and
    /// payload: the log was altered (or forged).
    #[error(
        "event {index} (`{name}`): supplied digest does not match the digest recomputed from its name and payload"
    )]
    DigestMismatch {
        /// Index of the event in the log.
        index: usize,
        /// The event's name.
        name: String,
    },
    /// A runtime event's `preimage` is not the exact bytes its digest is computed from.
    #[error(
        "event {index} (`{name}`): preimage is not the canonical digest input of its name and payload"
    )]
    PreimageMismatch {
        /// Index of the event in the log.
        index: usize,
        /// The event's name.
        name: String,
    },
    /// A runtime event carries a `version` other than 1 or 2.
    #[error("event {index}: unsupported runtime event version {version} (1 or 2)")]
    UnsupportedVersion {
        /// Index of the event in the log.
        index: usize,
        /// The version found.
        version: u32,
    },
    /// The identity event [`crate::HOST_EVENT`] does not carry exactly 32 bytes.
    #[error(
        "event {index}: `hypervisor-host-sha256` payload is {len} bytes, expected 32 (SHA-256)"
    )]
    HostDigestLength {
        /// Index of the event in the log.
        index: usize,
        /// Length found.
        len: usize,
    },
    /// The TCG binary log ends inside a record.
    #[error("TCG event log truncated: record {record} at byte {offset} ends while reading {what}")]
    TcgTruncated {
        /// Record number (0 = the Spec ID header).
        record: usize,
        /// Byte offset where the record starts.
        offset: usize,
        /// The field being read.
        what: &'static str,
    },
    /// The first record of the TCG log is not a usable Spec ID Event.
    #[error("TCG event log: bad Spec ID Event header: {reason}")]
    TcgSpecId {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A TCG record names an MR index beyond 4 (RTMR3).
    #[error("TCG record {record} at byte {offset}: MR index {mr_index} is out of range (0..=4)")]
    TcgMrIndex {
        /// Record number.
        record: usize,
        /// Byte offset where the record starts.
        offset: usize,
        /// The value found.
        mr_index: u32,
    },
    /// A TCG record's digest list is not one the Spec ID header allows.
    #[error("TCG record {record} at byte {offset}: {reason}")]
    TcgDigests {
        /// Record number.
        record: usize,
        /// Byte offset where the record starts.
        offset: usize,
        /// What is wrong (unknown algorithm, count, no SHA-384).
        reason: String,
    },
}
