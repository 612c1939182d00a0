//! Egress grants: what a deployed agent may reach with its outgoing `wasi:http` requests, and
//! which agents may call it (`docs/PROTOCOL.md` §8c).
//!
//! Grants are part of an agent's manifest: sent with the deployment (`DeployRequest::grants`),
//! covered by the owner's signature ([`Grants::detail`] is appended to the deployment's detail),
//! changed only by a signed update (`PUT /agents/{name}/grants`, action [`OwnerAction::Grants`])
//! and read back only by the owner (`GET /agents/{name}/grants`, action
//! [`OwnerAction::ReadGrants`]).
//!
//! [`OwnerAction::Grants`]: crate::agents::OwnerAction::Grants
//! [`OwnerAction::ReadGrants`]: crate::agents::OwnerAction::ReadGrants

use serde::{Deserialize, Serialize};

/// The reserved authority suffix of agents on the same host: `http://NAME.agents.internal/…`
/// reaches agent `NAME`'s routes (`/agents/NAME/…`), dispatched in-process.
pub const AGENTS_AUTHORITY_SUFFIX: &str = ".agents.internal";

/// The reserved authority of the host's own discovery routes (`http://hypervisor.internal/search`).
pub const HOST_AUTHORITY: &str = "hypervisor.internal";

/// The header a local call's response carries with the caller-visible SHA-256 (hex) of the
/// response body, as recorded in the caller's call ledger.
pub const CALL_BODY_SHA256_HEADER: &str = "x-call-body-sha256";

/// Most entries in each list of a [`Grants`].
pub const MAX_GRANT_ENTRIES: usize = 32;

/// An agent named with its owner's key: a grant by name alone could be taken over by whoever
/// deploys the name after its owner deletes it, so both must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRef {
    /// The agent's name.
    pub name: String,
    /// Its owner's P-256 public key (SEC1, hex; compressed and uncompressed forms of one key
    /// are the same key).
    pub owner_key: String,
}

impl AgentRef {
    fn line(&self) -> String {
        format!("{}:{}", self.name, self.owner_key.to_ascii_lowercase())
    }
}

/// What an agent may reach, and who may call it. Everything not listed is denied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Agents on this host it may call (`http://NAME.agents.internal/…`).
    #[serde(
        default,
        deserialize_with = "crate::bounded::vec::<_, _, MAX_GRANT_ENTRIES>"
    )]
    pub agents: Vec<AgentRef>,
    /// Remote origins it may reach (`https://host[:port]`; `http` only for loopback hosts on
    /// hosts configured to allow it). Compared exactly on scheme, host and port.
    #[serde(
        default,
        deserialize_with = "crate::bounded::vec::<_, _, MAX_GRANT_ENTRIES>"
    )]
    pub origins: Vec<String>,
    /// Whether it may use the host's search (`http://hypervisor.internal/search`).
    #[serde(default)]
    pub search: bool,
    /// The agents allowed to call this one. Absent: any agent whose own grants name this one.
    /// Present (even empty): only these. Clients' direct invocations are not affected.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::bounded::option_vec::<_, _, MAX_GRANT_ENTRIES>"
    )]
    pub callers: Option<Vec<AgentRef>>,
    /// Other hypervisors it may call, each only while it attests one of the measurements.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::bounded::vec::<_, _, MAX_GRANT_ENTRIES>"
    )]
    pub hypervisors: Vec<HypervisorGrant>,
    /// Who may call it without paying by signing in with its wallet (x402 sign-in-with-x,
    /// `docs/PROTOCOL.md` §6b). Absent: nobody; every paid call pays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in: Option<SignInGrant>,
}

/// The most seconds of access a payment may open ([`SignInGrant::after_payment_seconds`]):
/// one year.
pub const MAX_ACCESS_SECONDS: u64 = 365 * 24 * 3600;

