//! The composition root: builds every part from the configuration, then serves HTTP until a
//! shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::attestation::Attestor;
use crate::clock::unix_millis;
use crate::cluster::{self, Identity};
use crate::config::Config;
use crate::egress::Egress;
use crate::engine::Engine;
use crate::http::a2a::tasks::Tasks;
use crate::http::{AppState, router};
use crate::pipeline::environments::Environments;
use crate::pipeline::{Parts, Pipeline};
use crate::plugins::payments::Payments;
use crate::plugins::policy::{Policy, PolicySlot};
use crate::plugins::python::PythonRuntime;
use crate::session::SessionTable;
use crate::storage::agent_config::ConfigStore;
use crate::storage::agent_store::{AgentStore, AgentStoreParts};
use crate::storage::members::{Member, Members};
use crate::storage::postgres::{self, notify};
use crate::storage::receipts::ReceiptLog;
use crate::storage::records::Records;
use crate::storage::state::{StateLimits, StateStore};
use crate::storage::tasks::TaskStore;
use crate::storage::wallets::Wallets;
use crate::storage::{self, artifacts::ArtifactStore};

mod attestation;
mod background;
mod connections;
mod head_errors;
mod javascript;
pub mod local_run;
pub mod precompile;
#[cfg(test)]
mod router_tests;
mod stores;
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
    /// The runs sharing the database (this one joined at build, leaves at the end of serve).
    members: Arc<dyn Members>,
    /// Assist TEE's environments (an adapter over the agent pipeline), when served.
    environments: Option<Arc<Environments>>,
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
        // This host's own key: seals its caches (and, on SQLite, everything).
        let local_key = Arc::new(storage::load_or_create_key(&config.data_dir)?);
        let disk = if config.engine.disk_cache {
            Some(
                ArtifactStore::open(
                    config.cache_dir(),
                    local_key.clone(),
                    COMPILED_COMPONENT_PURPOSE,
                    "cwasm.sealed",
                )?
                .with_quota(config.engine.disk_cache_max_bytes)?,
            )
        } else {
            None
        };
        let host_measurement = attestation::host_measurement(&config.attestation)?;
        let provider = attestation::attestation_provider(&config.attestation, host_measurement)?;
        let attestor = Arc::new(Attestor::new(provider, host_measurement));
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
        let identity = Identity::new(&config.cluster.replica(), config.storage.database.is_some())?;
        let (stores, pg) = {
            let (config, local_key, attestor, identity) = (
                config.clone(),
                local_key.clone(),
                attestor.clone(),
                identity.clone(),
            );
            // Blocking (a joining replica waits for its key): off the async workers.
            tokio::task::spawn_blocking(move || {
                stores::open(&config, &local_key, &attestor, &identity)
            })
            .await??
        };
        tracing::info!(
            backend = stores.kind.name(),
            replica = %identity.replica,
            run = %identity.run,
            "storage ready"
        );
        let plugin_disk = if config.engine.disk_cache {
            Some(ArtifactStore::open(
                config.plugin_cache_dir(),
                local_key.clone(),
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
        let mut sessions = SessionTable::new(
            Duration::from_secs(config.sessions.ttl_seconds),
            config.sessions.max_sessions,
        );
        if identity.clustered {
            sessions = sessions.with_tag(identity.tag);
        }
        let config = Arc::new(config);
        let receipts = ReceiptLog::open(stores.receipts.clone());
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
        let (js_runtime, starlingmonkey) = javascript::engines(&config).await?;
        let wallets = Arc::new(Wallets::new(stores.wallets.clone(), stores.key.clone()));
        let state = &config.state;
        let records = Arc::new(Records::open(stores.records.clone())?);
        let agents = Arc::new(AgentStore::new(
            AgentStoreParts {
                catalog: stores.catalog.clone(),
                records: records.clone(),
                code: stores.code.clone(),
                calls: stores.calls.clone(),
                wallets,
                sign_in: stores.sign_in.clone(),
                state: Arc::new(StateStore::new(
                    stores.state.clone(),
                    stores.key.clone(),
                    StateLimits {
                        max_keys: state.max_keys,
                        max_bytes: state.max_bytes,
                        max_value_bytes: state.max_value_bytes,
                        max_key_bytes: state.max_key_bytes,
                        cache_bytes: state.cache_bytes,
                    },
                )),
                config: Arc::new(ConfigStore::new(
                    stores.config.clone(),
                    stores.key.clone(),
                    state.config_cache_bytes,
                )),
                records_cache_bytes: config.storage.agent_cache_bytes,
            },
            stores.key.clone(),
        ));
        let indexed = {
            let agents = agents.clone();
            tokio::task::spawn_blocking(move || agents.load_search_index()).await??
        };
        tracing::info!(agents = indexed, "search index ready");
        let members = stores.members.clone();
        members.join(&Member {
            run: identity.run.clone(),
            replica: identity.replica.clone(),
            tag: identity.tag,
            signing_key: attestor
                .current()
                .map(|k| k.public.to_hex())
                .unwrap_or_default(),
            url: String::new(),
            started_ms: unix_millis(),
            heartbeat_ms: unix_millis(),
        })?;
        if let Some(pg) = &pg {
            // Agents, state and configuration changed on other replicas leave this one's
            // caches.
            let follower = agents.follow_changes()?;
            let store = agents.clone();
            notify::listen(
                pg,
                &[notify::AGENTS_CHANNEL, postgres::STATE_CHANNEL],
                move |change| match change {
                    None => {
                        store.state.invalidate_all();
                        store.config.forget_all();
                        let _ = follower.send(None);
                    }
                    Some(c) if c.channel == notify::AGENTS_CHANNEL => {
                        let _ = follower.send(Some(c.payload));
                    }
                    Some(c) => store.state_changed(&c.payload),
                },
            );
            cluster::key::serve_joins(
                pg.clone(),
                attestor.clone(),
                identity.clone(),
                config.cluster.clone(),
                stores.key.clone(),
            )?;
        }
        let egress = Arc::new(Egress::new(
            &config,
            agents.clone(),
            stores.payments.clone(),
        ));
        let pipeline = Arc::new(Pipeline::new(Parts {
            config: config.clone(),
            sessions: Arc::new(sessions),
            engine,
            attestor: attestor.clone(),
            receipts,
            policy,
            python,
            payments,
            js_runtime,
            starlingmonkey,
            ledger: stores.payments.clone(),
            agents,
            audience: stores.audience.clone(),
            identity,
            members: members.clone(),
            sealing: stores.key.clone(),
        }));
        pipeline.set_dispatcher(egress.clone());
        let task_store = TaskStore::new(
            stores.tasks.clone(),
            stores.key.clone(),
            pipeline.identity().run.clone(),
            crate::storage::tasks::TaskQuota {
                per_caller: config.a2a.max_tasks_per_caller,
                anonymous_per_agent: config.a2a.max_anonymous_tasks_per_agent,
                total_bytes: config.a2a.max_task_bytes,
            },
        );
        // A task's writes join the execution records' group commits (PostgreSQL); SQLite's
        // journal takes them itself.
        let task_store = match stores.tasks.joins_group_commit() {
            true => task_store.with_committer(records),
            false => task_store,
        };
        let tasks = Arc::new(Tasks::new(task_store, pipeline.clone()));
        let failed = tasks.recover(unix_millis().saturating_sub(config.cluster.dead_after_ms))?;
        if failed > 0 {
            tracing::warn!(failed, "A2A tasks left running by stopped runs are failed");
        }
        let environments = match config.javascript.enabled && config.javascript.environments {
            true => Some(Arc::new(Environments::new(&pipeline)?)),
            false => None,
        };
        if environments.is_some() && config.javascript.environments_token.is_none() {
            tracing::warn!(
                "the Assist-compatible /environments routes are open to anyone who can reach \
                 this host (set javascript.environments_token to require a bearer token)"
            );
        }
        Ok(Self {
            members,
            config,
            pipeline,
            attestor,
            egress,
            tasks,
            environments,
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
            environments: self.environments.clone(),
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

        let sweeper = background::spawn_session_sweeper(
            self.pipeline.clone(),
            self.config.sessions.ttl_seconds,
        );
        let rotation = background::spawn_key_rotation(
            self.attestor.clone(),
            self.config.attestation.key_rotation_seconds,
            secure.as_ref().map(|(_, tls)| tls.clone()),
        );
        let reload = background::spawn_policy_reload(self.pipeline.clone(), self.config.clone());
        let reaper = background::spawn_agent_reaper(self.pipeline.clone());
        let forgetter = background::spawn_answer_forgetter(self.pipeline.clone());
        let task_reaper =
            background::spawn_task_reaper(self.tasks.clone(), self.config.a2a.task_ttl_seconds);
        let duty = background::spawn_cluster_duty(
            self.pipeline.clone(),
            self.tasks.clone(),
            self.members.clone(),
            self.config.cluster.heartbeat_ms,
        );
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
        forgetter.abort();
        task_reaper.abort();
        duty.abort();
        // Payments settled after their responses finish settling (a facilitator's settlement
        // may take up to a payments call's limit), then deferred writes (records of HTTP agent
        // requests, logs) are committed before exit.
        let settling = Duration::from_millis(self.config.payments.call_timeout_ms + 1_000);
        if !self.pipeline.finish_deferred_settlements(settling).await {
            tracing::warn!(
                "payments settled after their responses were still in flight at exit: the next run adopts them (PROTOCOL.md §6b)"
            );
        }
        if let Err(e) = self.pipeline.flush_records().await {
            tracing::error!(error = %e, "cannot commit the last execution records");
        }
        let (members, run) = (self.members.clone(), self.pipeline.identity().run.clone());
        let forget = unix_millis().saturating_sub(24 * 3600 * 1000);
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || members.leave(&run, forget)).await {
            tracing::warn!(error = %e, "cannot record this run's stop");
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
pub(super) async fn load_policy(
    engine: &Arc<Engine>,
    config: &Config,
) -> anyhow::Result<Option<Policy>> {
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
