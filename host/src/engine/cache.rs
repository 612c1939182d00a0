//! The compiled-component cache: in memory (bounded LRU, keyed by SHA-256 of the plaintext
//! component) in front of the sealed on-disk store, with single-flight compilation so the same
//! program is never compiled twice, by concurrent requests or across restarts.

use sha2::Digest as _;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;
use tokio::sync::OnceCell;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use hypervisor_protocol::agents::AgentKind;

use super::precompiled::Precompiled;
use super::{EngineError, HostImports, HostState, error_chain, imports};
use crate::crypto::plaintext::Plaintext;
use crate::storage::artifacts::ArtifactStore;

/// A compiled, checked, pre-linked component, with the entry points it exports.
pub struct Prepared {
    /// SHA-256 of the plaintext program (a component, or a RISC-V program's ELF file).
    pub hash: [u8; 32],
    pub(super) command: Option<CommandPre<HostState>>,
    pub(super) http: Option<ProxyPre<HostState>>,
    pub(super) handler: Option<super::handler::HandlerAgentPre<HostState>>,
    /// A RISC-V program, linked and compiled (the component entry points are then absent).
    pub(super) riscv: Option<Arc<hypervisor_riscv::Compiled>>,
    /// What it weighs against the memory cache's byte budget: a component's compiled image
    /// (code and read-only data); 0 for a RISC-V program, whose code lives in its workers.
    pub(super) bytes: usize,
}

impl Prepared {
    /// Whether it is a RISC-V program (a component otherwise).
    pub fn is_riscv(&self) -> bool {
        self.riscv.is_some()
    }

    /// What it runs as when deployed as an agent: a handler if it exports one, else an HTTP
    /// proxy, else a command (a RISC-V program is one); `None` if it exports none of these.
    pub fn kind(&self) -> Option<AgentKind> {
        if self.riscv.is_some() {
            Some(AgentKind::Cli)
        } else if self.handler.is_some() {
            Some(AgentKind::Handler)
        } else if self.http.is_some() {
            Some(AgentKind::Http)
        } else if self.command.is_some() {
            Some(AgentKind::Cli)
        } else {
            None
        }
    }
}

/// Cache counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Served from memory.
    pub memory_hits: u64,
    /// Loaded from disk (deserialized, not compiled).
    pub disk_hits: u64,
    /// Compiled from source.
    pub compiles: u64,
    /// Loaded from the precompiled artifacts shipped beside the binary (plug-ins only).
    pub precompiled: u64,
}

type Slot = Arc<OnceCell<Arc<Prepared>>>;

pub(super) struct ComponentCache {
    memory: Mutex<LruCache<[u8; 32], Slot>>,
    /// Most bytes of compiled images kept in `memory` (`engine.memory_cache_bytes`).
    max_bytes: usize,
    disk: Option<ArtifactStore>,
    /// Artifacts compiled ahead of time (the plug-in cache only), looked up before `disk`.
    precompiled: Option<Arc<Precompiled>>,
    /// What the cache holds, for log lines: `component` or `plug-in`.
    label: &'static str,
    /// Bounds concurrent compilations (each already uses every core through Cranelift's
    /// parallel compilation), so a burst of distinct components queues instead of piling up
    /// blocking threads and memory.
    compile_slots: tokio::sync::Semaphore,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    compiles: AtomicU64,
    precompiled_hits: AtomicU64,
}

/// Where [`ComponentCache::load_or_compile`] found a component.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Precompiled,
    Disk,
    Compiled,
}

impl ComponentCache {
    pub(super) fn new(
        entries: usize,
        max_bytes: usize,
        disk: Option<ArtifactStore>,
        label: &'static str,
    ) -> Self {
        let cap = NonZeroUsize::new(entries).unwrap_or(NonZeroUsize::MIN);
        Self {
            memory: Mutex::new(LruCache::new(cap)),
            max_bytes,
            disk,
            precompiled: None,
            label,
            compile_slots: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            compiles: AtomicU64::new(0),
            precompiled_hits: AtomicU64::new(0),
        }
    }

    /// Looks up `precompiled` first when loading (see [`Self::load_or_compile`]).
    pub(super) fn with_precompiled(mut self, precompiled: Option<Precompiled>) -> Self {
        self.precompiled = precompiled.map(Arc::new);
        self
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<[u8; 32], Slot>> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn stats(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            compiles: self.compiles.load(Ordering::Relaxed),
            precompiled: self.precompiled_hits.load(Ordering::Relaxed),
        }
    }

