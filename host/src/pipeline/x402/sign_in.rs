//! x402 sign-in-with-x (SIWx, `specs/extensions/sign-in-with-x.md`) on paid agents whose
//! grants say who may call them without paying (`grants.sign_in`: listed wallets, and the
//! payers of the last `after_payment_seconds`).
//!
//! - **The challenge.** Such an agent's 402 declares `extensions["sign-in-with-x"]`: `info`
//!   (`domain`, `uri` = the resource URL, `version` 1, `nonce`, `issuedAt`, `expirationTime`
//!   five minutes on, `statement`, `resources`), `supportedChains` (the price's network,
//!   `eip191`) and the `schema`, as the official SDKs declare it.
//! - **The nonce is the host's.** It is 16 random bytes and a tag: HMAC-SHA256 under the host's
//!   sealing key (the cluster key on PostgreSQL, so every replica checks another's) of a
//!   purpose label, those bytes, `issuedAt`, `expirationTime`, `uri` and the network. A
//!   sign-in counts only over a challenge this host issued, for this resource, within its five
//!   minutes. A nonce is taken once (`storage::sign_in`, shared by the replicas): a replayed
//!   sign-in is refused.
//! - **The check**, for a request with the `SIGN-IN-WITH-X` header: the domain and URI are
//!   this host's and this resource's, the chain is the price's, the nonce is authentic, the
//!   times hold, the EIP-4361 message is well formed and its EIP-191 signature recovers the
//!   address (EOA wallets; no chain access), and the grants let that address in (listed, or a
//!   payer whose last settled payment is within the current `after_payment_seconds`). Then
//!   the request runs **without a payment**, no settlement, and the agent learns the address
//!   (a CAIP-10 account, `eip155:<chain>:<address>`): a handler as its context's `caller`, an
//!   HTTP agent in the request header [`SIGNED_IN_HEADER`] (removed from every request the
//!   client sends).
//! - **A refused sign-in** is a 402 with a fresh challenge whose reason names what is wrong
//!   (`invalid_siwx_…`, `siwx_access_denied`), as the official clients expect (they pay after a
//!   402); a request that also carries a payment goes on to pay.
//! - **Payments count once money moved**: a payment settled on chain (facilitator mode, also
//!   when settled after the response) is recorded for its payer ([`PaidAccess`]); a payment
//!   only verified (verify-only mode) never lets its payer back in for free.
//! - **Only where the front hands the header over**: a paid agent's own routes
//!   ([`with_header`]); the 402s of the A2A and MCP bindings do not declare the extension.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use hypervisor_protocol::grants::SignInGrant;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::Charge;
use crate::clock::unix_millis;
use crate::error::ApiError;
use crate::pipeline::Pipeline;

/// The extension's key in `PaymentRequired.extensions`.
pub const EXTENSION: &str = x402_siwx::EXTENSION;

/// The request header in which an HTTP agent learns the wallet signed in (CAIP-10).
pub const SIGNED_IN_HEADER: &str = "x-signed-in-wallet";

/// How long a challenge's sign-in may be used (the spec's default): five minutes.
const VALID_MS: i64 = 300_000;

/// How far replicas' clocks may disagree: what is forgotten is forgotten this much later than
/// it expired by the forgetting replica's clock, so that no other replica still accepts it.
const CLOCK_MARGIN_MS: u64 = 600_000;

/// The purpose of the key that authenticates nonces.
const NONCE_PURPOSE: &[u8] = b"wasm-hypervisor/v1/siwx-nonce";

/// The sign-in access of a paid agent (from its grants), which its charge carries.
#[derive(Debug, Clone)]
pub(crate) struct SignInTarget {
    /// The agent.
    pub agent: String,
    /// Its owner ([`owner_id`]): a payment to one owner's agent does not count for another's.
    pub owner: String,
    /// Who may sign in.
    pub grant: SignInGrant,
}

/// The owner of an agent as the sign-in tables name it: the hex SHA-256 of its uncompressed key
/// (either SEC1 encoding is the same owner), or the key as stored, lowercase, if it does not
/// parse.
pub(super) fn owner_id(owner_key: &str) -> String {
    hypervisor_protocol::EncodedPublicKey::from_hex("owner_key", owner_key).map_or_else(
        |_| owner_key.to_ascii_lowercase(),
        |key| hex::encode(hypervisor_protocol::sha256(key.as_bytes())),
    )
}

