//! An agent's egress grants as its owner manages them: checked at deployment and on update
//! (`PUT /agents/{name}/grants`), read back (`GET /agents/{name}/grants`), and the ledger of
//! the agent's outgoing calls (`GET /agents/{name}/calls`). Applying the grants to requests is
//! the egress layer's work (`crate::egress`).

use hypervisor_protocol::agents::{OwnerAction, valid_name};
use hypervisor_protocol::grants::{
    AgentRef, CallRecord, Grants, GrantsUpdate, MAX_ACCESS_SECONDS, MAX_GRANT_ENTRIES,
};
use hypervisor_protocol::{EncodedPublicKey, grants::HOST_AUTHORITY};

use super::{owner, registry, storage};
use crate::clock::unix_seconds;
use crate::config::EgressConfig;
use crate::error::ApiError;
use crate::net::Origin;
use crate::pipeline::Pipeline;

/// Whether `text` is an EVM address: `0x` and 40 hex digits, any case.
fn evm_address(text: &str) -> bool {
    text.len() == 42 && text.starts_with("0x") && text[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks grants before they are signed into the catalog: valid names and keys, origins that
/// are `https` (or loopback `http` where the host allows it), no reserved authority, bounded
/// lists.
///
/// # Errors
/// [`ApiError::InvalidRequest`] naming the first bad entry.
pub fn check(grants: &Grants, config: &EgressConfig) -> Result<(), ApiError> {
    let bad = |why: String| Err(ApiError::InvalidRequest(format!("grants: {why}")));
    if grants.too_long() {
        return bad(format!("at most {MAX_GRANT_ENTRIES} entries per list"));
    }
    let refs = grants.agents.iter().chain(grants.callers.iter().flatten());
    for AgentRef { name, owner_key } in refs {
        if !valid_name(name) {
            return bad(format!("{name:?} is not an agent name"));
        }
        if EncodedPublicKey::from_hex("owner_key", owner_key).is_err() {
            return bad(format!("the owner_key of {name} is not a P-256 public key"));
        }
    }
    for remote in &grants.hypervisors {
        if !remote.measurements.is_empty() {
            return bad(format!(
                "{:?}: `measurements` (host binaries' SHA-256) is no longer accepted: the remote \
                 writes that value itself, so any program in any TEE can claim it. Name \
                 `reference_values` instead: reference value sets of platform-measured values \
                 (docs/PROTOCOL.md §12b)",
                remote.origin
            ));
        }
        let sets = &remote.reference_values;
        if sets.is_empty() || sets.len() > 8 {
            return bad(format!(
                "{:?}: name 1 to 8 reference value sets",
                remote.origin
            ));
        }
        for (i, set) in sets.iter().enumerate() {
            if let Err(e) = set.decode(i) {
                return bad(format!("{:?}: {e}", remote.origin));
            }
        }
    }
    if let Some(sign_in) = &grants.sign_in {
        if sign_in.after_payment_seconds > MAX_ACCESS_SECONDS {
            return bad(format!(
                "sign_in.after_payment_seconds is at most {MAX_ACCESS_SECONDS} (a year)"
            ));
        }
        if let Some(wallet) = sign_in.wallets.iter().find(|w| !evm_address(w)) {
            return bad(format!(
                "sign_in.wallets: {wallet:?} is not an EVM address (0x and 40 hex digits)"
            ));
        }
    }
    let hypervisors = grants.hypervisors.iter().map(|h| &h.origin);
    for url in grants.origins.iter().chain(hypervisors) {
        let origin = match Origin::parse(url) {
            Ok(o) => o,
            Err(e) => return bad(e.to_string()),
        };
        let rest = url.split_once("://").map_or("", |(_, r)| r);
        if rest
            .find(['/', '?', '#'])
            .is_some_and(|i| &rest[i..] != "/")
        {
            return bad(format!("{url:?}: an origin has no path"));
        }
        let host = origin.host();
        if host.ends_with(hypervisor_protocol::grants::AGENTS_AUTHORITY_SUFFIX)
            || host == HOST_AUTHORITY
        {
            return bad(format!(
                "{url:?} is reserved: grant agents by name and search with `search`"
            ));
        }
        let allowed = origin.is_https() || (config.allow_loopback_http && origin.is_loopback());
        if !allowed {
            return bad(format!(
                "{url:?}: remote origins must be https{}",
                if config.allow_loopback_http {
                    " (http only on loopback)"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(())
}

impl Pipeline {
    /// `GET /agents/{name}/grants`: the owner reads the grants back.
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`], [`ApiError::NotOwner`], [`ApiError::OwnerSignature`].
    pub fn agent_grants(&self, name: &str, proof: &owner::Proof) -> Result<Grants, ApiError> {
        let agent = self.find_agent(name)?;
        self.check_owner(&agent.owner_key, OwnerAction::ReadGrants, name, "", proof)?;
        Ok(agent.grants)
    }

    /// `PUT /agents/{name}/grants`: the owner replaces the grants (signed over their detail,
    /// later than the last owner operation on the name). Takes effect for runs that start
    /// after it.
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`], [`ApiError::NotOwner`], [`ApiError::OwnerSignature`],
    /// [`ApiError::InvalidRequest`] for bad grants.
    pub fn update_grants(
        &self,
        name: &str,
        key: Option<String>,
        update: GrantsUpdate,
    ) -> Result<Grants, ApiError> {
        let agent = self.find_agent(name)?;
        check(&update.grants, &self.config.egress)?;
        let proof = owner::Proof {
            key,
            signature: update.signature,
            signed_at: update.signed_at,
            sequence: update.sequence,
        };
        self.check_owner(
            &agent.owner_key,
            OwnerAction::Grants,
            name,
            &update.grants.detail(),
            &proof,
        )?;
        let changed = self
            .agents
            .catalog
            .set_grants(name, &update.grants, proof.order(), unix_seconds())
            .map_err(registry);
        self.agents.changed(name).map_err(storage)?;
        if !changed? {
            return Err(ApiError::AgentNotFound(name.to_string()));
        }
        tracing::info!(agent = name, "agent grants replaced");
        Ok(update.grants)
    }

    /// `GET /agents/{name}/calls`: the newest outgoing calls of the agent (at most `limit`,
    /// newest first), for the owner only.
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`], [`ApiError::NotOwner`], [`ApiError::OwnerSignature`].
    pub async fn agent_calls(
        &self,
        name: &str,
        proof: &owner::Proof,
        limit: u32,
    ) -> Result<Vec<CallRecord>, ApiError> {
        let agent = self.find_agent(name)?;
        self.check_owner(&agent.owner_key, OwnerAction::Calls, name, "", proof)?;
        // Calls are queued on the records' writer: what was queued before is visible.
        self.agents.records.flush().await.map_err(storage)?;
        let ledger = self.agents.calls.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || ledger.by_caller(&name, limit.clamp(1, 1000)))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(storage)
    }

    /// The calls run `execution` made (the links of its record to its callees' records).
    ///
    /// # Errors
    /// [`ApiError::Internal`] if the database fails.
    pub async fn calls_of(&self, execution: &str) -> Result<Vec<CallRecord>, ApiError> {
        self.agents.records.flush().await.map_err(storage)?;
        let ledger = self.agents.calls.clone();
        let execution = execution.to_string();
        tokio::task::spawn_blocking(move || ledger.by_execution(&execution))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(storage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> String {
        hypervisor_protocol::ClientSecret::generate()
            .unwrap()
            .public_key()
            .to_hex()
    }

    #[test]
    fn grants_are_checked_entry_by_entry() {
        let strict = EgressConfig::default();
        let loose = EgressConfig {
            allow_loopback_http: true,
            ..EgressConfig::default()
        };
        let with_origin = |o: &str| Grants {
            origins: vec![o.to_string()],
            ..Grants::default()
        };
        assert!(check(&with_origin("https://api.example.com"), &strict).is_ok());
        assert!(check(&with_origin("https://api.example.com/"), &strict).is_ok());
        assert!(check(&with_origin("https://api.example.com/v1"), &strict).is_err());
        assert!(check(&with_origin("http://api.example.com"), &loose).is_err());
        assert!(check(&with_origin("http://127.0.0.1:9"), &strict).is_err());
        assert!(check(&with_origin("http://127.0.0.1:9"), &loose).is_ok());
        assert!(check(&with_origin("https://x.agents.internal"), &loose).is_err());
        assert!(check(&with_origin("ftp://a"), &loose).is_err());
        let agent = |name: &str, owner_key: String| Grants {
            agents: vec![AgentRef {
                name: name.into(),
                owner_key,
            }],
            ..Grants::default()
        };
        assert!(check(&agent("seller", key()), &strict).is_ok());
        assert!(check(&agent("Seller", key()), &strict).is_err());
        assert!(check(&agent("seller", "04ab".into()), &strict).is_err());
        let many = Grants {
            origins: vec!["https://a.example".into(); MAX_GRANT_ENTRIES + 1],
            ..Grants::default()
        };
        assert!(check(&many, &strict).is_err());
    }
}
