//! An agent's wallet as its owner manages it: attached with the key sealed to the owner's
//! session (`PUT /agents/{name}/wallet`), read back without the key (`GET …/wallet`). Paying
//! with it is the egress layer's work (`crate::egress`), never the agent's code.

use hypervisor_protocol::EncodedPublicKey;
use hypervisor_protocol::agents::OwnerAction;
use hypervisor_protocol::envelope::{Envelope, Role};
use hypervisor_protocol::wallet::{SpendingPolicy, WalletInfo, WalletUpload, wallet_detail};
use hypervisor_protocol::wire::decode_hex;
use zeroize::Zeroizing;

use super::{owner, registry, storage};
use crate::clock::{unix_millis, unix_seconds};
use crate::error::ApiError;
use crate::pipeline::Pipeline;
use crate::storage::wallets::amount;

/// Checks a policy: networks and assets named, amounts decimal within `i64`, addresses `0x…`.
fn check_policy(p: &SpendingPolicy) -> Result<(), ApiError> {
    let bad = |why: &str| Err(ApiError::InvalidRequest(format!("policy: {why}")));
    let address = |a: &String| a.len() == 42 && a.starts_with("0x") && hex::decode(&a[2..]).is_ok();
    if p.networks.is_empty() || p.networks.len() > 16 {
        return bad("name 1 to 16 networks");
    }
    if p.assets.is_empty() || p.assets.len() > 16 || !p.assets.iter().all(address) {
        return bad("name 1 to 16 assets, each a 0x address");
    }
    if p.payees
        .as_ref()
        .is_some_and(|v| v.len() > 64 || !v.iter().all(address))
    {
        return bad("payees are at most 64 0x addresses");
    }
    for (field, value) in [
        ("max_per_call", &p.max_per_call),
        ("max_per_day", &p.max_per_day),
        ("max_total", &p.max_total),
    ] {
        if !value.bytes().all(|b| b.is_ascii_digit()) || amount(value).is_none() {
            return bad(&format!("{field} must be a decimal integer below 2^63"));
        }
    }
    Ok(())
}

impl Pipeline {
    /// `PUT /agents/{name}/wallet`: attaches (or replaces) the agent's wallet. The key arrives
    /// sealed to the owner's session (role `wallet-key`), is checked against the signed
    /// address, sealed at rest and zeroized.
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`], [`ApiError::NotOwner`], [`ApiError::OwnerSignature`],
    /// [`ApiError::InvalidRequest`], session and envelope errors.
    pub fn attach_wallet(&self, name: &str, upload: WalletUpload) -> Result<WalletInfo, ApiError> {
        let agent = self.find_agent(name)?;
        check_policy(&upload.policy)?;
        let owner_key = EncodedPublicKey::from_hex("public_key", &upload.public_key)?;
        let proof = owner::Proof {
            key: Some(upload.public_key.clone()),
            signature: upload.signature.clone(),
            signed_at: upload.signed_at,
            sequence: upload.sequence,
        };
        self.check_owner(
            &agent.owner_key,
            OwnerAction::Wallet,
            name,
            &wallet_detail(&upload.address, &upload.policy),
            &proof,
        )?;
        let session = self.lookup_session(upload.session_id, &owner_key)?;
        let sealed = decode_hex("encrypted_key", &upload.encrypted_key)?;
        let secret =
            Zeroizing::new(Envelope::new(&session.key, session.id).open(Role::WalletKey, &sealed)?);
        let wallet = x402_payer::Wallet::from_bytes(&secret).map_err(|_| {
            ApiError::InvalidRequest("encrypted_key is not a secp256k1 private key".into())
        })?;
        let address = wallet.address().to_checksum(None);
        if !address.eq_ignore_ascii_case(&upload.address) {
            return Err(ApiError::InvalidRequest(
                "the key's address is not the signed `address`".into(),
            ));
        }
        self.agents
            .wallets
            .attach(
                name,
                &address,
                &secret,
                &upload.policy,
                Some(proof.order()),
                unix_seconds(),
            )
            .map_err(registry)?;
        tracing::info!(agent = name, %address, "agent wallet attached");
        self.wallet_info(name)
    }

    /// `GET /agents/{name}/wallet`: address, policy and spending, for the owner; never the key.
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`] (also when there is no wallet), [`ApiError::NotOwner`],
    /// [`ApiError::OwnerSignature`].
    pub fn agent_wallet(&self, name: &str, proof: &owner::Proof) -> Result<WalletInfo, ApiError> {
        let agent = self.find_agent(name)?;
        self.check_owner(&agent.owner_key, OwnerAction::ReadWallet, name, "", proof)?;
        self.wallet_info(name)
    }

    fn wallet_info(&self, name: &str) -> Result<WalletInfo, ApiError> {
        let wallets = &self.agents.wallets;
        let wallet = wallets
            .get(name)
            .map_err(storage)?
            .ok_or_else(|| ApiError::WalletNotFound(name.to_string()))?;
        let (day, total) = wallets.spent(name, unix_millis()).map_err(storage)?;
        Ok(WalletInfo {
            agent: name.to_string(),
            address: wallet.address,
            policy: wallet.policy,
            spent_last_day: day.to_string(),
            spent_total: total.to_string(),
        })
    }
}
