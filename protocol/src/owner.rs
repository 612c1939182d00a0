//! Owner signatures (`docs/PROTOCOL.md` §17).
//!
//! Every deployment (clear or encrypted), every change of an agent's
//! grants or wallet, deleting an agent and reading what the owner alone may read are proven by
//! an ECDSA P-256 / SHA-256 signature (64 bytes `r || s`, hex, low-s) made with the owner's key
//! over an [`OwnerStatement`]: the host's **audience** (so a signed operation cannot be replayed
//! on another host or cluster), the action, the agent name, the signing time in Unix seconds,
//! a **sequence** number and the detail ([`crate::agents::deploy_detail`] for `deploy`: the
//! component's SHA-256 in hex and the deployment's settings). The host accepts signing times within
//! [`OWNER_SIGNATURE_WINDOW_SECONDS`] of its clock, and refuses an operation that changes the
//! agent (deploy, delete, grants, wallet) whose sequence is not greater than that of the last
//! one it accepted for the name, so a signed request cannot be replayed, and two operations in
//! the same second are ordered. An encrypted deployment is signed over the SHA-256 of the
//! component's plaintext, like a clear one: a sealed envelope alone proves nothing about who
//! wants it deployed, under which name, or in public. The settings (`public`, `price`,
//! `ttl_seconds`, `limits`) are signed as sent, so nobody on the way can make a private
//! deployment public, or change its price, lifetime or limits; `description` and `tags` (search
//! metadata) are not signed.

/// How far a signing time may be from the host's clock, seconds.
pub const OWNER_SIGNATURE_WINDOW_SECONDS: u64 = 300;

/// Header carrying an owner signature (hex) on `DELETE /agents/{name}` and
/// `GET /agents/{name}/logs`.
pub const OWNER_SIGNATURE_HEADER: &str = "x-agent-signature";
/// Header carrying the signing time (Unix seconds) with [`OWNER_SIGNATURE_HEADER`].
pub const OWNER_SIGNED_AT_HEADER: &str = "x-agent-signed-at";
/// Header carrying the sequence number (decimal) with [`OWNER_SIGNATURE_HEADER`].
pub const OWNER_SEQUENCE_HEADER: &str = "x-agent-sequence";
/// Header carrying the owner's public key (hex SEC1) with [`OWNER_SIGNATURE_HEADER`].
pub const OWNER_KEY_HEADER: &str = "x-agent-owner";
/// The largest sequence number (sequences are stored as signed 64-bit integers).
pub const MAX_OWNER_SEQUENCE: u64 = i64::MAX as u64;

/// What an owner signature authorises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerAction {
    /// Deploy (or redeploy), in the clear or encrypted.
    Deploy,
    /// Delete the agent.
    Delete,
    /// Read the agent's logs.
    Logs,
    /// Replace the agent's egress grants (detail: [`crate::grants::Grants::detail`]).
    Grants,
    /// Read the agent's grants back.
    ReadGrants,
    /// List the agent's outgoing calls and payments.
    Calls,
    /// Attach or replace the agent's wallet (detail: [`crate::wallet::wallet_detail`]).
    Wallet,
    /// Read the wallet's address, policy and spending back.
    ReadWallet,
    /// Read execution records (`GET /executions`, name empty; `GET /executions/{id}`, name the
    /// id): by the key that ran them or the owner of the agent that ran.
    ReadExecutions,
    /// Change the agent's configuration (detail: [`crate::state::config_detail`]).
    Config,
    /// Read the configuration's names, versions and hashes back.
    ReadConfig,
    /// Export the agent's key-value state, sealed to the owner's session.
    ExportState,
    /// Remove all of the agent's key-value state.
    WipeState,
    /// Import key-value state into the agent (detail: [`crate::state::import_detail`]).
    ImportState,
}

impl OwnerAction {
    /// The action's word in the signed message.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Delete => "delete",
            Self::Logs => "logs",
            Self::Grants => "grants",
            Self::ReadGrants => "read-grants",
            Self::Calls => "calls",
            Self::Wallet => "wallet",
            Self::ReadWallet => "read-wallet",
            Self::ReadExecutions => "read-executions",
            Self::Config => "config",
            Self::ReadConfig => "read-config",
            Self::ExportState => "export-state",
            Self::WipeState => "wipe-state",
            Self::ImportState => "import-state",
        }
    }
}

/// What an owner signs: one operation on one agent, for one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerStatement<'a> {
    /// The host's (or cluster's) audience, as `GET /host` gives it: a signature made for one
    /// host is refused by every other.
    pub audience: &'a str,
    /// What the owner authorises.
    pub action: OwnerAction,
    /// The agent.
    pub name: &'a str,
    /// The signing time, Unix seconds (accepted within [`OWNER_SIGNATURE_WINDOW_SECONDS`]).
    pub signed_at: u64,
    /// Orders the operations that change an agent: each must be greater than the last one
    /// the host accepted for the name (at most [`MAX_OWNER_SEQUENCE`]). Clients use the Unix
    /// time in microseconds unless they keep a counter.
    pub sequence: u64,
    /// The action's detail ([`crate::agents::deploy_detail`], [`crate::grants::Grants::detail`],
    /// [`crate::wallet::wallet_detail`]; empty for the others). May span several lines.
    pub detail: &'a str,
}

/// The owner signature of `message` (an [`OwnerStatement::message`]) by `key`: ECDSA P-256 /
/// SHA-256 with RFC 6979 nonces, in its low-s form (the only one hosts accept), as the hex of
/// the 64 bytes `r || s`.
pub fn owner_signature_hex(key: &p256::ecdsa::SigningKey, message: &[u8]) -> String {
    use p256::ecdsa::signature::Signer;
    let signature: p256::ecdsa::Signature = key.sign(message);
    hex::encode(signature.normalize_s().to_bytes())
}

impl OwnerStatement<'_> {
    /// The bytes signed: the UTF-8 lines `wasm-hypervisor/v2/agent-owner`, audience, action,
    /// name, signing time, sequence and detail, joined by `\n` (no trailing newline).
    pub fn message(&self) -> Vec<u8> {
        format!(
            "wasm-hypervisor/v2/agent-owner\n{}\n{}\n{}\n{}\n{}\n{}",
            self.audience,
            self.action.as_str(),
            self.name,
            self.signed_at,
            self.sequence,
            self.detail
        )
        .into_bytes()
    }
}
