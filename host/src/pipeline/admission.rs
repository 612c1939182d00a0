//! Admission, the second half of the door: the operator's policy decides on the request's
//! metadata (never its plaintext) before anything is compiled or run, then a verified payment
//! is recorded durably. A denial is `403 policy_denied`; a policy that fails is
//! `503 policy_unavailable`: the host fails closed. Nothing is recorded for a request refused
//! on the way.

use std::time::Duration;

use super::Pipeline;
use super::open::Opened;
use super::x402::{Reservation, Verified};
use crate::clock::unix_millis;
use crate::engine::RunLimits;
use crate::error::ApiError;
use crate::plugins::policy::{Decision, Limits, Payment, ProgramKind, RequestInfo};

/// A request that passed the door: opened, admitted by the policy, its payment (if any)
/// recorded. Only running, sealing and concluding remain.
pub(super) struct Admitted<'p> {
    /// The request.
    pub opened: Opened,
    /// What the policy let through.
    pub admission: Admission,
    /// The recorded payment, to settle once the work gave a result.
    pub reservation: Option<Reservation<'p>>,
}

/// What admission lets through.
pub(super) struct Admission {
    /// The limits to run with: the request's, tightened by the policy.
    pub limits: RunLimits,
    /// The receipt's `policy` field on verifiable routes: `allow component=<hex> rules=<hex>`;
    /// `None` on other routes and when no policy is configured.
    pub policy: Option<String>,
}

/// How a request presents itself to the policy, besides what [`Opened`] holds.
#[derive(Clone, Copy)]
pub(super) struct Subject<'a> {
    /// Route path (for agents: `/agents/{name}/invoke` or `/agents/{name}/`).
    pub route: &'a str,
    /// Whether a receipt will be signed.
    pub verifiable: bool,
    /// Component or script.
    pub kind: ProgramKind,
    /// The agent, for invocations.
    pub agent: Option<&'a str>,
}

/// The metadata of a request that arrives without an [`Opened`] form (an HTTP agent's request,
/// whose body streams to the guest).
pub(super) struct Metadata<'a> {
    /// How it presents itself.
    pub subject: Subject<'a>,
    /// SHA-256 of the code.
    pub program_hash: [u8; 32],
    /// Its size.
    pub program_size: u64,
    /// The caller's key (hex), empty for anonymous callers.
    pub caller_key: String,
    /// Arguments.
    pub argument_count: usize,
    /// Plaintext input size (declared).
    pub input_size: u64,
    /// The limits asked for.
    pub limits: RunLimits,
}

impl Pipeline {
    /// Admits an opened request: the policy's decision, then the payment's durable record.
    pub(super) async fn admit(
        &self,
        opened: Opened,
        subject: Subject<'_>,
        verified: Option<Verified>,
    ) -> Result<Admitted<'_>, ApiError> {
        let metadata = Metadata {
            subject,
            program_hash: opened.program.hash(),
            program_size: opened.program.size(),
            caller_key: opened.caller.key().map(|k| k.to_hex()).unwrap_or_default(),
            argument_count: opened.args.len(),
            input_size: opened.input_size(),
            limits: opened.limits,
        };
        let (admission, reservation) = self.admit_metadata(metadata, verified).await?;
        Ok(Admitted {
            opened,
            admission,
            reservation,
        })
    }

    /// Admits a request by its metadata: the policy's decision, then the payment's durable
    /// record.
    pub(super) async fn admit_metadata(
        &self,
        m: Metadata<'_>,
        verified: Option<Verified>,
    ) -> Result<(Admission, Option<Reservation<'_>>), ApiError> {
        let info = self.request_info(&m, verified.as_ref());
        let admission = self.decide(&info, m.subject.verifiable, m.limits).await?;
        let reservation = self.reserve(verified).await?;
        Ok((admission, reservation))
    }

    /// What the policy is shown about a request.
    fn request_info(&self, m: &Metadata<'_>, paid: Option<&Verified>) -> RequestInfo {
        RequestInfo {
            route: m.subject.route.to_string(),
            verifiable: m.subject.verifiable,
            kind: m.subject.kind,
            program_hash: hex::encode(m.program_hash),
            program_size: m.program_size,
            agent: m.subject.agent.map(str::to_string),
            caller_key: m.caller_key.clone(),
            argument_count: u32::try_from(m.argument_count).unwrap_or(u32::MAX),
            input_size: m.input_size,
            limits: Limits {
                time_ms: Some(u64::try_from(m.limits.time.as_millis()).unwrap_or(u64::MAX)),
                memory_bytes: Some(m.limits.memory_bytes),
                fuel: m.limits.fuel,
            },
            payment: paid.map(|p| Payment {
                amount: p.verified.amount.clone(),
                asset: self.config.payments.price.asset.clone(),
                network: p.verified.network.clone(),
                payer: p.verified.payer.clone(),
            }),
            now_unix_ms: unix_millis(),
        }
    }

    /// The policy's decision on `info`: the limits to run with (`asked`, tightened), or the
    /// refusal. Without a policy everything is admitted as asked.
    async fn decide(
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
