//! Paying with x402, as x402's fetch wrappers do: on a 402, pick the offered "exact"
//! requirements (v2 from the `PAYMENT-REQUIRED` header, else v1 from the JSON body), sign an
//! EIP-3009 `TransferWithAuthorization` for them with a local secp256k1 key, and retry with the
//! signature in `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT` (v1). An offer with only "upto"
//! requirements (metered, v2) is paid with a Permit2 `PermitWitnessTransferFrom` for its
//! maximum, spendable only through the x402 upto proxy, to `payTo`, by the facilitator the
//! offer names; the server settles what the work cost, at most that.
//!
//! The server names the price, so a wallet never signs without a [`PaymentLimit`]: the most it
//! will pay (atomic units) and, optionally, the only recipient and token it pays. Requirements
//! outside the limit are refused with [`PayError::Refused`] before anything is signed.
//!
//! Shared by the client (`hypervisor-client`, paying with the user's key) and the host (paying
//! from an agent's wallet, under the owner's spending policy): one implementation of what is
//! signed, checked against the official x402 clients by the end-to-end tests.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use alloy_primitives::{Address, B256, U256};
use base64::Engine as _;
use k256::ecdsa::SigningKey;
use serde_json::{Value, json};
use x402_eip3009::{TransferWithAuthorization, token_domain};
use x402_permit2::{PermitWitnessTransferFrom, TokenPermissions, UPTO_PROXY_ADDRESS, Witness};
use zeroize::Zeroizing;

/// Why nothing was paid.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    /// The requirements are outside the limit; nothing was signed.
    #[error(transparent)]
    Refused(#[from] PaymentRefusal),
    /// The 402 or its requirements are not usable (the message says why).
    #[error("x402: {0}")]
    Invalid(String),
}

/// EIP-155 chain ids of the x402 v1 network names this client knows.
const V1_NETWORKS: &[(&str, u64)] = &[
    ("base", 8453),
    ("base-sepolia", 84532),
    ("avalanche", 43114),
    ("avalanche-fuji", 43113),
    ("polygon", 137),
    ("polygon-amoy", 80002),
    ("ethereum", 1),
    ("sepolia", 11_155_111),
];

/// The longest validity window a wallet signs, seconds: a server's `maxTimeoutSeconds` above it
/// is capped, so an authorization never stays spendable for long.
pub const MAX_VALIDITY_SECONDS: u64 = 3600;

fn bad(what: impl Into<String>) -> PayError {
    PayError::Invalid(what.into())
}

/// The most a wallet will sign for one payment. The server chooses what it asks for; anything
/// outside this limit is refused before signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentLimit {
    /// The largest amount, in the token's atomic units (for USDC, 1 = 0.000001 USDC).
    pub max_amount: u128,
    /// When set, the only recipient (`payTo`) paid.
    pub pay_to: Option<Address>,
    /// When set, the only token contract (`asset`) paid. Without it, `max_amount` counts atomic
    /// units of whatever token the server names.
    pub asset: Option<Address>,
}

impl PaymentLimit {
    /// At most `max_amount` atomic units, to any recipient, in any token.
    pub fn new(max_amount: u128) -> Self {
        Self {
            max_amount,
            pay_to: None,
            asset: None,
        }
    }

    /// Pays only `pay_to`.
    #[must_use]
    pub fn pay_to(mut self, pay_to: Address) -> Self {
        self.pay_to = Some(pay_to);
        self
    }

    /// Pays only in the token `asset`.
    #[must_use]
    pub fn asset(mut self, asset: Address) -> Self {
        self.asset = Some(asset);
        self
    }

