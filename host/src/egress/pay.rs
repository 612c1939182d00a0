//! Paying a callee's 402 from the calling agent's wallet: the host, never the agent's code,
//! reads the offer, checks it against the owner's spending policy, reserves the spend durably,
//! signs the EIP-3009 authorization (`x402-payer`, the same code the client pays with) and
//! hands back the header for the one retry.
//!
//! Order, so that no crash can overspend: policy check → spend reserved within the day and
//! total budgets (one transaction) → key opened, authorization signed, key zeroized → spend
//! marked `signed` with its nonce → the header leaves the host → spend marked `settled` (with
//! the transaction) or `unsettled` from the retry's answer. A reserved spend always counts
//! against the budgets.

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response};
use http_body_util::{BodyExt, Limited};
use hypervisor_protocol::wallet::SpendingPolicy;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};
use x402_payer::{Offer, PaymentLimit, Terms, Wallet};

use super::Shared;
use super::response::{full, internal, refusal};
use crate::clock::{unix_millis, unix_seconds};
use crate::error::ApiError;
use crate::pipeline::call::RunContext;
use crate::storage::wallets::{NewSpend, SpendError, StoredWallet, amount};

/// The most of a 402's body read to find its offer.
const MAX_CHALLENGE_BYTES: usize = 64 << 10;

/// What to do with a 402.
pub(super) enum Payment {
    /// Nothing signed: hand this response to the guest (the 402 itself, or a refusal).
    None(Response<WasiBody>),
    /// Signed: send the request again with `header`; `spend` is the spend's id.
    Signed {
        /// The payment header.
        header: (HeaderName, HeaderValue),
        /// The reserved spend.
        spend: i64,
    },
}

fn refused(why: String) -> Payment {
    Payment::None(refusal(ApiError::SpendingRefused(why)))
}

/// Checks `terms` against the wallet's policy (budgets aside: [`reserve`] checks those).
fn within_policy(wallet: &StoredWallet, terms: &Terms) -> Result<i64, String> {
    let policy = &wallet.policy;
    if !policy.networks.contains(&terms.network) {
        return Err(format!(
            "the network {} is not in the policy",
            terms.network
        ));
    }
    let asset = terms.asset.to_checksum(None);
    if !policy.assets.iter().any(|a| a.eq_ignore_ascii_case(&asset)) {
        return Err(format!("the asset {asset} is not in the policy"));
    }
    let pay_to = terms.pay_to.to_checksum(None);
    if let Some(payees) = &policy.payees
        && !payees.iter().any(|p| p.eq_ignore_ascii_case(&pay_to))
    {
        return Err(format!("the payee {pay_to} is not in the policy"));
    }
    let asked = i64::try_from(terms.amount)
        .map_err(|_| format!("the amount {} is too large", terms.amount))?;
    let max = amount(&policy.max_per_call).unwrap_or(0);
    if asked > max {
        return Err(format!("the amount {asked} is above max_per_call {max}"));
    }
    Ok(asked)
}

