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
        let paid = self
            .verify_payment(self.route_charge(route), payment)
            .await?;
        let opened = self.open(sealed, route)?;
        validate(&opened)?;
        let admission = self.admit(&opened, route, kind, paid.as_ref()).await?;
        if let Some(paid) = &paid {
            self.reserve_payment(paid).await?;
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
        let info = self.request_info(Subject {
            route: route.path,
            verifiable: route.verifiable,
            kind,
            program_hash: opened.digests.program,
            program_size: u64::try_from(opened.program.len()).unwrap_or(u64::MAX),
            agent: None,
            caller_key: opened.client_key.to_hex(),
            argument_count: opened.args.len(),
            input_size: opened.input_size(),
            limits: opened.limits,
            paid,
        });
        self.decide(&info, route.verifiable, opened.limits).await
    }

    /// What the policy is shown about a request.
    pub(super) fn request_info(&self, s: Subject<'_>) -> RequestInfo {
        RequestInfo {
            route: s.route.to_string(),
            verifiable: s.verifiable,
            kind: s.kind,
            program_hash: hex::encode(s.program_hash),
            program_size: s.program_size,
            agent: s.agent.map(str::to_string),
            caller_key: s.caller_key,
            argument_count: u32::try_from(s.argument_count).unwrap_or(u32::MAX),
            input_size: s.input_size,
            limits: Limits {
                time_ms: Some(u64::try_from(s.limits.time.as_millis()).unwrap_or(u64::MAX)),
                memory_bytes: Some(s.limits.memory_bytes),
                fuel: s.limits.fuel,
            },
            payment: s.paid.map(|p| Payment {
                amount: p.verified.amount.clone(),
                asset: self.config.payments.price.asset.clone(),
                network: p.verified.network.clone(),
                payer: p.verified.payer.clone(),
            }),
            now_unix_ms: unix_now_ms(),
        }
    }

    /// The policy's decision on `info`: the limits to run with (`asked`, tightened), or the
    /// refusal. Without a policy everything is admitted as asked.
    pub(super) async fn decide(
        &self,
        info: &RequestInfo,
        verifiable: bool,
        asked: RunLimits,
    ) -> Result<Admission, ApiError> {
        let Some(policy) = self.policy.get() else {
            return Ok(Admission {
                limits: asked,
                policy: None,
            });
        };
        match policy.evaluate(info).await {
            Ok(Decision::Allow(tighter)) => Ok(Admission {
                limits: tighten(asked, &tighter),
                // Only receipts carry it: not formatted on the other routes.
                policy: verifiable.then(|| {
                    format!(
                        "allow component={} rules={}",
                        hex::encode(policy.component_hash()),
                        hex::encode(policy.rules_hash())
                    )
                }),
            }),
            Ok(Decision::Deny(denial)) => {
                self.metrics.policy_denial(&denial.rule);
                Err(ApiError::PolicyDenied {
                    rule: denial.rule,
                    reason: denial.reason,
                })
            }
            Err(e) => Err(ApiError::PolicyUnavailable(e.to_string())),
        }
    }
}

/// The metadata of a request the policy decides on.
pub(super) struct Subject<'a> {
    /// Route path (for agents: `/agents/{name}/invoke` or `/agents/{name}/`).
    pub route: &'a str,
    /// Whether a receipt will be signed.
    pub verifiable: bool,
    /// Component or script.
    pub kind: ProgramKind,
    /// SHA-256 of the code.
    pub program_hash: [u8; 32],
    /// Its size.
    pub program_size: u64,
    /// The agent, for invocations.
    pub agent: Option<&'a str>,
    /// The caller's key (hex), empty for anonymous callers.
    pub caller_key: String,
    /// Arguments.
    pub argument_count: usize,
    /// Plaintext input size.
    pub input_size: u64,
    /// The limits asked for.
    pub limits: RunLimits,
    /// The verified payment.
    pub paid: Option<&'a Paid>,
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