    /// Checks requirements against the limit.
    ///
    /// # Errors
    /// The [`PaymentRefusal`] for the first term outside the limit.
    pub fn check(
        &self,
        amount: U256,
        pay_to: Address,
        asset: Address,
    ) -> Result<(), PaymentRefusal> {
        if amount > U256::from(self.max_amount) {
            return Err(PaymentRefusal::AmountAboveLimit {
                asked: amount.to_string(),
                limit: self.max_amount,
            });
        }
        if let Some(expected) = self.pay_to
            && expected != pay_to
        {
            return Err(PaymentRefusal::PayToMismatch {
                asked: pay_to.to_checksum(None),
                expected: expected.to_checksum(None),
            });
        }
        if let Some(expected) = self.asset
            && expected != asset
        {
            return Err(PaymentRefusal::AssetMismatch {
                asked: asset.to_checksum(None),
                expected: expected.to_checksum(None),
            });
        }
        Ok(())
    }
}

/// Why a wallet refused to sign what a server asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentRefusal {
    /// The amount asked is above [`PaymentLimit::max_amount`].
    #[error("the server asks {asked} atomic units, above the limit of {limit}")]
    AmountAboveLimit {
        /// The amount asked, atomic units.
        asked: String,
        /// The limit.
        limit: u128,
    },
    /// The recipient is not [`PaymentLimit::pay_to`].
    #[error("the server asks payment to {asked}, not to the expected {expected}")]
    PayToMismatch {
        /// The recipient asked.
        asked: String,
        /// The expected recipient.
        expected: String,
    },
    /// The token is not [`PaymentLimit::asset`].
    #[error("the server asks payment in the token {asked}, not in the expected {expected}")]
    AssetMismatch {
        /// The token asked.
        asked: String,
        /// The expected token.
        expected: String,
    },
    /// A payer's own rules (a spending policy, a budget) refused it; the text says which.
    #[error("{0}")]
    NotAllowed(String),
}

/// What a 402 offers.
#[derive(Debug, Clone)]
pub struct Offer {
    /// Protocol version (1 or 2).
    pub version: u8,
    /// The chosen `accepts` entry, as sent.
    pub requirements: Value,
    /// The v2 `resource` object.
    pub resource: Option<Value>,
}

impl Offer {
    /// Reads a 402: the `PAYMENT-REQUIRED` header (v2) if present, else the JSON body (v1).
    /// The first "exact" entry is chosen.
    ///
    /// # Errors
    /// [`PayError::Invalid`] if neither form is usable.
    pub fn from_402(payment_required: Option<&str>, body: &Value) -> Result<Self, PayError> {
        let (version, doc) = match payment_required {
            Some(h) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(h.trim())
                    .map_err(|_| bad("PAYMENT-REQUIRED is not base64"))?;
                let doc: Value = serde_json::from_slice(&bytes)
                    .map_err(|_| bad("PAYMENT-REQUIRED is not JSON"))?;
                (2, doc)
            }
            None if body["x402Version"] == 1 => (1, body.clone()),
            None => {
                return Err(bad(
                    "the 402 carries neither PAYMENT-REQUIRED nor a v1 body",
                ));
            }
        };
        Self::of(version, &doc)
    }

    /// Reads a PaymentRequired document given outside HTTP (the x402 A2A and MCP bindings):
    /// its `x402Version` (1 or 2) says which. The first "exact" entry is chosen, else (v2) the
    /// first "upto" one.
    ///
    /// # Errors
    /// [`PayError::Invalid`] if it is not usable.
    pub fn from_document(doc: &Value) -> Result<Self, PayError> {
        match doc["x402Version"].as_u64() {
            Some(1) => Self::of(1, doc),
            Some(2) => Self::of(2, doc),
            _ => Err(bad("x402Version must be 1 or 2")),
        }
    }

    fn of(version: u8, doc: &Value) -> Result<Self, PayError> {
        let accepts = doc["accepts"].as_array();
        let requirements = accepts
            .and_then(|a| a.iter().find(|r| r["scheme"] == "exact"))
            .or_else(|| {
                (version == 2)
                    .then(|| accepts.and_then(|a| a.iter().find(|r| r["scheme"] == "upto")))
                    .flatten()
            })
            .cloned()
            .ok_or_else(|| bad("no \"exact\" (or v2 \"upto\") payment is offered"))?;
        Ok(Self {
            version,
            resource: (version == 2).then(|| doc["resource"].clone()),
            requirements,
        })
    }

    fn chain_id(&self) -> Result<u64, PayError> {
        let network = self.requirements["network"]
            .as_str()
            .ok_or_else(|| bad("network missing"))?;
        if let Some(id) = network.strip_prefix("eip155:") {
            return id.parse().map_err(|_| bad("bad chain id"));
        }
        V1_NETWORKS
            .iter()
            .find(|(name, _)| *name == network)
            .map(|(_, id)| *id)
            .ok_or_else(|| bad(format!("unknown network {network}")))
    }

    /// What the offer asks: amount, recipient, token and network.
    ///
    /// # Errors
    /// [`PayError::Invalid`] for a field missing or malformed.
    pub fn terms(&self) -> Result<Terms, PayError> {
        let r = &self.requirements;
        let address = |k: &str| -> Result<Address, PayError> {
            r[k].as_str()
                .ok_or_else(|| bad(format!("{k} missing")))?
                .parse()
                .map_err(|_| bad(format!("{k} is not an address")))
        };
        let amount = self.amount().ok_or_else(|| bad("amount missing"))?;
        Ok(Terms {
            amount: U256::from_str_radix(amount, 10).map_err(|_| bad("bad amount"))?,
            pay_to: address("payTo")?,
            asset: address("asset")?,
            network: r["network"]
                .as_str()
                .ok_or_else(|| bad("network missing"))?
                .to_string(),
            chain_id: self.chain_id()?,
        })
    }

    /// Whether the offer is metered (x402 `upto`): its amount is a maximum, and the server
    /// settles at most that.
    pub fn is_metered(&self) -> bool {
        self.requirements["scheme"] == "upto"
    }

    /// The amount asked for (a metered offer's maximum), atomic units.
    pub fn amount(&self) -> Option<&str> {
        let key = if self.version == 2 {
            "amount"
        } else {
            "maxAmountRequired"
        };
        self.requirements[key].as_str()
    }
}