    /// The prepared component for `hash`, if it is in memory.
    pub(super) fn cached(&self, hash: &[u8; 32]) -> Option<Arc<Prepared>> {
        let prepared = self.lock().get(hash)?.get().cloned();
        if prepared.is_some() {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
        }
        prepared
    }

    pub(super) async fn get_or_prepare(
        &self,
        engine: &wasmtime::Engine,
        linker: &Linker<HostState>,
        hash: [u8; 32],
        bytes: Arc<Plaintext>,
    ) -> Result<Arc<Prepared>, EngineError> {
        self.get_or_init(hash, || async {
            let component = self
                .load_or_compile(engine, hash, bytes, HostImports::of_client_components())
                .await?;
            linked(linker, hash, &component)
        })
        .await
    }

    /// The prepared program for `hash` from memory, or made by `init` (once, however many ask
    /// at the same time) and kept; a failure is not kept.
    pub(super) async fn get_or_init<F, Fut>(
        &self,
        hash: [u8; 32],
        init: F,
    ) -> Result<Arc<Prepared>, EngineError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Arc<Prepared>, EngineError>>,
    {
        let (slot, pushed_out) = {
            let mut lru = self.lock();
            match lru.get(&hash) {
                Some(slot) => (slot.clone(), None),
                None => {
                    let slot: Slot = Arc::new(OnceCell::new());
                    (slot.clone(), lru.push(hash, slot))
                }
            }
        };
        // The entry pushed out by count, if any, is dropped here, after the lock.
        drop(pushed_out);
        if let Some(prepared) = slot.get() {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(prepared.clone());
        }
        let result = slot.get_or_try_init(init).await.cloned();
        if result.is_ok() {
            self.trim(&hash);
        }
        if result.is_err() {
            // Do not keep an empty slot for a program that failed.
            let mut lru = self.lock();
            if lru.peek(&hash).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                lru.pop(&hash);
            }
        }
        result
    }

    /// Evicts the least recently used prepared programs until what is kept weighs at most
    /// `max_bytes`, keeping `newest` (just prepared) and the slots still being prepared (their
    /// waiters share them).
    fn trim(&self, newest: &[u8; 32]) {
        // Dropped after the lock is let go: freeing a compiled program unmaps its code and
        // resets the pool slots tied to it, which other requests' lookups must not wait for.
        let mut evicted = Vec::new();
        {
            let mut lru = self.lock();
            let weight = |slot: &Slot| slot.get().map_or(0, |p| p.bytes);
            let mut total: usize = lru.iter().map(|(_, slot)| weight(slot)).sum();
            while total > self.max_bytes {
                let victim = lru
                    .iter()
                    .rev()
                    .find(|(hash, slot)| *hash != newest && weight(slot) > 0)
                    .map(|(hash, _)| *hash);
                let Some(victim) = victim else { break };
                if let Some(slot) = lru.pop(&victim) {
                    total -= weight(&slot);
                    evicted.push(slot);
                }
            }
        }
        drop(evicted);
    }

    /// Counts a program prepared outside [`Self::load_or_compile`] (a RISC-V program) as
    /// compiled.
    pub(super) fn count_compile(&self) {
        self.compiles.fetch_add(1, Ordering::Relaxed);
    }

    /// One of the compilation slots (see `compile_slots`), for a compilation made outside
    /// [`Self::load_or_compile`].
    pub(super) async fn compile_slot(
        &self,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, EngineError> {
        self.compile_slots
            .acquire()
            .await
            .map_err(|_| EngineError::Internal("compile queue closed".into()))
    }

    /// Whether the disk cache holds an artifact for `hash`.
    pub(super) fn on_disk(&self, hash: &[u8; 32]) -> bool {
        self.disk.as_ref().is_some_and(|d| d.contains(hash))
    }

    /// Keeps `component`, compiled elsewhere from the component whose SHA-256 is `hash` (a
    /// JavaScript agent's snapshot, `super::js_compiler`), as if compiled here: its imports
    /// checked, pre-linked, in memory, and its `artifact` sealed on disk (in the background).
    ///
    /// # Errors
    /// [`EngineError::DisallowedImport`], [`EngineError::UnsupportedImport`].
    pub(super) async fn adopt(
        &self,
        linker: &Linker<HostState>,
        hash: [u8; 32],
        component: Component,
        artifact: Vec<u8>,
    ) -> Result<Arc<Prepared>, EngineError> {
        imports::check(
            &component,
            engine_of(&component),
            HostImports::of_client_components(),
        )?;
        let prepared = linked(linker, hash, &component)?;
        if let Some(disk) = self.disk.clone() {
            // Sealed and written after the answer: the artifact only saves a compilation at the
            // next start (a crash before it is written costs that compilation, nothing else).
            tokio::task::spawn_blocking(move || {
                if let Err(e) = disk.store(&hash, &artifact) {
                    tracing::warn!(error = %e, "cannot write the component cache");
                }
            });
        }
        let slot = Arc::new(OnceCell::new_with(Some(prepared.clone())));
        // (What it replaces, or pushes out by count, is dropped after the lock.)
        let replaced = self.lock().push(hash, slot);
        drop(replaced);
        self.trim(&hash);
        self.compiles.fetch_add(1, Ordering::Relaxed);
        Ok(prepared)
    }

    /// A compiled component whose imports are WASI and `allowed`: precompiled (shipped
    /// beside the binary, checked: `super::precompiled`), from the disk cache, or compiled
    /// (and then cached); not kept in memory (plug-ins are loaded at start-up and on
    /// reload only).
    pub(super) async fn load_or_compile(
        &self,
        engine: &wasmtime::Engine,
        hash: [u8; 32],
        bytes: Arc<Plaintext>,
        allowed: HostImports,
    ) -> Result<Component, EngineError> {
        let _slot = self
            .compile_slots
            .acquire()
            .await
            .map_err(|_| EngineError::Internal("compile queue closed".into()))?;
        let engine = engine.clone();
        let disk = self.disk.clone();
        let precompiled = self.precompiled.clone();
        let label = self.label;
        let (component, source) = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            if let Some(c) = from_precompiled(precompiled.as_deref(), label, started, |p| {
                p.load(&engine, &hash)
            }) {
                return Ok((c, Source::Precompiled));
            }
            let loaded = disk.as_ref().and_then(|disk| {
                from_disk(disk, &hash, label, started, |artifact| {
                    // SAFETY: `deserialize` trusts its input to be a wasmtime artifact. These
                    // bytes were produced by `Component::serialize` in this host and sealed
                    // with the host's at-rest key (AES-256-GCM-SIV); `load` only returns them
                    // after authentication succeeded, so they are exactly what this host
                    // wrote. wasmtime itself also rejects artifacts from another version or
                    // configuration, in which case we recompile below.
                    #[allow(unsafe_code)]
                    unsafe {
                        Component::deserialize(&engine, artifact)
                    }
                })
            });
            if let Some(c) = loaded {
                return Ok((c, Source::Disk));
            }
            let component = Component::new(&engine, &bytes[..])
                .map_err(|e| EngineError::InvalidComponent(error_chain(&e)))?;
            tracing::info!(
                size = bytes.len(),
                ms = started.elapsed().as_millis() as u64,
                "{label} compiled"
            );
            imports::check(&component, &engine, allowed)?;
            if let Some(disk) = &disk {
                to_disk(disk, &hash, component.serialize());
            }
            Ok((component, Source::Compiled))
        })
        .await
        .map_err(|e| EngineError::Internal(format!("compile task failed: {e}")))??;
        let counter = match source {
            Source::Compiled => &self.compiles,
            // Artifacts passed the import check when they were compiled, but check again: the
            // allow-list may have changed since (and precompiled ones were never checked here).
            Source::Disk | Source::Precompiled => {
                imports::check(&component, engine_of(&component), allowed)?;
                if source == Source::Disk {
                    &self.disk_hits
                } else {
                    &self.precompiled_hits
                }
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(component)
    }
}

