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
use http::{HeaderName, HeaderValue, Response};
use http_body_util::{BodyExt, Limited};
use wasmtime_wasi_http::{Error as HttpError, WasiBody};
use x402_payer::{Offer, PaymentLimit, Terms, Wallet};

use super::Shared;
use super::response::{full, internal, refusal};
use crate::clock::{unix_millis, unix_seconds};
use crate::error::ApiError;
use crate::pipeline::call::RunContext;
use crate::storage::StorageError;
use crate::storage::wallets::{NewSpend, SpendError, StoredWallet, Wallets, amount};

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

/// What the wallet decided about one offer (blocking work: SQLite and a signature).
pub(super) enum Decision {
    /// The agent has no wallet: nothing signed.
    NoWallet,
    /// Outside the policy or the budgets, or not payable: nothing signed.
    Refused(String),
    /// Signed: the header to send, and the reserved spend.
    Signed {
        /// Header name (`X-PAYMENT` or `PAYMENT-SIGNATURE`) and value.
        header: (&'static str, String),
        /// The spend's id.
        spend: i64,
    },
}

/// Decides and, within the policy, pays `offer` for `agent`'s run `execution` calling
/// `callee`: policy, then the spend reserved durably within the budgets, then the signature,
/// then the spend marked `signed` with its nonce. Blocking (call it on a blocking thread).
///
/// # Errors
/// Storage failures (nothing signed, or a signed spend already counted).
pub(super) fn authorize(
    wallets: &Wallets,
    agent: &str,
    execution: &str,
    callee: &str,
    offer: &Offer,
) -> Result<Decision, StorageError> {
    let Some(wallet) = wallets.get(agent)? else {
        return Ok(Decision::NoWallet);
    };
    let terms = match offer.terms() {
        Ok(t) => t,
        Err(e) => return Ok(Decision::Refused(format!("{callee}'s offer: {e}"))),
    };
    let asked = match within_policy(&wallet, &terms) {
        Ok(a) => a,
        Err(why) => return Ok(Decision::Refused(why)),
    };
    let spend = NewSpend {
        agent,
        caller_execution: execution,
        callee,
        pay_to: &terms.pay_to.to_checksum(None),
        asset: &terms.asset.to_checksum(None),
        network: &terms.network,
        amount: asked,
        at_ms: unix_millis(),
    };
    let spend = match wallets.reserve(&wallet.policy, &spend) {
        Ok(id) => id,
        Err(SpendError::Storage(e)) => return Err(e),
        Err(over) => return Ok(Decision::Refused(over.to_string())),
    };
    // Signed only after the spend is durable; the key lives for this block only.
    let signed = {
        let secret = wallets.open_key(&wallet)?;
        let limit = PaymentLimit::new(u128::try_from(asked).unwrap_or(0))
            .pay_to(terms.pay_to)
            .asset(terms.asset);
        Wallet::from_bytes(&secret).and_then(|payer| payer.pay(offer, &limit, unix_seconds()))
    };
    match signed {
        Ok((name, value)) => {
            wallets.update(spend, "signed", nonce_of(&value).as_deref(), None)?;
            tracing::info!(
                agent,
                callee,
                amount = asked,
                "paying a callee from the agent's wallet"
            );
            Ok(Decision::Signed {
                header: (name, value),
                spend,
            })
        }
        Err(e) => {
            wallets.update(spend, "unsigned", None, None)?;
            Ok(Decision::Refused(format!("{callee}'s offer: {e}")))
        }
    }
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
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let required = parts
        .headers
        .get("payment-required")
        .and_then(|v| v.to_str().ok());
    let offer = Offer::from_402(required, &json);
    let wallets = shared.agents.wallets.clone();
    let (agent, execution, to) = (
        run.agent.name.clone(),
        run.execution_id.clone(),
        callee.to_string(),
    );
    let decision = match offer {
        Ok(offer) => tokio::task::spawn_blocking(move || {
            authorize(&wallets, &agent, &execution, &to, &offer)
        })
        .await
        .map_err(internal)?
        .map_err(internal)?,
        // Not payable: with a wallet that is a refusal, without one the guest gets the 402.
        Err(_) => match wallets.get(&agent).map_err(internal)? {
            None => Decision::NoWallet,
            Some(_) => Decision::Refused(format!(
                "{callee} answered 402 without an exact x402 offer this host can pay"
            )),
        },
    };
    Ok(match decision {
        Decision::NoWallet => Payment::None(Response::from_parts(parts, full(body))),
        Decision::Refused(why) => refused(why),
        Decision::Signed {
            header: (name, value),
            spend,
        } => Payment::Signed {
            header: (
                HeaderName::from_static(if name == "X-PAYMENT" {
                    "x-payment"
                } else {
                    "payment-signature"
                }),
                HeaderValue::from_str(&value).map_err(internal)?,
            ),
            spend,
        },
    })
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

/// Records the retry's outcome: `settled` with the transaction, or `unsettled`. A metered
/// payment to a callee on this host (`metered`: its replay key in this host's ledger) was
/// charged what the ledger says, at most the maximum reserved: the spend is lowered to that.
/// No response header is taken for it (a guest's answer can carry any), and a remote server's
/// charge is only its word: the spend then keeps the maximum it could take.
pub(super) async fn settled(
    shared: &Shared,
    spend: i64,
    settlement: Option<&serde_json::Value>,
    metered: Option<String>,
) -> Result<(), HttpError> {
    let succeeded = settlement.filter(|s| s["success"] != false);
    if let (Some(_), Some(key)) = (succeeded, metered) {
        let ledger = &shared.ledger;
        // Charged (durably, before any settlement step) and being or been settled.
        let state = ledger.state(&key).await.map_err(internal)?;
        if matches!(state.as_deref(), Some("settling" | "settled"))
            && let Some(amount) = ledger
                .amount(&key)
                .await
                .map_err(internal)?
                .and_then(|a| a.parse::<i64>().ok())
        {
            let wallets = shared.agents.wallets.clone();
            tokio::task::spawn_blocking(move || wallets.settled_amount(spend, amount))
                .await
                .map_err(internal)?
                .map_err(internal)?;
        }
    }
    let tx = succeeded.and_then(|s| s["transaction"].as_str());
    match tx {
        Some(tx) => mark(shared, spend, "settled", None, Some(tx)).await,
        None => mark(shared, spend, "unsettled", None, None).await,
    }
}

/// The nonce of a signed payment header (for the spend's record).
fn nonce_of(value: &str) -> Option<String> {
    let doc = decode_settlement(value)?;
    // EIP-3009 (`exact`) or Permit2 (`upto`).
    doc["payload"]["authorization"]["nonce"]
        .as_str()
        .or_else(|| doc["payload"]["permit2Authorization"]["nonce"].as_str())
        .map(str::to_string)
}

/// A base64 JSON header's document, if it decodes.
pub(super) fn decode_settlement(value: &str) -> Option<serde_json::Value> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
