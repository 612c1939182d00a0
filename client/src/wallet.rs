//! Agent wallets: attach an EVM key to an agent, sealed to a session, with the spending policy
//! the host pays its callees under (`PUT /agents/{name}/wallet`), and read it back.

use hypervisor_protocol::agents::OwnerAction;
use hypervisor_protocol::wallet::{SpendingPolicy, WalletInfo, WalletUpload, wallet_detail};
use hypervisor_protocol::{ClientSecret, Role};
use zeroize::Zeroizing;

use crate::agents::owner_signature;
use crate::error::server_error;
use crate::{Client, ClientError, Session};

impl Client {
    /// Attaches the wallet `secret_hex` (a 32-byte secp256k1 key, hex) to agent `name`, sealed
    /// to `session` (which `owner` opened), with `policy`; signed by `owner`.
    ///
    /// # Errors
    /// A key that is not a secp256k1 scalar; transport or server errors.
    pub fn attach_wallet(
        &self,
        owner: &ClientSecret,
        session: &Session,
        name: &str,
        secret_hex: &str,
        policy: &SpendingPolicy,
    ) -> Result<WalletInfo, ClientError> {
        let secret = Zeroizing::new(
            hex::decode(secret_hex.trim().trim_start_matches("0x"))
                .map_err(|_| ClientError::BadResponse("the wallet key is not hex".into()))?,
        );
        let address = x402_payer::Wallet::from_bytes(&secret)?
            .address()
            .to_checksum(None);
        let signed = owner_signature(
            owner,
            &self.audience()?,
            OwnerAction::Wallet,
            name,
            &wallet_detail(&address, policy),
        )?;
        let upload = WalletUpload {
            public_key: owner.public_key().to_hex(),
            session_id: Some(session.id),
            encrypted_key: hex::encode(session.envelope().seal(Role::WalletKey, &secret)?),
            address,
            policy: policy.clone(),
            signature: signed.signature,
            signed_at: signed.signed_at,
            sequence: signed.sequence,
        };
        let (status, _, json) = self.put_json_with(
            &format!("/agents/{name}/wallet"),
            &upload,
            &[(
                hypervisor_protocol::agents::OWNER_KEY_HEADER,
                owner.public_key().to_hex(),
            )],
        )?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        serde_json::from_value(json).map_err(|e| ClientError::BadResponse(format!("wallet: {e}")))
    }

    /// `GET /agents/{name}/wallet`: address, policy and spending, for the owner.
    ///
    /// # Errors
    /// Transport or server errors.
    pub fn agent_wallet(
        &self,
        owner: &ClientSecret,
        name: &str,
    ) -> Result<WalletInfo, ClientError> {
        let (status, json) =
            self.owner_request("GET", owner, OwnerAction::ReadWallet, name, "/wallet")?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        serde_json::from_value(json).map_err(|e| ClientError::BadResponse(format!("wallet: {e}")))
    }
}