impl ComponentCache {
    /// A compiled core module of the host's own (the JavaScript runtime's shared code,
    /// `super::js_shared`): precompiled (checked), from the disk cache, or compiled and then
    /// cached. Not kept in
    /// memory here (its owner keeps it), not counted.
    pub(super) async fn load_or_compile_module(
        &self,
        engine: &wasmtime::Engine,
        wasm: Vec<u8>,
    ) -> Result<wasmtime::Module, EngineError> {
        let hash: [u8; 32] = sha2::Sha256::digest(&wasm).into();
        let (engine, disk) = (engine.clone(), self.disk.clone());
        let precompiled = self.precompiled.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let what = "a module of the host's";
            if let Some(module) = from_precompiled(precompiled.as_deref(), what, started, |p| {
                p.load_module(&engine, &hash)
            }) {
                return Ok(module);
            }
            let loaded = disk.as_ref().and_then(|disk| {
                from_disk(disk, &hash, what, started, |artifact| {
                    // SAFETY: as for components in `load_or_compile`: sealed by this host with
                    // its at-rest key, authenticated before `load` returns it, and refused by
                    // wasmtime if another version or configuration made it.
                    #[allow(unsafe_code)]
                    unsafe {
                        wasmtime::Module::deserialize(&engine, artifact)
                    }
                })
            });
            if let Some(module) = loaded {
                return Ok(module);
            }
            let module = wasmtime::Module::new(&engine, &wasm)
                .map_err(|e| EngineError::InvalidComponent(error_chain(&e)))?;
            if let Some(disk) = &disk {
                to_disk(disk, &hash, module.serialize());
            }
            Ok(module)
        })
        .await
        .map_err(|e| EngineError::Internal(format!("compile task failed: {e}")))?
    }
}

