//! A2A (Agent2Agent) as the host speaks it (`docs/PROTOCOL.md` §21): the wire shapes of
//! protocol versions 1.0 and 0.3 over one neutral model ([`model`]), the JSON-RPC method names
//! and error codes of each, the x402 payment extension's keys, and the agent card's signature
//! ([`card`]). No I/O.
//!
//! A request names its version in the `A2A-Version` header (`Major.Minor`); absent or empty
//! means 0.3. Each version is answered in its own shapes: 1.0 has `TASK_STATE_*` states,
//! `ROLE_*` roles and parts without `kind`; 0.3 has kebab-case states, lower-case roles and a
//! `kind` on every part, message, task and stream event.

pub mod card;
pub mod model;
mod wire03;

/// The `A2A-Version` header (also accepted as a query parameter).
pub const VERSION_HEADER: &str = "A2A-Version";
/// The header activating extensions (1.0).
pub const EXTENSIONS_HEADER: &str = "A2A-Extensions";
/// The header activating extensions (0.3; still sent by x402's packages).
pub const LEGACY_EXTENSIONS_HEADER: &str = "X-A2A-Extensions";

/// The x402 extension URI of the a2a-x402 specification (v0.2).
pub const X402_EXTENSION: &str =
    "https://github.com/google-agentic-commerce/a2a-x402/blob/main/spec/v0.2";
/// The x402 extension URI that the x402 packages use.
pub const X402_EXTENSION_LEGACY: &str = "https://github.com/google-a2a/a2a-x402/v0.1";
/// This host's extension naming where the evidence for the card's signing key is.
pub const ATTESTATION_EXTENSION: &str =
    "https://wasm-hypervisor.dev/a2a/extensions/attested-signing-key/v1";

/// x402 metadata keys (in the metadata of a task's status message, or of the client's
/// message).
pub mod x402 {
    /// The payment's state (one of the `STATUS_*` values).
    pub const STATUS: &str = "x402.payment.status";
    /// The requirements (a PaymentRequired object).
    pub const REQUIRED: &str = "x402.payment.required";
    /// The client's payment (a PaymentPayload object).
    pub const PAYLOAD: &str = "x402.payment.payload";
    /// The settlement responses (an array).
    pub const RECEIPTS: &str = "x402.payment.receipts";
    /// Why a payment failed (one of the `ERROR_*` codes).
    pub const ERROR: &str = "x402.payment.error";

    /// The agent asks for payment.
    pub const STATUS_REQUIRED: &str = "payment-required";
    /// The client sent a payment.
    pub const STATUS_SUBMITTED: &str = "payment-submitted";
    /// The payment was refused before anything ran.
    pub const STATUS_REJECTED: &str = "payment-rejected";
    /// The payment was settled and the work done.
    pub const STATUS_COMPLETED: &str = "payment-completed";
    /// The payment could not be processed or settled.
    pub const STATUS_FAILED: &str = "payment-failed";

    /// The payer's balance is short.
    pub const ERROR_INSUFFICIENT_FUNDS: &str = "INSUFFICIENT_FUNDS";
    /// The signature does not verify.
    pub const ERROR_INVALID_SIGNATURE: &str = "INVALID_SIGNATURE";
    /// The authorization is outside its validity window.
    pub const ERROR_EXPIRED_PAYMENT: &str = "EXPIRED_PAYMENT";
    /// The authorization's nonce was used before.
    pub const ERROR_DUPLICATE_NONCE: &str = "DUPLICATE_NONCE";
    /// The payment names another network or asset.
    pub const ERROR_NETWORK_MISMATCH: &str = "NETWORK_MISMATCH";
    /// The amount or recipient is not the one asked for.
    pub const ERROR_INVALID_AMOUNT: &str = "INVALID_AMOUNT";
    /// Settlement failed.
    pub const ERROR_SETTLEMENT_FAILED: &str = "SETTLEMENT_FAILED";

    /// The extension's error code for an x402 reason code (the `reason` of a refusal).
    pub fn error_code(reason: &str) -> &'static str {
        let r = reason.to_ascii_lowercase();
        if r.contains("nonce") || r.contains("replay") || r.contains("already_used") {
            ERROR_DUPLICATE_NONCE
        } else if r.contains("insufficient") || r.contains("balance") {
            ERROR_INSUFFICIENT_FUNDS
        } else if r.contains("signature") || r == "invalid_payload" {
            ERROR_INVALID_SIGNATURE
        } else if r.contains("valid_before") || r.contains("valid_after") || r.contains("expired") {
            ERROR_EXPIRED_PAYMENT
        } else if r.contains("network") || r.contains("asset") || r.contains("scheme") {
            ERROR_NETWORK_MISMATCH
        } else if r.contains("settle") {
            ERROR_SETTLEMENT_FAILED
        } else {
            ERROR_INVALID_AMOUNT
        }
    }
}

