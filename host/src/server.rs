//! The composition root: builds every part from the configuration, then serves HTTP until a
//! shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::attestation::configfs::{self, ConfigFs, TsmProvider};
use crate::attestation::{AttestationProvider, Attestor, NoAttestation, TeeKind};
use crate::config::{AttestationConfig, Config, ProviderChoice};
use crate::egress::Egress;
use crate::engine::Engine;
use crate::http::a2a::tasks::Tasks;
use crate::http::{AppState, router};
use crate::pipeline::{Parts, Pipeline};
use crate::plugins::payments::Payments;
use crate::plugins::policy::{Policy, PolicySlot};
use crate::plugins::python::PythonRuntime;
use crate::session::SessionTable;
use crate::storage::agent_store::AgentStore;
use crate::storage::agents::{AGENT_COMPONENT_PURPOSE, SqliteAgents};
use crate::storage::calls::CallLedger;
use crate::storage::db::Database;
use crate::storage::payments::PaymentLedger;
use crate::storage::receipts::ReceiptLog;
use crate::storage::records::Records;
use crate::storage::tasks::TaskStore;
use crate::storage::wallets::Wallets;
use crate::storage::{self, artifacts::ArtifactStore};

mod connections;
mod head_errors;
#[cfg(test)]
mod router_tests;
pub mod tls;

use connections::ConnectionLimits;

/// Purpose label sealed into every cached compiled component.
const COMPILED_COMPONENT_PURPOSE: &[u8] = b"wasm-hypervisor/v1/compiled-component";
/// Purpose label sealed into every cached compiled plug-in.
const COMPILED_PLUGIN_PURPOSE: &[u8] = b"wasm-hypervisor/v1/compiled-plugin";

/// A fully assembled host, not yet listening.
pub struct Host {
    config: Arc<Config>,
    pipeline: Arc<Pipeline>,
    attestor: Arc<Attestor>,
    /// Agents' egress (the pipeline's dispatcher), attached to the HTTP front at `serve`.
    egress: Arc<Egress>,
    /// A2A tasks (the A2A front's durable state).
    tasks: Arc<Tasks>,
}

/// Chooses the attestation provider. Never falls back to simulation.
fn attestation_provider(c: &AttestationConfig) -> anyhow::Result<Arc<dyn AttestationProvider>> {
    let tree = || ConfigFs::new(c.configfs_root.clone());
    let hardware = |want: TeeKind| -> anyhow::Result<Arc<dyn AttestationProvider>> {
        match configfs::detect(&tree()) {
            Some(found) if found == want => Ok(Arc::new(TsmProvider::new(Box::new(tree()), want))),
            found => anyhow::bail!(
                "attestation.provider = {} but configfs-tsm at {} offers {}",
                want.name(),
                c.configfs_root.display(),
                found.map_or("nothing", TeeKind::name)
            ),
        }
    };
    Ok(match c.provider {
        ProviderChoice::None => Arc::new(NoAttestation),
        ProviderChoice::Tdx => hardware(TeeKind::Tdx)?,
        ProviderChoice::SevSnp => hardware(TeeKind::SevSnp)?,
        ProviderChoice::Auto => match configfs::detect(&tree()) {
            Some(kind) => Arc::new(TsmProvider::new(Box::new(tree()), kind)),
            None => {
                tracing::info!(
                    "attestation.provider = auto: no configfs-tsm provider found; attestation off"
                );
                Arc::new(NoAttestation)
            }
        },
        #[cfg(feature = "simulated-attestation")]
        ProviderChoice::Simulated => {
            tracing::warn!(
                "##########################################################################"
            );
            tracing::warn!("SIMULATED ATTESTATION IS ON: evidence from this host PROVES NOTHING.");
            tracing::warn!("Every response labels it `simulated`; verifiers reject it by default.");
            tracing::warn!("Never use this setting in production.");
            tracing::warn!(
                "##########################################################################"
            );
            Arc::new(crate::attestation::simulated::SimulatedProvider)
        }
        #[cfg(not(feature = "simulated-attestation"))]
        ProviderChoice::Simulated => anyhow::bail!(
            "attestation.provider = simulated, but this build has no simulated attestation \
             (rebuild with --features simulated-attestation; never in production)"
        ),
    })
}

/// SHA-256 of the running host binary: the application-level measurement bound with the
/// signing key (the VM's own measurements are in the hardware evidence).
fn host_measurement() -> anyhow::Result<[u8; 32]> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(std::env::current_exe()?)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