/// Answers a callee's 402: pays it if the run's agent has a wallet and the offer is within its
/// policy, else hands the guest the 402 (no wallet) or a `spending_refused` error.
pub(super) async fn answer(
    shared: &Shared,
    run: &RunContext,
    callee: &str,
    challenge: Response<WasiBody>,
) -> Result<Payment, HttpError> {
    let (parts, body) = challenge.into_parts();
    let body = Limited::new(body, MAX_CHALLENGE_BYTES)
        .collect()
        .await
        .map_err(|_| HttpError::HttpResponseBodySize(Some(MAX_CHALLENGE_BYTES as u64)))?
        .to_bytes();
    let unpaid = |body: Bytes| Payment::None(Response::from_parts(parts.clone(), full(body)));
    let wallets = shared.agents.wallets.clone();
    let agent = run.agent.name.clone();
    let wallet = tokio::task::spawn_blocking(move || wallets.get(&agent))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let Some(wallet) = wallet else {
        return Ok(unpaid(body));
    };
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let required = parts
        .headers
        .get("payment-required")
        .and_then(|v| v.to_str().ok());
    let Ok(offer) = Offer::from_402(required, &json) else {
        return Ok(refused(format!(
            "{callee} answered 402 without an exact x402 offer this host can pay"
        )));
    };
    let terms = match offer.terms() {
        Ok(t) => t,
        Err(e) => return Ok(refused(format!("{callee}'s offer: {e}"))),
    };
    let asked = match within_policy(&wallet, &terms) {
        Ok(a) => a,
        Err(why) => return Ok(refused(why)),
    };
    let spend = match reserve(shared, run, callee, wallet.policy.clone(), &terms, asked).await? {
        Ok(id) => id,
        Err(why) => return Ok(refused(why)),
    };
    // Signed only after the spend is durable; the key lives for this block only.
    let signed = {
        let secret = shared.agents.wallets.open_key(&wallet).map_err(internal)?;
        let payer = Wallet::from_bytes(&secret).map_err(internal)?;
        let limit = PaymentLimit::new(u128::try_from(asked).unwrap_or(0))
            .pay_to(terms.pay_to)
            .asset(terms.asset);
        payer.pay(&offer, &limit, unix_seconds())
    };
    let (name, value) = match signed {
        Ok(h) => h,
        Err(e) => {
            mark(shared, spend, "unsigned", None, None).await?;
            return Ok(refused(format!("{callee}'s offer: {e}")));
        }
    };
    mark(shared, spend, "signed", nonce_of(&value).as_deref(), None).await?;
    let header = (
        HeaderName::from_static(if name == "X-PAYMENT" {
            "x-payment"
        } else {
            "payment-signature"
        }),
        HeaderValue::from_str(&value).map_err(internal)?,
    );
    tracing::info!(agent = %run.agent.name, callee, amount = asked, "paid a callee's 402 from the agent's wallet");
    Ok(Payment::Signed { header, spend })
}

/// Reserves the spend within the budgets; `Ok(Err(why))` when over a budget.
async fn reserve(
    shared: &Shared,
    run: &RunContext,
    callee: &str,
    policy: SpendingPolicy,
    terms: &Terms,
    asked: i64,
) -> Result<Result<i64, String>, HttpError> {
    let wallets = shared.agents.wallets.clone();
    let (agent, execution, callee) = (
        run.agent.name.clone(),
        run.execution_id.clone(),
        callee.to_string(),
    );
    let (pay_to, asset, network) = (
        terms.pay_to.to_checksum(None),
        terms.asset.to_checksum(None),
        terms.network.clone(),
    );
    let result = tokio::task::spawn_blocking(move || {
        wallets.reserve(
            &policy,
            &NewSpend {
                agent: &agent,
                caller_execution: &execution,
                callee: &callee,
                pay_to: &pay_to,
                asset: &asset,
                network: &network,
                amount: asked,
                at_ms: unix_millis(),
            },
        )
    })
    .await
    .map_err(internal)?;
    match result {
        Ok(id) => Ok(Ok(id)),
        Err(SpendError::Storage(e)) => Err(internal(e)),
        Err(e) => Ok(Err(e.to_string())),
    }
}

async fn mark(
    shared: &Shared,
    spend: i64,
    state: &'static str,
    nonce: Option<&str>,
    tx: Option<&str>,
) -> Result<(), HttpError> {
    let wallets = shared.agents.wallets.clone();
    let (nonce, tx) = (nonce.map(str::to_string), tx.map(str::to_string));
    tokio::task::spawn_blocking(move || {
        wallets.update(spend, state, nonce.as_deref(), tx.as_deref())
    })
    .await
    .map_err(internal)?
    .map_err(internal)
}

/// Records the retry's outcome: `settled` with the transaction, or `unsettled`.
pub(super) async fn settled(
    shared: &Shared,
    spend: i64,
    settlement: Option<&serde_json::Value>,
) -> Result<(), HttpError> {
    let tx = settlement
        .filter(|s| s["success"] != false)
        .and_then(|s| s["transaction"].as_str());
    match tx {
        Some(tx) => mark(shared, spend, "settled", None, Some(tx)).await,
        None => mark(shared, spend, "unsettled", None, None).await,
    }
}

/// The nonce of a signed payment header (for the spend's record).
fn nonce_of(value: &str) -> Option<String> {
    let doc = decode_settlement(value)?;
    doc["payload"]["authorization"]["nonce"]
        .as_str()
        .map(str::to_string)
}

/// A base64 JSON header's document, if it decodes.
pub(super) fn decode_settlement(value: &str) -> Option<serde_json::Value> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