/// What an offer asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// The amount, atomic units of the token.
    pub amount: U256,
    /// The recipient.
    pub pay_to: Address,
    /// The token contract.
    pub asset: Address,
    /// The network as the offer names it (`eip155:84532` in v2, `base-sepolia` in v1).
    pub network: String,
    /// Its EIP-155 chain id.
    pub chain_id: u64,
}

/// A local secp256k1 key that pays.
pub struct Wallet {
    key: SigningKey,
}

impl Wallet {
    /// A wallet from a 32-byte private key in hex (with or without `0x`).
    ///
    /// # Errors
    /// If the key is not a valid secp256k1 scalar.
    pub fn from_hex(secret: &str) -> Result<Self, PayError> {
        let bytes = Zeroizing::new(
            hex::decode(secret.trim().trim_start_matches("0x"))
                .map_err(|_| bad("the wallet key is not hex"))?,
        );
        let key = SigningKey::from_slice(&bytes).map_err(|_| bad("not a secp256k1 key"))?;
        Ok(Self { key })
    }

    /// A wallet from a 32-byte private key.
    ///
    /// # Errors
    /// If the bytes are not a valid secp256k1 scalar.
    pub fn from_bytes(secret: &[u8]) -> Result<Self, PayError> {
        let key = SigningKey::from_slice(secret).map_err(|_| bad("not a secp256k1 key"))?;
        Ok(Self { key })
    }

    /// A new random wallet.
    ///
    /// # Errors
    /// If the OS random number generator fails.
    pub fn random() -> Result<Self, PayError> {
        Ok(Self::generate()?.0)
    }