/// What a settled payment records for its payer (see [`PaidAccess::record`]).
pub(in crate::pipeline) struct PaidAccess {
    store: Arc<dyn crate::storage::sign_in::SignInBackend>,
    agent: String,
    owner: String,
}

impl PaidAccess {
    /// Records that `payer` paid just now. A failure is logged: the payment itself stands.
    pub(in crate::pipeline) async fn record(&self, payer: &str) {
        let now = unix_millis();
        let forget_before = now.saturating_sub(
            hypervisor_protocol::grants::MAX_ACCESS_SECONDS * 1000 + CLOCK_MARGIN_MS,
        );
        let store = self.store.clone();
        let (agent, owner, who) = (
            self.agent.clone(),
            self.owner.clone(),
            payer.to_ascii_lowercase(),
        );
        let recorded = tokio::task::spawn_blocking(move || {
            store.record_payment(&agent, &owner, &who, now, forget_before)
        })
        .await;
        if !matches!(recorded, Ok(Ok(()))) {
            tracing::warn!(agent = %self.agent, "recording a payment for sign-in failed");
        }
    }
}

/// A request's sign-in: the header it presented, and the account signed in once checked.
#[derive(Debug, Default)]
struct Slot {
    presented: Option<String>,
    signed_in: OnceLock<String>,
}

tokio::task_local! {
    static SLOT: Arc<Slot>;
}

/// Runs `work` (a client's request to an agent's route) with the `SIGN-IN-WITH-X` header it
/// presented, if any: its paid agent's 402s declare the extension, and its header is checked.
pub async fn with_header<F: Future>(presented: Option<String>, work: F) -> F::Output {
    SLOT.scope(
        Arc::new(Slot {
            presented,
            signed_in: OnceLock::new(),
        }),
        work,
    )
    .await
}

/// The account (CAIP-10) the current request signed in as, once checked.
pub fn signed_in() -> Option<String> {
    SLOT.try_with(|s| s.signed_in.get().cloned()).ok().flatten()
}

fn presented() -> Option<String> {
    SLOT.try_with(|s| s.presented.clone()).ok().flatten()
}

/// Whether the current request came through a front that hands the header over.
fn offered() -> bool {
    SLOT.try_with(|_| ()).is_ok()
}

/// Why a sign-in was refused: a reason code (the 402's) and a message; or the host could not
/// judge it (its storage failed: not the client's fault, answered as storage errors are).
#[derive(Debug)]
pub(super) enum Refused {
    /// Refused.
    Reason { code: &'static str, message: String },
    /// Not judged.
    Unavailable(ApiError),
}

fn refused(code: &'static str, message: impl Into<String>) -> Refused {
    Refused::Reason {
        code,
        message: message.into(),
    }
}

/// A storage call in a blocking thread; its failure is [`Refused::Unavailable`].
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, crate::storage::StorageError> + Send + 'static,
) -> Result<T, Refused> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Refused::Unavailable(e.into())),
        Err(e) => Err(Refused::Unavailable(ApiError::Internal(format!(
            "sign-in storage task: {e}"
        )))),
    }
}

impl From<x402_siwx::Refusal> for Refused {
    fn from(r: x402_siwx::Refusal) -> Self {
        refused(r.code(), r.to_string())
    }
}

/// The JSON Schema of the header's payload, as the SDKs declare it.
fn schema() -> Value {
    let text = || json!({"type": "string"});
    let time = || json!({"type": "string", "format": "date-time"});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "domain": text(), "address": text(), "statement": text(),
            "uri": {"type": "string", "format": "uri"}, "version": text(), "chainId": text(),
            "type": text(), "nonce": text(), "issuedAt": time(), "expirationTime": time(),
            "notBefore": time(), "requestId": text(),
            "resources": {"type": "array", "items": {"type": "string", "format": "uri"}},
            "signature": text()
        },
        "required": ["domain", "address", "uri", "version", "chainId", "type", "nonce", "issuedAt", "signature"]
    })
}

