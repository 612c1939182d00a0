//! The composition root: builds every part from the configuration, then serves HTTP until a
//! shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::attestation::{AttestationProvider, NoAttestation};
use crate::config::Config;
use crate::engine::Engine;
use crate::http::{AppState, router};
use crate::pipeline::Pipeline;
use crate::session::SessionTable;
use crate::storage::{self, artifacts::ArtifactStore};

/// Purpose label sealed into every cached compiled component.
const COMPILED_COMPONENT_PURPOSE: &[u8] = b"wasm-hypervisor/v1/compiled-component";

/// A fully assembled host, not yet listening.
pub struct Host {
    config: Arc<Config>,
    pipeline: Arc<Pipeline>,
}

impl Host {
    /// Builds storage, engine, sessions and pipeline from `config`.
    ///
    /// # Errors
    /// Invalid configuration, an unusable data directory, or an engine that cannot start.
    pub fn build(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir)?;
        let key = Arc::new(storage::load_or_create_key(&config.data_dir)?);
        let disk = if config.engine.disk_cache {
            Some(ArtifactStore::open(
                config.cache_dir(),
                key.clone(),
                COMPILED_COMPONENT_PURPOSE,
                "cwasm.sealed",
            )?)
        } else {
            None
        };
        let attestation: Arc<dyn AttestationProvider> = Arc::new(NoAttestation);
        tracing::warn!(
            "no attestation provider configured: components calling hypervisor:host/attestation get `not-configured`"
        );
        let engine = Arc::new(Engine::new(&config, disk, attestation)?);
        let sessions = Arc::new(SessionTable::new(
            Duration::from_secs(config.sessions.ttl_seconds),
            config.sessions.max_sessions,
        ));
        let config = Arc::new(config);
        let pipeline = Arc::new(Pipeline::new(config.clone(), sessions, engine));
        Ok(Self { config, pipeline })
    }

    /// The pipeline (for in-process benchmarks and tests).
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// Binds the listener, announces the address on stdout (one line,
    /// `hypervisor listening on http://ADDR`, which tests and scripts wait for) and serves
    /// until SIGINT or SIGTERM.
    ///
    /// # Errors
    /// If the address cannot be bound.
    pub async fn serve(self) -> anyhow::Result<()> {
        let listener = TcpListener::bind(self.config.listen).await?;
        let addr: SocketAddr = listener.local_addr()?;
        println!("hypervisor listening on http://{addr}");
        tracing::info!(%addr, data_dir = %self.config.data_dir.display(), "listening");

        let sweeper =
            spawn_session_sweeper(self.pipeline.clone(), self.config.sessions.ttl_seconds);
        let app = router(AppState {
            pipeline: self.pipeline.clone(),
            http: Arc::new(self.config.http.clone()),
        });
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await;
        sweeper.abort();
        tracing::info!("stopped");
        Ok(result?)
    }
}

/// Drops expired sessions periodically so their keys are zeroized promptly.
fn spawn_session_sweeper(pipeline: Arc<Pipeline>, ttl_seconds: u64) -> tokio::task::JoinHandle<()> {
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

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