    /// A new random wallet and its 32-byte secret, for storing it (a key file).
    ///
    /// # Errors
    /// If the OS random number generator fails.
    pub fn generate() -> Result<(Self, Zeroizing<[u8; 32]>), PayError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        loop {
            getrandom::fill(bytes.as_mut()).map_err(|_| bad("no randomness"))?;
            if let Ok(key) = SigningKey::from_slice(bytes.as_ref()) {
                return Ok((Self { key }, bytes));
            }
        }
    }

    /// The wallet's address.
    pub fn address(&self) -> Address {
        Address::from_public_key(self.key.verifying_key())
    }

    /// Signs an authorization for `offer` at time `now` (Unix seconds) and returns the header
    /// to send: its name and value. Nothing is signed unless the requirements are within
    /// `limit`. The authorization is valid from 10 minutes before `now` until the server's
    /// `maxTimeoutSeconds` (default 60) after it, capped at [`MAX_VALIDITY_SECONDS`].
    ///
    /// # Errors
    /// [`PayError::Refused`] for requirements outside `limit`;
    /// [`PayError::Invalid`] for unusable requirements.
    pub fn pay(
        &self,
        offer: &Offer,
        limit: &PaymentLimit,
        now: u64,
    ) -> Result<(&'static str, String), PayError> {
        let (name, doc) = self.payload(offer, limit, now)?;
        Ok((
            name,
            base64::engine::general_purpose::STANDARD.encode(doc.to_string()),
        ))
    }

    /// [`Self::pay`], the payment as a PaymentPayload document (for the x402 A2A and MCP
    /// bindings, which carry it in metadata), with the name of the HTTP header that would
    /// carry it.
    ///
    /// # Errors
    /// As [`Self::pay`].
    pub fn payload(
        &self,
        offer: &Offer,
        limit: &PaymentLimit,
        now: u64,
    ) -> Result<(&'static str, Value), PayError> {
        let r = &offer.requirements;
        let field = |k: &str| r[k].as_str().ok_or_else(|| bad(format!("{k} missing")));
        let address = |k: &str| -> Result<Address, PayError> {
            field(k)?
                .parse()
                .map_err(|_| bad(format!("{k} is not an address")))
        };
        let (asset, pay_to) = (address("asset")?, address("payTo")?);
        let amount = offer.amount().ok_or_else(|| bad("amount missing"))?;
        let value = U256::from_str_radix(amount, 10).map_err(|_| bad("bad amount"))?;
        limit.check(value, pay_to, asset)?;
        if offer.is_metered() {
            return self.metered_payload(offer, asset, pay_to, value, now);
        }
        let name = r["extra"]["name"]
            .as_str()
            .ok_or_else(|| bad("extra.name missing"))?;
        let version = r["extra"]["version"]
            .as_str()
            .ok_or_else(|| bad("extra.version missing"))?;
        let (valid_after, valid_before) = window(r, now);
        let nonce = random_nonce()?;
        let from = self.address();
        let message = TransferWithAuthorization {
            from,
            to: pay_to,
            value,
            validAfter: U256::from(valid_after),
            validBefore: U256::from(valid_before),
            nonce: B256::from(nonce),
        };
        let domain = token_domain(
            name.to_string(),
            version.to_string(),
            offer.chain_id()?,
            asset,
        );
        let hash = message.signing_hash(&domain);
        let signature = self.sign_hash(&hash)?;
        let payload = json!({
            "signature": signature,
            "authorization": {
                "from": from.to_checksum(None),
                "to": pay_to.to_checksum(None),
                "value": amount,
                "validAfter": valid_after.to_string(),
                "validBefore": valid_before.to_string(),
                "nonce": format!("0x{}", hex::encode(nonce)),
            },
        });
        let (name, doc) = if offer.version == 2 {
            (
                "PAYMENT-SIGNATURE",
                json!({
                    "x402Version": 2,
                    "resource": offer.resource,
                    "accepted": r,
                    "payload": payload,
                }),
            )
        } else {
            (
                "X-PAYMENT",
                json!({
                    "x402Version": 1,
                    "scheme": "exact",
                    "network": r["network"],
                    "payload": payload,
                }),
            )
        };
        Ok((name, doc))
    }
}