/// Access to a paid agent without paying, for callers that prove their wallet with x402
/// sign-in-with-x.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInGrant {
    /// EVM addresses (`0x` and 40 hex digits, any case) that may call it without paying.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::bounded::vec::<_, _, MAX_GRANT_ENTRIES>"
    )]
    pub wallets: Vec<String>,
    /// How long after a paid call its payer may call again without paying (0: never), at most
    /// [`MAX_ACCESS_SECONDS`]. Each paid call extends its payer's window.
    #[serde(default)]
    pub after_payment_seconds: u64,
}

impl SignInGrant {
    /// Whether `address` (any case) is one of [`Self::wallets`].
    pub fn names(&self, address: &str) -> bool {
        self.wallets.iter().any(|w| w.eq_ignore_ascii_case(address))
    }
}

/// Another WASM Hypervisor an agent may call: requests to its origin are sealed to a
/// verifiable session opened with it, after its attestation is checked against the grant's
/// reference value sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HypervisorGrant {
    /// Its origin (`https://host[:port]`; `http` on loopback where the host allows it).
    pub origin: String,
    /// The reference value sets accepted (`crate::reference`, 1 to 8): the remote's platform
    /// measurements must match one.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::bounded::vec::<_, _, MAX_GRANT_ENTRIES>"
    )]
    pub reference_values: Vec<crate::reference::ReferenceValues>,
    /// The old form: SHA-256s (hex) of host binaries, a value the remote writes itself. Still
    /// read from stored grants so that a call through one is refused with
    /// `remote_grant_outdated`; refused in new grants.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::bounded::vec::<_, _, MAX_GRANT_ENTRIES>"
    )]
    pub measurements: Vec<String>,
    /// Whether simulated evidence is accepted from it (development and tests only).
    #[serde(default)]
    pub allow_simulated: bool,
}

impl Grants {
    /// The signed text of these grants, four lines (no trailing newline):
    ///
    /// ```text
    /// agents=<name>:<owner_key_hex_lowercase>,...   (empty after `=` when none)
    /// origins=<origin>,...                          (as sent)
    /// search=<true|false>
    /// callers=<- | name:owner_key,...>              (`-` when absent, empty when none)
    /// hypervisors=<origin>|<r1>+<r2>|<true|false>,...  (only when there are any)
    /// sign_in=<after_payment_seconds>|<wallet_lowercase>,...  (only when present)
    /// ```
    ///
    /// Each `rN` is `ref:` and the SHA-256 (hex) of a reference set's RFC 8785 canonical JSON
    /// ([`crate::reference::ReferenceValues::digest`]), in order; an old-form grant's
    /// measurements follow as they are (lowercase).
    pub fn detail(&self) -> String {
        let list = |refs: &[AgentRef]| {
            refs.iter()
                .map(AgentRef::line)
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut detail = format!(
            "agents={}\norigins={}\nsearch={}\ncallers={}",
            list(&self.agents),
            self.origins.join(","),
            self.search,
            self.callers
                .as_deref()
                .map_or_else(|| "-".to_string(), list),
        );
        if !self.hypervisors.is_empty() {
            let remote = self
                .hypervisors
                .iter()
                .map(|h| {
                    let measurements: Vec<String> = h
                        .reference_values
                        .iter()
                        .map(|r| format!("ref:{}", hex::encode(r.digest())))
                        .chain(h.measurements.iter().map(|m| m.to_ascii_lowercase()))
                        .collect();
                    format!(
                        "{}|{}|{}",
                        h.origin,
                        measurements.join("+"),
                        h.allow_simulated
                    )
                })
                .collect::<Vec<_>>()
                .join(",");
            detail.push_str("\nhypervisors=");
            detail.push_str(&remote);
        }
        if let Some(sign_in) = &self.sign_in {
            let wallets: Vec<String> = sign_in
                .wallets
                .iter()
                .map(|w| w.to_ascii_lowercase())
                .collect();
            detail.push_str(&format!(
                "\nsign_in={}|{}",
                sign_in.after_payment_seconds,
                wallets.join(",")
            ));
        }
        detail
    }

    /// Whether any list is longer than [`MAX_GRANT_ENTRIES`].
    pub fn too_long(&self) -> bool {
        self.agents.len() > MAX_GRANT_ENTRIES
            || self.origins.len() > MAX_GRANT_ENTRIES
            || self.hypervisors.len() > MAX_GRANT_ENTRIES
            || self
                .sign_in
                .as_ref()
                .is_some_and(|s| s.wallets.len() > MAX_GRANT_ENTRIES)
            || self
                .callers
                .as_ref()
                .is_some_and(|c| c.len() > MAX_GRANT_ENTRIES)
    }
}

/// `PUT /agents/{name}/grants`: replaces an agent's grants, signed by its owner over
/// `(grants, name, grants.detail())`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantsUpdate {
    /// The new grants.
    pub grants: Grants,
    /// The owner's signature (hex, 64 bytes `r || s`, low-s).
    pub signature: String,
    /// Its signing time, Unix seconds.
    pub signed_at: u64,
    /// Its sequence number ([`crate::agents::OwnerStatement::sequence`]).
    pub sequence: u64,
}

