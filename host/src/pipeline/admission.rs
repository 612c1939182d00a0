//! Steps 0–4 of every code route, ending with admission: the operator's policy decides on the
//! request's metadata (never its plaintext) before anything is compiled or run. A denial is
//! `403 policy_denied`; a policy that fails is `503 policy_unavailable`: the host fails closed.

use std::time::Duration;

use super::Pipeline;
use super::payment::Paid;
use super::request::{Opened, RouteKind, Sealed};
use crate::attestation::signer::unix_now_ms;
use crate::engine::RunLimits;
use crate::error::ApiError;
use crate::plugins::payments::PaymentHeader;
use crate::plugins::policy::{Decision, Limits, Payment, ProgramKind, RequestInfo};

/// A request that passed steps 0–4: paid (on paid routes), opened, admitted by the policy, its
/// payment recorded. Only running, sealing and settling remain.
pub(super) struct Admitted {
    /// The decrypted request.
    pub opened: Opened,
    /// Limits to run with and the policy's receipt field.
    pub admission: Admission,
    /// The verified, recorded payment (paid routes).
    pub paid: Option<Paid>,
}

/// What admission lets through.
pub(super) struct Admission {
    /// The limits to run with: the request's, tightened by the policy.
    pub limits: RunLimits,
    /// The receipt's `policy` field on verifiable routes: `allow component=<hex> rules=<hex>`;
    /// `None` on other routes and when no policy is configured.
    pub policy: Option<String>,
}

impl Pipeline {
    /// Steps 0–4 shared by every code route: verify the payment (paid routes), find the session
    /// and open the request, run `validate` on it (a route's own checks), ask the policy, and
    /// record the payment. Nothing is recorded for a request refused on the way.
    pub(super) async fn admit_request(
        &self,
        sealed: Sealed<'_>,
        route: RouteKind,
        kind: ProgramKind,
        payment: Option<PaymentHeader>,
        validate: impl FnOnce(&Opened) -> Result<(), ApiError>,
    ) -> Result<Admitted, ApiError> {
        let paid = self.verify_payment(route, payment).await?;
        let opened = self.open(sealed, route)?;
        validate(&opened)?;
        let admission = self.admit(&opened, route, kind, paid.as_ref()).await?;
        if let Some(paid) = &paid {
            self.reserve_payment(paid, route).await?;
        }
        Ok(Admitted {
            opened,
            admission,
            paid,
        })
    }

    /// Asks the policy in force about `opened`.
    async fn admit(
        &self,
        opened: &Opened,
        route: RouteKind,
        kind: ProgramKind,
        paid: Option<&Paid>,
    ) -> Result<Admission, ApiError> {
        let Some(policy) = self.policy.get() else {
            return Ok(Admission {
                limits: opened.limits,
                policy: None,
            });
        };
        let asked = opened.limits;
        let info = RequestInfo {
            route: route.path.to_string(),
            verifiable: route.verifiable,
            kind,
            program_hash: hex::encode(opened.digests.program),
            program_size: u64::try_from(opened.program.len()).unwrap_or(u64::MAX),
            agent: None,
            caller_key: opened.client_key.to_hex(),
            argument_count: u32::try_from(opened.args.len()).unwrap_or(u32::MAX),
            input_size: opened.input_size(),
            limits: Limits {
                time_ms: Some(u64::try_from(asked.time.as_millis()).unwrap_or(u64::MAX)),
                memory_bytes: Some(asked.memory_bytes),
                fuel: asked.fuel,
            },
            payment: paid.map(|p| Payment {
                amount: p.verified.amount.clone(),
                asset: self.config.payments.price.asset.clone(),
                network: p.verified.network.clone(),
                payer: p.verified.payer.clone(),
            }),
            now_unix_ms: unix_now_ms(),
        };
        match policy.evaluate(&info).await {
            Ok(Decision::Allow(tighter)) => Ok(Admission {
                limits: tighten(asked, &tighter),
                // Only receipts carry it: not formatted on the other routes.
                policy: route.verifiable.then(|| {
                    format!(
                        "allow component={} rules={}",
                        hex::encode(policy.component_hash()),
                        hex::encode(policy.rules_hash())
                    )
                }),
            }),
            Ok(Decision::Deny(denial)) => Err(ApiError::PolicyDenied {
                rule: denial.rule,
                reason: denial.reason,
            }),
            Err(e) => Err(ApiError::PolicyUnavailable(e.to_string())),
        }
    }
}

/// The minimum of each limit; the policy can only tighten. Fuel stays off when the engine does
/// not meter it.
fn tighten(asked: RunLimits, tighter: &Limits) -> RunLimits {
    let min = |a: u64, t: Option<u64>| t.map_or(a, |t| a.min(t.max(1)));
    RunLimits {
        time: Duration::from_millis(min(
            u64::try_from(asked.time.as_millis()).unwrap_or(u64::MAX),
            tighter.time_ms,
        )),
        memory_bytes: min(asked.memory_bytes, tighter.memory_bytes),
        fuel: asked.fuel.map(|f| min(f, tighter.fuel)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_only_tighten() {
        let asked = RunLimits {
            time: Duration::from_millis(1000),
            memory_bytes: 1 << 20,
            fuel: None,
        };
        let looser = Limits {
            time_ms: Some(5000),
            memory_bytes: Some(1 << 30),
            fuel: Some(7),
        };
        assert_eq!(tighten(asked, &looser), asked);
        let tighter = Limits {
            time_ms: Some(10),
            memory_bytes: None,
            fuel: None,
        };
        let t = tighten(asked, &tighter);
        assert_eq!(t.time, Duration::from_millis(10));
        assert_eq!(t.memory_bytes, 1 << 20);
    }
}
