//! Agent wallets (`docs/PROTOCOL.md` §8d): an EVM key the owner uploads sealed to a session,
//! kept sealed at rest, with which the host — never the agent's code — pays the x402 offers
//! of the agent's callees, within the owner's [`SpendingPolicy`].

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The most networks, and the most assets, a spending policy names.
pub const MAX_POLICY_ENTRIES: usize = 16;
/// The most payees a spending policy names.
pub const MAX_PAYEES: usize = 64;

/// What the host may pay from an agent's wallet. Amounts are decimal strings of the token's
/// atomic units (for USDC, 1 = 0.000001 USDC), at most `i64::MAX`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendingPolicy {
    /// Networks it pays on, as offers name them (`eip155:84532`, `base-sepolia`, …).
    #[serde(deserialize_with = "crate::bounded::vec::<_, _, MAX_POLICY_ENTRIES>")]
    pub networks: Vec<String>,
    /// Token contracts it pays in (`0x…`).
    #[serde(deserialize_with = "crate::bounded::vec::<_, _, MAX_POLICY_ENTRIES>")]
    pub assets: Vec<String>,
    /// The most one call may cost.
    pub max_per_call: String,
    /// The most all calls of the last 24 hours may cost together.
    pub max_per_day: String,
    /// The most the wallet ever pays.
    pub max_total: String,
    /// When set, the only recipients (`payTo`, `0x…`) it pays.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::bounded::option_vec::<_, _, MAX_PAYEES>"
    )]
    pub payees: Option<Vec<String>>,
}

impl SpendingPolicy {
    /// The signed text of the policy (no trailing newline; addresses lowercase):
    ///
    /// ```text
    /// networks=<n>,...
    /// assets=<0x…>,...
    /// max_per_call=<decimal>
    /// max_per_day=<decimal>
    /// max_total=<decimal>
    /// payees=<- | 0x…,...>
    /// ```
    pub fn detail(&self) -> String {
        let lower = |v: &[String]| {
            v.iter()
                .map(|a| a.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "networks={}\nassets={}\nmax_per_call={}\nmax_per_day={}\nmax_total={}\npayees={}",
            self.networks.join(","),
            lower(&self.assets),
            self.max_per_call,
            self.max_per_day,
            self.max_total,
            self.payees
                .as_deref()
                .map_or_else(|| "-".to_string(), lower),
        )
    }
}

/// The detail an owner signs to attach a wallet (action `wallet`): the wallet's address
/// (lowercase `0x…`) on the first line, then [`SpendingPolicy::detail`].
pub fn wallet_detail(address: &str, policy: &SpendingPolicy) -> String {
    format!(
        "address={}\n{}",
        address.to_ascii_lowercase(),
        policy.detail()
    )
}

/// `PUT /agents/{name}/wallet`: attaches (or replaces) an agent's wallet.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletUpload {
    /// The owner's P-256 key, which owns the session `encrypted_key` is sealed to.
    pub public_key: String,
    /// That session (default: the newest of `public_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    /// The 32-byte secp256k1 private key, sealed to the session (envelope, role `wallet-key`,
    /// hex).
    pub encrypted_key: String,
    /// The key's address (`0x…`); the host checks it against the key.
    pub address: String,
    /// What the host may pay with it.
    pub policy: SpendingPolicy,
    /// The owner's signature over `(wallet, name, wallet_detail(address, policy))`.
    pub signature: String,
    /// Its signing time, Unix seconds.
    pub signed_at: u64,
    /// Its sequence number ([`crate::agents::OwnerStatement::sequence`]).
    pub sequence: u64,
}

/// What the owner reads back (`GET /agents/{name}/wallet`): never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletInfo {
    /// The agent.
    pub agent: String,
    /// The wallet's address.
    pub address: String,
    /// Its policy.
    pub policy: SpendingPolicy,
    /// Atomic units committed in the last 24 hours.
    pub spent_last_day: String,
    /// Atomic units committed in all.
    pub spent_total: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_detail_is_fixed_lines() {
        let policy = SpendingPolicy {
            networks: vec!["eip155:84532".into()],
            assets: vec!["0x036CbD53842c5426634e7C541eC2c73a3D5a1a36".into()],
            max_per_call: "10000".into(),
            max_per_day: "50000".into(),
            max_total: "1000000".into(),
            payees: None,
        };
        assert_eq!(
            wallet_detail("0xAbC", &policy),
            "address=0xabc\nnetworks=eip155:84532\n\
             assets=0x036cbd53842c5426634e7c541ec2c73a3d5a1a36\nmax_per_call=10000\n\
             max_per_day=50000\nmax_total=1000000\npayees=-"
        );
    }
}