impl Host {
    /// Builds storage, engine, plug-ins, sessions and pipeline from `config`. Plug-ins come
    /// from the sealed plug-in cache; only a plug-in never seen before is compiled (tens of
    /// seconds for the componentized CPython, once).
    ///
    /// # Errors
    /// Invalid configuration, an unusable data directory, an engine that cannot start, or a
    /// plug-in that cannot be loaded or refuses its rules.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir)?;
        let key = Arc::new(storage::load_or_create_key(&config.data_dir)?);
        let disk = if config.engine.disk_cache {
            Some(
                ArtifactStore::open(
                    config.cache_dir(),
                    key.clone(),
                    COMPILED_COMPONENT_PURPOSE,
                    "cwasm.sealed",
                )?
                .with_quota(config.engine.disk_cache_max_bytes)?,
            )
        } else {
            None
        };
        let provider = attestation_provider(&config.attestation)?;
        let attestor = Arc::new(Attestor::new(provider, host_measurement()?));
        attestor.rotate()?;
        match attestor.current() {
            Some(key) => tracing::info!(
                tee = key.tee().name(),
                signing_key = %key.public.to_hex(),
                "attested signing key ready"
            ),
            None => tracing::warn!(
                "no attestation provider: verifiable routes answer 503, components calling hypervisor:host/attestation get `not-configured`"
            ),
        }
        let plugin_disk = if config.engine.disk_cache {
            Some(ArtifactStore::open(
                config.plugin_cache_dir(),
                key.clone(),
                COMPILED_PLUGIN_PURPOSE,
                "cwasm.sealed",
            )?)
        } else {
            None
        };
        let engine = Arc::new(Engine::new(&config, disk, plugin_disk, attestor.clone())?);
        let policy = Arc::new(PolicySlot::new(load_policy(&engine, &config).await?));
        let python = if config.python.enabled {
            let runtime = PythonRuntime::load(engine.clone(), &config.python).await?;
            tracing::info!(
                component = %config.python.component.display(),
                sha256 = %hex::encode(runtime.hash()),
                "python runtime ready"
            );
            Some(runtime)
        } else {
            tracing::info!("python.enabled = false: the Python routes answer 503");
            None
        };
        let sessions = Arc::new(SessionTable::new(
            Duration::from_secs(config.sessions.ttl_seconds),
            config.sessions.max_sessions,
        ));
        let config = Arc::new(config);
        let receipts = ReceiptLog::open(&config.data_dir)?;
        let payments = if config.payments.enabled {
            let payments = Payments::load(engine.clone(), &config.payments).await?;
            tracing::info!(
                component = %config.payments.component.display(),
                sha256 = %hex::encode(payments.hash()),
                mode = ?config.payments.mode,
                network = %config.payments.price.network,
                pay_to = %config.payments.price.pay_to,
                "payments ready"
            );
            Some(payments)
        } else {
            tracing::info!("payments.enabled = false: the paid routes answer 503");
            None
        };
        let ledger = Arc::new(PaymentLedger::open(&config.data_dir)?);
        let db = Arc::new(Database::open(&config.data_dir)?);
        let wallets = Arc::new(Wallets::new(db.clone(), key.clone()));
        let agents = Arc::new(AgentStore::new(
            Arc::new(SqliteAgents::new(db.clone())),
            Records::open(db.clone(), &config.data_dir)?,
            ArtifactStore::open(
                config.data_dir.join("agents"),
                key.clone(),
                AGENT_COMPONENT_PURPOSE,
                "wasm.sealed",
            )?,
            CallLedger::new(db.clone()),
            wallets.clone(),
            key.clone(),
        ));
        let egress = Arc::new(Egress::new(&config, agents.clone()));
        let pipeline = Arc::new(Pipeline::new(Parts {
            config: config.clone(),
            sessions,
            engine,
            attestor: attestor.clone(),
            receipts,
            policy,
            python,
            payments,
            ledger,
            agents,
            audience: db.audience()?,
        }));
        pipeline.set_dispatcher(egress.clone());
        // A2A tasks on their own connection: written on every A2A request, committed to the
        // WAL without a flush to disk each (as execution records are).
        let task_db = Arc::new(Database::open_relaxed(&config.data_dir)?);
        let tasks = Arc::new(Tasks::new(TaskStore::new(task_db, key), pipeline.clone()));
        let failed = tasks.recover()?;
        if failed > 0 {
            tracing::warn!(
                failed,
                "A2A tasks left running by the previous run are failed"
            );
        }
        Ok(Self {
            config,
            pipeline,
            attestor,
            egress,
            tasks,
        })
    }

    /// The HTTP front (the router over the pipeline), attached to the egress layer so that
    /// agents' calls to agents on this host enter it in-process. `serve` serves it; in-process
    /// benchmarks call it directly.
    pub fn front(&self) -> axum::Router {
        let app = router(AppState {
            pipeline: self.pipeline.clone(),
            http: Arc::new(self.config.http.clone()),
            a2a: Some(self.tasks.clone()),
        });
        self.egress.attach_front(app.clone());
        app
    }

    /// The pipeline (for in-process benchmarks and tests).
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// Binds the listeners, announces each address on stdout (one line each,
    /// `hypervisor listening on http://ADDR` for plain HTTP first, then
    /// `hypervisor listening on https://ADDR` when `tls.listen` is set; tests and scripts wait
    /// for them) and serves until SIGINT or SIGTERM. Connections are limited by
    /// `http.header_timeout_ms`, `http.idle_timeout_ms` and `http.max_connections` (per
    /// listener; see `connections`). On the signal it stops accepting, lets requests in flight
    /// finish, then commits deferred records.
    ///
    /// # Errors
    /// If an address cannot be bound, or the TLS certificate cannot be loaded or generated.
    pub async fn serve(self) -> anyhow::Result<()> {
        let plain = if self.config.tls.plain {
            Some(bind(self.config.listen)?)
        } else {
            None
        };
        let secure = match self.config.tls.listen {
            Some(addr) => {
                let config = self.config.tls.clone();
                let attestor = self.attestor.clone();
                let tls = tokio::task::spawn_blocking(move || tls::Tls::new(&config, &attestor))
                    .await??;
                Some((bind(addr)?, Arc::new(tls)))
            }
            None => None,
        };
        if let Some(listener) = &plain {
            let addr: SocketAddr = listener.local_addr()?;
            self.pipeline.set_public_base(format!("http://{addr}"));
            println!("hypervisor listening on http://{addr}");
            tracing::info!(%addr, "listening (HTTP)");
        }
        if let Some((listener, tls)) = &secure {
            let addr: SocketAddr = listener.local_addr()?;
            if plain.is_none() {
                self.pipeline.set_public_base(format!("https://{addr}"));
            }
            println!("hypervisor listening on https://{addr}");
            let (sha256, generated) = tls.certificate();
            tracing::info!(
                %addr,
                certificate_sha256 = %hex::encode(sha256),
                certificate = if generated { "generated (RA-TLS)" } else { "files" },
                "listening (HTTPS)"
            );
        }
        tracing::info!(
            data_dir = %self.config.data_dir.display(),
            max_connections = self.config.http.max_connections,
            header_timeout_ms = self.config.http.header_timeout_ms,
            idle_timeout_ms = self.config.http.idle_timeout_ms,
            "serving"
        );

        let sweeper =
            spawn_session_sweeper(self.pipeline.clone(), self.config.sessions.ttl_seconds);
        let rotation = spawn_key_rotation(
            self.attestor.clone(),
            self.config.attestation.key_rotation_seconds,
            secure.as_ref().map(|(_, tls)| tls.clone()),
        );
        let reload = spawn_policy_reload(self.pipeline.clone(), self.config.clone());
        let reaper = spawn_agent_reaper(self.pipeline.clone());
        let task_reaper = spawn_task_reaper(self.tasks.clone(), self.config.a2a.task_ttl_seconds);
        let tls_reload = secure.as_ref().map(|(_, tls)| {
            let every = self.config.tls.reload_interval_ms;
            tls::spawn_reloader(
                tls.clone(),
                (every > 0).then(|| Duration::from_millis(every)),
            )
        });
        let app = self.front();
        let limits = ConnectionLimits::from_config(&self.config.http);
        // One signal stops every listener.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let plain_serving = plain.map(|listener| {
            connections::serve(
                listener,
                app.clone(),
                limits,
                self.pipeline.clone(),
                None,
                stopped(stop_rx.clone()),
            )
        });
        let secure_serving = secure.map(|(listener, tls)| {
            connections::serve(
                listener,
                app.clone(),
                limits,
                self.pipeline.clone(),
                Some(tls),
                stopped(stop_rx.clone()),
            )
        });
        tokio::join!(
            async {
                if let Some(serving) = plain_serving {
                    serving.await;
                }
            },
            async {
                if let Some(serving) = secure_serving {
                    serving.await;
                }
            }
        );
        if let Some(task) = tls_reload {
            task.abort();
        }
        sweeper.abort();
        rotation.abort();
        reload.abort();
        reaper.abort();
        task_reaper.abort();
        // Deferred writes (records of HTTP agent requests, logs) are committed before exit.
        if let Err(e) = self.pipeline.flush_records().await {
            tracing::error!(error = %e, "cannot commit the last execution records");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Connections waiting to be accepted (the kernel caps it at `net.core.somaxconn`). Standard
/// library listeners use 128, which a burst of a thousand clients overflows: the kernel then
/// drops handshakes and some clients see resets.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds the listening socket with [`LISTEN_BACKLOG`].
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Loads the policy named by the configuration, or `None` when it is disabled.
async fn load_policy(engine: &Arc<Engine>, config: &Config) -> anyhow::Result<Option<Policy>> {
    let c = &config.policy;
    if !c.enabled {
        tracing::warn!("policy.enabled = false: requests are admitted without a policy");
        return Ok(None);
    }
    let policy = Policy::load(engine.clone(), c).await?;
    tracing::info!(
        component = %c.component.display(),
        sha256 = %hex::encode(policy.component_hash()),
        rules_sha256 = %hex::encode(policy.rules_hash()),
        instances = c.instances,
        "policy ready"
    );
    Ok(Some(policy))
}

/// On SIGHUP, reloads the policy component and its rules from the files the configuration
/// names, and puts the new policy in force once it has started; a policy that fails to load
/// leaves the current one in force.
fn spawn_policy_reload(
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
fn spawn_key_rotation(
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

/// Deletes A2A tasks past their retention (`a2a.task_ttl_seconds`), every minute.
fn spawn_task_reaper(tasks: Arc<Tasks>, ttl_seconds: u64) -> tokio::task::JoinHandle<()> {
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
fn spawn_agent_reaper(pipeline: Arc<Pipeline>) -> tokio::task::JoinHandle<()> {
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