/// The `domain` of sign-ins to the host at `base` (its public URL): host and explicit port, as
/// a browser's `URL.host`.
fn domain_of(base: &str) -> Option<String> {
    let url = url::Url::parse(base).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

impl Pipeline {
    /// The nonce's authenticator over its random part and what it binds.
    fn nonce_tag(
        &self,
        random: &str,
        issued_at: &str,
        expires: &str,
        uri: &str,
        network: &str,
    ) -> String {
        let data = [random, issued_at, expires, uri, network].join("\0");
        hex::encode(&self.sealing.derive_name(NONCE_PURPOSE, data.as_bytes())[..16])
    }

    /// The declaration of a 402 for `charge` (`None` when its agent takes no sign-in).
    pub(super) fn sign_in_declaration(&self, charge: &Charge) -> Option<Value> {
        let target = charge.sign_in.as_ref().filter(|_| offered())?;
        let domain = domain_of(self.public_base())?;
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).ok()?;
        let random = hex::encode(random);
        let now = i64::try_from(unix_millis()).unwrap_or(i64::MAX);
        let issued_at = x402_siwx::format_time(now);
        let expires = x402_siwx::format_time(now.saturating_add(VALID_MS));
        let uri = &charge.resource.url;
        let network = &charge.price.network;
        let nonce = format!(
            "{random}{}",
            self.nonce_tag(&random, &issued_at, &expires, uri, network)
        );
        Some(json!({
            "info": {
                "domain": domain,
                "uri": uri,
                "version": "1",
                "nonce": nonce,
                "issuedAt": issued_at,
                "expirationTime": expires,
                "statement": format!("Sign in to call agent {} on WASM Hypervisor", target.agent),
                "resources": [uri],
            },
            "supportedChains": [{"chainId": network, "type": "eip191"}],
            "schema": schema(),
        }))
    }

    /// Checks the current request's sign-in for `charge`: `Ok(false)` when it presented none
    /// (or the agent takes none), `Ok(true)` when it is let in without paying.
    pub(super) async fn sign_in(&self, charge: &Charge) -> Result<bool, Refused> {
        let (Some(target), Some(header)) = (charge.sign_in.as_ref(), presented()) else {
            return Ok(false);
        };
        let payload = x402_siwx::decode_header(&header)?;
        let expected = domain_of(self.public_base()).unwrap_or_default();
        let uri = &charge.resource.url;
        let network = &charge.price.network;
        for (code, what, got, want) in [
            (
                "invalid_siwx_domain_mismatch",
                "host",
                &payload.domain,
                &expected,
            ),
            ("invalid_siwx_uri_mismatch", "resource", &payload.uri, uri),
            (
                "invalid_siwx_chain_id",
                "network",
                &payload.chain_id,
                network,
            ),
        ] {
            if got != want {
                return Err(refused(
                    code,
                    format!("the sign-in is for {got:?}, this {what} is {want:?}"),
                ));
            }
        }
        // The nonce is this host's, over these times, this resource and this network.
        let expires = payload.expiration_time.as_deref().unwrap_or_default();
        let authentic = payload.nonce.len() == 64 && payload.nonce.is_char_boundary(32) && {
            let (random, tag) = payload.nonce.split_at(32);
            let want = self.nonce_tag(random, &payload.issued_at, expires, uri, network);
            bool::from(want.as_bytes().ct_eq(tag.as_bytes()))
        };
        if !authentic {
            return Err(refused(
                "invalid_siwx_nonce",
                "the nonce, issuedAt and expirationTime must be those of a challenge of this \
                 host for this resource: ask for a new one",
            ));
        }
        let now = i64::try_from(unix_millis()).unwrap_or(i64::MAX);
        let expires_ms = x402_siwx::parse_time(expires)?;
        if now > expires_ms {
            return Err(refused(
                "invalid_siwx_expired",
                "the sign-in expired: ask for a new challenge",
            ));
        }
        if let Some(not_before) = payload.not_before.as_deref()
            && now < x402_siwx::parse_time(not_before)?
        {
            return Err(refused(
                "invalid_siwx_not_yet_valid",
                "the sign-in is not valid yet (notBefore)",
            ));
        }
        let address = x402_siwx::verify(&payload)?.to_checksum(None);
        let lower = address.to_ascii_lowercase();
        // Listed, or a payer whose last settled payment is within the current window (so that
        // the owner's grants decide: `after_payment_seconds: 0` lets no payer back in).
        if !target.grant.names(&address) {
            let window = target.grant.after_payment_seconds.saturating_mul(1000);
            let paid = if window == 0 {
                None
            } else {
                let store = self.agents.sign_in.clone();
                let (agent, owner, who) = (target.agent.clone(), target.owner.clone(), lower);
                blocking(move || store.last_payment(&agent, &owner, &who)).await?
            };
            let now_u = u64::try_from(now).unwrap_or(0);
            if paid.is_none_or(|at| at.saturating_add(window) < now_u) {
                return Err(refused(
                    "siwx_access_denied",
                    format!(
                        "{address} may not call agent {} without paying: pay for this call",
                        target.agent
                    ),
                ));
            }
        }
        let store = self.agents.sign_in.clone();
        let nonce = payload.nonce.clone();
        let expires_u = u64::try_from(expires_ms).unwrap_or(0);
        let forget_before = u64::try_from(now)
            .unwrap_or(0)
            .saturating_sub(CLOCK_MARGIN_MS);
        let fresh = blocking(move || store.use_nonce(&nonce, expires_u, forget_before)).await?;
        if !fresh {
            return Err(refused(
                "invalid_siwx_nonce_reused",
                "this sign-in was already used: sign a new challenge",
            ));
        }
        let account = format!("{network}:{address}");
        tracing::debug!(agent = %target.agent, %account, "signed in with x402 sign-in-with-x");
        let _ = SLOT.try_with(|s| s.signed_in.set(account));
        Ok(true)
    }

    /// What a settled payment for `target`'s agent records for its payer.
    pub(in crate::pipeline) fn paid_access(&self, target: &SignInTarget) -> PaidAccess {
        PaidAccess {
            store: self.agents.sign_in.clone(),
            agent: target.agent.clone(),
            owner: target.owner.clone(),
        }
    }

    /// The payment of a request to a paid agent, or its sign-in instead: `Ok(None)` also when
    /// the request signed in (no payment taken); a refused sign-in without a payment is a 402
    /// naming why. Only a client's own request signs in (`direct`), never an agent's call.
    pub(in crate::pipeline) async fn verify_or_sign_in(
        &self,
        charge: Option<Charge>,
        payment: Option<crate::plugins::payments::PaymentHeader>,
        direct: bool,
    ) -> Result<Option<super::Verified>, ApiError> {
        if direct && let Some(charge) = &charge {
            match self.sign_in(charge).await {
                Ok(true) => return Ok(None),
                Ok(false) => {}
                Err(Refused::Unavailable(e)) if payment.is_none() => return Err(e),
                Err(Refused::Unavailable(e)) => {
                    tracing::warn!(error = %e, "a sign-in could not be checked; the request pays instead");
                }
                Err(Refused::Reason { code, message }) if payment.is_none() => {
                    return Err(self.payment_required(charge, code, message).await);
                }
                Err(Refused::Reason { code, .. }) => {
                    tracing::debug!(code, "sign-in refused; the request pays instead");
                }
            }
        }
        self.verify_payment(charge, payment).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_is_the_host_and_its_explicit_port() {
        assert_eq!(
            domain_of("http://127.0.0.1:3000").unwrap(),
            "127.0.0.1:3000"
        );
        assert_eq!(domain_of("https://host.example").unwrap(), "host.example");
        assert_eq!(
            domain_of("https://host.example:443").unwrap(),
            "host.example"
        );
        assert_eq!(
            domain_of("https://host.example:8443/x").unwrap(),
            "host.example:8443"
        );
        assert!(domain_of("not a url").is_none());
    }

    #[test]
    fn the_schema_requires_what_the_sdks_require() {
        let required = schema()["required"].as_array().unwrap().len();
        assert_eq!(required, 9);
    }
}
