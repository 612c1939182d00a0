//! The host's background tasks, each a loop spawned at `serve` and aborted at shutdown:
//! session sweeping, key rotation, policy reload, agent and task reaping, and the cluster's
//! heartbeat and adoption of dead runs' payments.

use std::sync::Arc;
use std::time::Duration;

use super::load_policy;
use super::tls;
use crate::attestation::Attestor;
use crate::clock::unix_millis;
use crate::config::Config;
use crate::http::a2a::tasks::Tasks;
use crate::pipeline::Pipeline;
use crate::storage::members::Members;

/// On SIGHUP, reloads the policy component and its rules from the files the configuration
/// names, and puts the new policy in force once it has started; a policy that fails to load
/// leaves the current one in force.
pub(super) fn spawn_policy_reload(
    pipeline: Arc<Pipeline>,
    config: Arc<Config>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                tracing::warn!("cannot listen for SIGHUP: policy reload disabled");
                return;
            };
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the policy");
                match load_policy(pipeline.engine_arc(), &config).await {
                    Ok(policy) => {
                        pipeline.policy().replace(policy.map(Arc::new));
                        tracing::info!("policy reloaded");
                    }
                    Err(e) => tracing::error!(
                        error = %e,
                        "policy reload failed; the current policy stays in force"
                    ),
                }
            }
        }
        #[cfg(not(unix))]
        let _ = (pipeline, config);
    })
}

/// Replaces the attested key periodically, off the request path (a hardware quote takes tens
/// of milliseconds). Existing sessions keep the key they were created under.
pub(super) fn spawn_key_rotation(
    attestor: Arc<Attestor>,
    every_seconds: u64,
    tls: Option<Arc<tls::Tls>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if every_seconds == 0 || attestor.current().is_none() {
            return;
        }
        let mut interval = tokio::time::interval(Duration::from_secs(every_seconds));
        interval.tick().await;
        loop {
            interval.tick().await;
            let (a, t) = (attestor.clone(), tls.clone());
            // The self-generated TLS certificate follows the key: its evidence names it.
            let rotated = move || {
                a.rotate()?;
                Ok::<_, crate::attestation::AttestationError>(t.map(|t| t.renew(&a)))
            };
            match tokio::task::spawn_blocking(rotated).await {
                Ok(Ok(renewed)) => {
                    tracing::info!("attested signing key rotated");
                    match renewed {
                        Some(Ok(true)) => tracing::info!("TLS certificate renewed for the new key"),
                        Some(Err(e)) => {
                            tracing::error!(error = %e, "TLS certificate not renewed; the previous one stays in use")
                        }
                        Some(Ok(false)) | None => {}
                    }
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "key rotation failed; keeping the current key")
                }
                Err(e) => tracing::error!(error = %e, "key rotation task failed"),
            }
        }
    })
}

/// Drops expired sessions periodically so their keys are zeroized promptly.
pub(super) fn spawn_session_sweeper(
    pipeline: Arc<Pipeline>,
    ttl_seconds: u64,
) -> tokio::task::JoinHandle<()> {
    let period = Duration::from_secs(ttl_seconds.clamp(1, 30));
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        loop {
            interval.tick().await;
            let dropped = pipeline.sessions().sweep();
            if dropped > 0 {
                tracing::debug!(dropped, "expired sessions dropped");
            }
        }
    })
}

/// Deletes A2A tasks past their retention (`a2a.task_ttl_seconds`), every minute.
pub(super) fn spawn_task_reaper(
    tasks: Arc<Tasks>,
    ttl_seconds: u64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let t = tasks.clone();
            match tokio::task::spawn_blocking(move || t.reap(ttl_seconds)).await {
                Ok(Err(e)) => tracing::warn!(error = %e, "A2A task reaper failed"),
                Err(e) => tracing::warn!(error = %e, "A2A task reaper task failed"),
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(deleted = n, "A2A tasks past their retention deleted"),
            }
        }
    })
}

/// Removes agents whose TTL has passed, every few seconds.
pub(super) fn spawn_agent_reaper(pipeline: Arc<Pipeline>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            let p = pipeline.clone();
            match tokio::task::spawn_blocking(move || p.reap_expired_agents()).await {
                Ok(Err(e)) => tracing::warn!(error = %e, "agent reaper failed"),
                Err(e) => tracing::warn!(error = %e, "agent reaper task failed"),
                Ok(Ok(_)) => {}
            }
        }
    })
}

/// Forgets, every minute, the answers kept for identified payments longer than
/// `payments.payment_identifier.keep_seconds` (x402 payment-identifier).
pub(super) fn spawn_answer_forgetter(pipeline: Arc<Pipeline>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            match pipeline.forget_kept_answers().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(
                    forgotten = n,
                    "kept answers of identified payments forgotten"
                ),
                Err(e) => tracing::warn!(error = %e, "forgetting kept answers failed"),
            }
        }
    })
}

/// Says this run is alive every `cluster.heartbeat_ms`, and adopts the unfinished payments of
/// runs that stopped saying so (at once: those of the previous process on this data directory
/// or of replicas that died).
pub(super) fn spawn_cluster_duty(
    pipeline: Arc<Pipeline>,
    tasks: Arc<Tasks>,
    members: Arc<dyn Members>,
    heartbeat_ms: u64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(heartbeat_ms));
        loop {
            tick.tick().await;
            let (m, run, url) = (
                members.clone(),
                pipeline.identity().run.clone(),
                pipeline.public_base().to_string(),
            );
            match tokio::task::spawn_blocking(move || m.heartbeat(&run, &url, unix_millis())).await
            {
                Ok(Err(e)) => tracing::warn!(error = %e, "heartbeat failed"),
                Err(e) => tracing::warn!(error = %e, "heartbeat task failed"),
                Ok(Ok(())) => {}
            }
            let (t, dead_after) = (tasks.clone(), pipeline.config().cluster.dead_after_ms);
            match tokio::task::spawn_blocking(move || {
                t.recover(unix_millis().saturating_sub(dead_after))
            })
            .await
            {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::warn!(failed = n, "A2A tasks of stopped runs are failed"),
                Ok(Err(e)) => tracing::warn!(error = %e, "failing tasks of stopped runs failed"),
                Err(e) => tracing::warn!(error = %e, "task recovery task failed"),
            }
            match pipeline.adopt_orphaned_payments().await {
                Ok(done) if done != Default::default() => tracing::info!(
                    released = done.released,
                    settled = done.settled,
                    pending = done.pending,
                    "payments left unfinished by stopped runs taken over"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "adopting payments of stopped runs failed"),
            }
        }
    })
}
