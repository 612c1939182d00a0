//! Change notifications between replicas: a deployment, deletion or grant change of an agent
//! sends `NOTIFY hypervisor_agents, '<name>'` in its transaction (delivered at commit), and
//! every replica listens on a connection of its own to drop the agent from its cache of hot
//! records. So a cached agent costs an invocation no database round trip, and a change made
//! on one replica is seen by the others within one notification's latency.
//!
//! A lost listening connection may have missed notifications: when it is back, the listener
//! reports a change of everything (`None`) and the caller empties its cache.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

use super::Pg;

/// The channel of agents' changes; the payload is the agent's name.
pub const AGENTS_CHANNEL: &str = "hypervisor_agents";

/// How long to wait before listening again after the connection was lost.
const RETRY: Duration = Duration::from_secs(1);

/// One notification: its channel and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The channel ([`AGENTS_CHANNEL`], [`super::state::STATE_CHANNEL`]).
    pub channel: String,
    /// The payload.
    pub payload: String,
}

/// Listens to `channels` for as long as the pool's runtime runs: `on_change(Some(change))`
/// for each notification, `on_change(None)` each time listening (re)starts (changes may have
/// been missed).
pub fn listen<F>(pg: &Arc<Pg>, channels: &'static [&'static str], on_change: F)
where
    F: Fn(Option<Change>) + Send + Sync + 'static,
{
    let config = pg.config().clone();
    pg.spawn(async move {
        loop {
            match config.connect(tokio_postgres::NoTls).await {
                Ok((client, mut connection)) => {
                    let (tx, mut rx) = mpsc::unbounded_channel();
                    // The connection delivers notifications only while it is polled.
                    let driver = tokio::spawn(async move {
                        while let Some(message) =
                            std::future::poll_fn(|cx| connection.poll_message(cx)).await
                        {
                            match message {
                                Ok(AsyncMessage::Notification(n)) => {
                                    let change = Change {
                                        channel: n.channel().to_string(),
                                        payload: n.payload().to_string(),
                                    };
                                    if tx.send(change).is_err() {
                                        break;
                                    }
                                }
                                Ok(_) => {}
                                Err(e) => {
                                    tracing::warn!(error = %e, "agent change listener lost its connection");
                                    break;
                                }
                            }
                        }
                    });
                    let listen: String =
                        channels.iter().map(|c| format!("LISTEN {c};")).collect();
                    match client.batch_execute(&listen).await {
                        Ok(()) => {
                            on_change(None);
                            while let Some(change) = rx.recv().await {
                                on_change(Some(change));
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot listen to changes");
                        }
                    }
                    driver.abort();
                }
                Err(e) => {
                    tracing::debug!(error = %e, "agent change listener cannot connect; retrying");
                }
            }
            tokio::time::sleep(RETRY).await;
        }
    });
}