/// What `load` takes from the precompiled artifacts (`what` names it in the log); `None` if
/// they do not list it or it is unusable (logged: the caller compiles it).
fn from_precompiled<T>(
    precompiled: Option<&Precompiled>,
    what: &str,
    started: std::time::Instant,
    load: impl FnOnce(&Precompiled) -> Option<Result<T, super::precompiled::Unusable>>,
) -> Option<T> {
    let precompiled = precompiled?;
    match load(precompiled)? {
        Ok(loaded) => {
            tracing::info!(
                dir = %precompiled.dir().display(),
                ms = started.elapsed().as_millis() as u64,
                "{what} loaded precompiled"
            );
            Some(loaded)
        }
        Err(e) => {
            tracing::warn!(error = %e, "precompiled {what} unusable; compiling it");
            None
        }
    }
}

/// The artifact sealed on `disk` for `hash`, deserialized by `load` (`what` names it in the
/// log); `None` if there is none or it is unusable (then removed: the caller compiles it).
fn from_disk<T>(
    disk: &ArtifactStore,
    hash: &[u8; 32],
    what: &str,
    started: std::time::Instant,
    load: impl FnOnce(&[u8]) -> wasmtime::Result<T>,
) -> Option<T> {
    match disk.load(hash) {
        Ok(Some(artifact)) => match load(&artifact) {
            Ok(loaded) => {
                tracing::info!(
                    size = artifact.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "{what} loaded from disk cache"
                );
                Some(loaded)
            }
            Err(e) => {
                tracing::info!(error = %e, "cached {what} unusable; recompiling");
                disk.remove(hash);
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the component cache");
            None
        }
    }
}

/// Seals a compiled artifact (`serialized`) on `disk` for `hash`; a failure is only logged
/// (it costs a compilation at the next start).
fn to_disk(disk: &ArtifactStore, hash: &[u8; 32], serialized: wasmtime::Result<Vec<u8>>) {
    match serialized {
        Ok(artifact) => {
            if let Err(e) = disk.store(hash, &artifact) {
                tracing::warn!(error = %e, "cannot write the component cache");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot serialize compiled code"),
    }
}

/// `component` pre-linked, with the entry points it exports.
pub(super) fn linked(
    linker: &Linker<HostState>,
    hash: [u8; 32],
    component: &Component,
) -> Result<Arc<Prepared>, EngineError> {
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| EngineError::UnsupportedImport(error_chain(&e)))?;
    let image = component.image_range();
    Ok(Arc::new(Prepared {
        hash,
        bytes: (image.end as usize).saturating_sub(image.start as usize),
        command: CommandPre::new(pre.clone()).ok(),
        http: ProxyPre::new(pre.clone()).ok(),
        handler: super::handler::HandlerAgentPre::new(pre).ok(),
        riscv: None,
    }))
}

fn engine_of(component: &Component) -> &wasmtime::Engine {
    component.engine()
}

#[cfg(test)]
mod tests;