/// The protocol version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// 0.3 (the default when no version is named).
    V0_3,
    /// 1.0.
    V1_0,
}

impl Version {
    /// The version named by an `A2A-Version` value: `None` (absent) or empty is 0.3; `0.3`
    /// and `1.0` (a patch part is ignored); anything else is not supported.
    ///
    /// # Errors
    /// The value as given, when it names a version this host does not speak.
    pub fn from_header(value: Option<&str>) -> Result<Self, String> {
        let v = value.map(str::trim).unwrap_or("");
        let major_minor: Vec<&str> = v.split('.').take(2).collect();
        match major_minor.as_slice() {
            [""] => Ok(Self::V0_3),
            ["0", "3"] => Ok(Self::V0_3),
            ["1", "0"] => Ok(Self::V1_0),
            _ => Err(v.to_string()),
        }
    }

    /// `Major.Minor`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_3 => "0.3",
            Self::V1_0 => "1.0",
        }
    }
}

/// The JSON-RPC methods, each with its name in both versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `SendMessage` / `message/send`.
    SendMessage,
    /// `SendStreamingMessage` / `message/stream` (SSE).
    SendStreamingMessage,
    /// `GetTask` / `tasks/get`.
    GetTask,
    /// `ListTasks` (1.0 only).
    ListTasks,
    /// `CancelTask` / `tasks/cancel`.
    CancelTask,
    /// `SubscribeToTask` / `tasks/resubscribe` (SSE).
    SubscribeToTask,
    /// Push notification configuration (not offered: `PushNotificationNotSupported`).
    PushNotificationConfig,
    /// `GetExtendedAgentCard` / `agent/getAuthenticatedExtendedCard` (not configured).
    ExtendedAgentCard,
}

impl Method {
    /// The method called `name` in `version`, if any.
    pub fn parse(version: Version, name: &str) -> Option<Self> {
        Some(match (version, name) {
            (Version::V1_0, "SendMessage") | (Version::V0_3, "message/send") => Self::SendMessage,
            (Version::V1_0, "SendStreamingMessage") | (Version::V0_3, "message/stream") => {
                Self::SendStreamingMessage
            }
            (Version::V1_0, "GetTask") | (Version::V0_3, "tasks/get") => Self::GetTask,
            (Version::V1_0, "ListTasks") => Self::ListTasks,
            (Version::V1_0, "CancelTask") | (Version::V0_3, "tasks/cancel") => Self::CancelTask,
            (Version::V1_0, "SubscribeToTask") | (Version::V0_3, "tasks/resubscribe") => {
                Self::SubscribeToTask
            }
            (
                Version::V1_0,
                "CreateTaskPushNotificationConfig"
                | "GetTaskPushNotificationConfig"
                | "ListTaskPushNotificationConfigs"
                | "DeleteTaskPushNotificationConfig",
            )
            | (
                Version::V0_3,
                "tasks/pushNotificationConfig/set"
                | "tasks/pushNotificationConfig/get"
                | "tasks/pushNotificationConfig/list"
                | "tasks/pushNotificationConfig/delete",
            ) => Self::PushNotificationConfig,
            (Version::V1_0, "GetExtendedAgentCard")
            | (Version::V0_3, "agent/getAuthenticatedExtendedCard") => Self::ExtendedAgentCard,
            _ => return None,
        })
    }

    /// Whether the answer is an SSE stream.
    pub fn streams(self) -> bool {
        matches!(self, Self::SendStreamingMessage | Self::SubscribeToTask)
    }
}

/// A2A's JSON-RPC error codes (1.0 numbering; 0.3 shares -32001 to -32006).
pub mod codes {
    /// No such task (or not the caller's).
    pub const TASK_NOT_FOUND: i64 = -32001;
    /// The task is in a terminal state.
    pub const TASK_NOT_CANCELABLE: i64 = -32002;
    /// Push notifications are not offered.
    pub const PUSH_NOTIFICATION_NOT_SUPPORTED: i64 = -32003;
    /// The operation is not supported (e.g. a message to a finished task).
    pub const UNSUPPORTED_OPERATION: i64 = -32004;
    /// A part's media type is not accepted.
    pub const CONTENT_TYPE_NOT_SUPPORTED: i64 = -32005;
    /// The agent's answer is not valid.
    pub const INVALID_AGENT_RESPONSE: i64 = -32006;
    /// No extended card (1.0; 0.3's `AuthenticatedExtendedCardNotConfigured` has the same code).
    pub const EXTENDED_CARD_NOT_CONFIGURED: i64 = -32007;
    /// A required extension was not activated (1.0).
    pub const EXTENSION_SUPPORT_REQUIRED: i64 = -32008;
    /// The `A2A-Version` is not spoken here (1.0).
    pub const VERSION_NOT_SUPPORTED: i64 = -32009;
    /// A new task would pass a bound on stored tasks (the caller's, an agent's anonymous
    /// ones, or the host's bytes). This host's own code, in JSON-RPC's range for
    /// implementation-defined server errors (A2A defines none for it).
    pub const TASK_QUOTA_EXCEEDED: i64 = -32090;
}