/// One outgoing call of an agent, as the owner lists it (`GET /agents/{name}/calls`) and as an
/// execution record links it (`GET /executions/{id}`, `calls`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The calling run's execution id.
    pub caller_execution: String,
    /// The caller agent.
    pub caller: String,
    /// What was called: an agent's name, `hypervisor.internal`, or a remote origin.
    pub callee: String,
    /// The path called (no query).
    pub path: String,
    /// The response's status (0 when no response came back).
    pub status: u16,
    /// The callee's execution id (`x-execution-id` of its response), when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callee_execution: Option<String>,
    /// SHA-256 of the response body as the caller received it, hex. For an invocation it is
    /// the callee record's `commitment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_sha256: Option<String>,
    /// The settlement header of a paid call, decoded (transaction, payer, network), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement: Option<serde_json::Value>,
    /// When the call was made, Unix milliseconds.
    pub at_ms: u64,
    /// How long it took, microseconds.
    pub duration_us: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_is_four_lines_in_a_fixed_order() {
        let g = Grants {
            agents: vec![AgentRef {
                name: "seller".into(),
                owner_key: "04AB".into(),
            }],
            origins: vec![
                "https://api.example.com".into(),
                "http://127.0.0.1:9".into(),
            ],
            search: true,
            callers: None,
            hypervisors: Vec::new(),
            sign_in: None,
        };
        assert_eq!(
            g.detail(),
            "agents=seller:04ab\norigins=https://api.example.com,http://127.0.0.1:9\nsearch=true\ncallers=-"
        );
        // Sign-in access adds its line only when present: wallets lowercase, as listed.
        let signed_in = Grants {
            sign_in: Some(SignInGrant {
                wallets: vec!["0xAbC0000000000000000000000000000000000001".into()],
                after_payment_seconds: 3600,
            }),
            ..g.clone()
        };
        assert_eq!(
            signed_in.detail(),
            format!(
                "{}\nsign_in=3600|0xabc0000000000000000000000000000000000001",
                g.detail()
            )
        );
        assert!(
            signed_in
                .sign_in
                .as_ref()
                .unwrap()
                .names("0xABC0000000000000000000000000000000000001")
        );
        let none = Grants {
            callers: Some(vec![]),
            ..Grants::default()
        };
        assert_eq!(none.detail(), "agents=\norigins=\nsearch=false\ncallers=");
        let parsed: Grants =
            serde_json::from_str(r#"{"callers":[{"name":"a","owner_key":"02cd"}]}"#).unwrap();
        assert_eq!(
            parsed.detail(),
            "agents=\norigins=\nsearch=false\ncallers=a:02cd"
        );
        assert!(serde_json::from_str::<Grants>(r#"{"agent":[]}"#).is_err());
    }
}