impl Wallet {
    /// The 65-byte signature (`r‖s‖v`, `v` 27 or 28) of `hash`, `0x` and hex.
    fn sign_hash(&self, hash: &B256) -> Result<String, PayError> {
        let (sig, recid) = self
            .key
            .sign_prehash_recoverable(hash.as_slice())
            .map_err(|_| bad("signing failed"))?;
        let mut signature = sig.to_bytes().to_vec();
        signature.push(27 + recid.to_byte());
        Ok(format!("0x{}", hex::encode(signature)))
    }

    /// The Permit2 authorization of a metered (`upto`) offer, for its maximum `value`
    /// (already checked against the limit).
    fn metered_payload(
        &self,
        offer: &Offer,
        asset: Address,
        pay_to: Address,
        value: U256,
        now: u64,
    ) -> Result<(&'static str, Value), PayError> {
        let r = &offer.requirements;
        let facilitator: Address = r["extra"]["facilitatorAddress"]
            .as_str()
            .ok_or_else(|| bad("extra.facilitatorAddress missing (an upto offer names it)"))?
            .parse()
            .map_err(|_| bad("extra.facilitatorAddress is not an address"))?;
        let (valid_after, deadline) = window(r, now);
        let nonce = U256::from_be_bytes(random_nonce()?);
        let from = self.address();
        let message = PermitWitnessTransferFrom {
            permitted: TokenPermissions {
                token: asset,
                amount: value,
            },
            spender: UPTO_PROXY_ADDRESS,
            nonce,
            deadline: U256::from(deadline),
            witness: Witness {
                to: pay_to,
                facilitator,
                validAfter: U256::from(valid_after),
            },
        };
        let hash = message.signing_hash(offer.chain_id()?);
        let signature = self.sign_hash(&hash)?;
        Ok((
            "PAYMENT-SIGNATURE",
            json!({
                "x402Version": 2,
                "resource": offer.resource,
                "accepted": r,
                "payload": {
                    "signature": signature,
                    "permit2Authorization": {
                        "from": from.to_checksum(None),
                        "permitted": {
                            "token": asset.to_checksum(None),
                            "amount": value.to_string(),
                        },
                        "spender": UPTO_PROXY_ADDRESS.to_checksum(None),
                        "nonce": nonce.to_string(),
                        "deadline": deadline.to_string(),
                        "witness": {
                            "to": pay_to.to_checksum(None),
                            "facilitator": facilitator.to_checksum(None),
                            "validAfter": valid_after.to_string(),
                        },
                    },
                },
            }),
        ))
    }
}

/// An authorization's validity window at `now`: from 10 minutes before it until the offer's
/// `maxTimeoutSeconds` (default 60) after it, capped at [`MAX_VALIDITY_SECONDS`].
fn window(requirements: &Value, now: u64) -> (u64, u64) {
    let timeout = requirements["maxTimeoutSeconds"]
        .as_u64()
        .unwrap_or(60)
        .min(MAX_VALIDITY_SECONDS);
    (now.saturating_sub(600), now.saturating_add(timeout))
}

/// 32 random bytes: an authorization's nonce.
fn random_nonce() -> Result<[u8; 32], PayError> {
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).map_err(|_| bad("no randomness"))?;
    Ok(nonce)
}

/// The replay key under which a host records a metered payment of the header value `payment`
/// (a `PAYMENT-SIGNATURE` with a Permit2 authorization): `permit2:<chain>:<from>:<nonce>`,
/// lowercase hex, as the payments component keys it. `None` for another payment.
pub fn metered_replay_key(payment: &str) -> Option<String> {
    let doc = decode_settlement(payment)?;
    let a = &doc["payload"]["permit2Authorization"];
    let chain: u64 = doc["accepted"]["network"]
        .as_str()?
        .strip_prefix("eip155:")?
        .parse()
        .ok()?;
    let from: Address = a["from"].as_str()?.parse().ok()?;
    let nonce = U256::from_str_radix(a["nonce"].as_str()?, 10).ok()?;
    Some(format!("permit2:{chain}:{from:#x}:{nonce:#x}").to_lowercase())
}

/// Decodes a `PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE` value.
pub fn decode_settlement(value: &str) -> Option<Value> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests;