/// The task states, with their names in both versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Accepted, not started.
    Submitted,
    /// Running.
    Working,
    /// Waiting for the client (here: for a payment).
    InputRequired,
    /// Finished with a result.
    Completed,
    /// Finished without one.
    Failed,
    /// Canceled by the client.
    Canceled,
    /// Refused before it ran.
    Rejected,
    /// Waiting for authentication (not used here; parsed for completeness).
    AuthRequired,
}

impl TaskState {
    /// Every state.
    pub const ALL: [Self; 8] = [
        Self::Submitted,
        Self::Working,
        Self::InputRequired,
        Self::Completed,
        Self::Failed,
        Self::Canceled,
        Self::Rejected,
        Self::AuthRequired,
    ];

    /// The 1.0 name (`TASK_STATE_*`).
    pub fn v1_name(self) -> &'static str {
        match self {
            Self::Submitted => "TASK_STATE_SUBMITTED",
            Self::Working => "TASK_STATE_WORKING",
            Self::InputRequired => "TASK_STATE_INPUT_REQUIRED",
            Self::Completed => "TASK_STATE_COMPLETED",
            Self::Failed => "TASK_STATE_FAILED",
            Self::Canceled => "TASK_STATE_CANCELED",
            Self::Rejected => "TASK_STATE_REJECTED",
            Self::AuthRequired => "TASK_STATE_AUTH_REQUIRED",
        }
    }

    /// The 0.3 name (kebab-case).
    pub fn v03_name(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Working => "working",
            Self::InputRequired => "input-required",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Rejected => "rejected",
            Self::AuthRequired => "auth-required",
        }
    }

    /// The name in `version`.
    pub fn name(self, version: Version) -> &'static str {
        match version {
            Version::V1_0 => self.v1_name(),
            Version::V0_3 => self.v03_name(),
        }
    }

    /// The state named `name` in either version.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.v1_name() == name || s.v03_name() == name)
    }

    /// Completed, failed, canceled or rejected: nothing changes any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Canceled | Self::Rejected
        )
    }

    /// Input-required or auth-required: waiting for the client; a stream ends here too.
    pub fn is_interrupted(self) -> bool {
        matches!(self, Self::InputRequired | Self::AuthRequired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_the_header_rules() {
        assert_eq!(Version::from_header(None), Ok(Version::V0_3));
        assert_eq!(Version::from_header(Some("")), Ok(Version::V0_3));
        assert_eq!(Version::from_header(Some("0.3.0")), Ok(Version::V0_3));
        assert_eq!(Version::from_header(Some("1.0")), Ok(Version::V1_0));
        assert_eq!(Version::from_header(Some("1.0.1")), Ok(Version::V1_0));
        assert_eq!(Version::from_header(Some("2.0")), Err("2.0".into()));
        assert_eq!(Version::from_header(Some("1")), Err("1".into()));
    }

    #[test]
    fn states_round_trip_in_both_versions() {
        for s in TaskState::ALL {
            assert_eq!(TaskState::parse(s.v1_name()), Some(s));
            assert_eq!(TaskState::parse(s.v03_name()), Some(s));
        }
        assert!(TaskState::Canceled.is_terminal() && !TaskState::Working.is_terminal());
    }

    #[test]
    fn methods_are_named_per_version() {
        assert_eq!(
            Method::parse(Version::V1_0, "SendMessage"),
            Some(Method::SendMessage)
        );
        assert_eq!(Method::parse(Version::V0_3, "SendMessage"), None);
        assert_eq!(
            Method::parse(Version::V1_0, "ListTasks"),
            Some(Method::ListTasks)
        );
        assert_eq!(Method::parse(Version::V0_3, "tasks/list"), None);
    }

    #[test]
    fn x402_reasons_map_to_the_extension_codes() {
        assert_eq!(
            x402::error_code("invalid_exact_evm_nonce_already_used"),
            x402::ERROR_DUPLICATE_NONCE
        );
        assert_eq!(
            x402::error_code("invalid_exact_evm_payload_signature"),
            x402::ERROR_INVALID_SIGNATURE
        );
        assert_eq!(
            x402::error_code("invalid_exact_evm_payload_authorization_value"),
            x402::ERROR_INVALID_AMOUNT
        );
    }
}
