//! JavaScript agents over one compiled copy of the runtime's code ([`super::js_heap`]): the
//! code compiled once per process, each agent's heap component compiled in milliseconds and
//! linked against it.

use std::sync::Arc;

use wasmtime::component::{Component, Linker};

use super::cache::Prepared;
use super::js_heap::{self, Layout};
use super::{Engine, EngineError, HostImports, HostState};

/// A JavaScript engine's shared code, made on first use, or why it could not be made (kept:
/// its agents are then compiled whole, and nothing is tried again; see [`kept`]).
pub(super) type Kept = tokio::sync::OnceCell<Result<Arc<SharedCode>, String>>;

/// The runtime's code, compiled, and the linker that gives it to the agents' components.
pub struct SharedCode {
    layout: Layout,
    linker: Linker<HostState>,
}

impl SharedCode {
    /// Splits `runtime` (`reference` being a snapshot of it this host made) and compiles its
    /// code (or finds it precompiled or in the plug-in cache); the host's linker, cloned, gains
    /// the code under its import name.
    pub(super) async fn make(
        runtime: &[u8],
        reference: &[u8],
        engine: &Engine,
        label: &str,
    ) -> Result<Self, EngineError> {
        let started = std::time::Instant::now();
        let (layout, code) = Layout::of(runtime, reference)
            .map_err(|e| EngineError::Internal(format!("{label} cannot be split: {e}")))?;
        let size = code.len();
        let module = engine
            .plugins
            .load_or_compile_module(&engine.engine, code)
            .await?;
        // Cranelift's working memory, freed in the compiling threads' heaps: given back now.
        crate::memory::collect_everywhere();
        let mut linker = engine.linker.clone();
        linker
            .root()
            .module(layout.import(), &module)
            .map_err(|e| EngineError::Internal(super::error_chain(&e)))?;
        tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            size,
            import = layout.import(),
            "{label}'s code compiled, shared by every agent it runs"
        );
        Ok(Self { layout, linker })
    }
}

/// The shared code of the engine `label` names, kept in `kept`: made on first use from
/// `reference` (a snapshot the host sets up from `super::snapshot::reference_setup`'s module:
/// what every snapshot it makes looks like around the main module) and `runtime` (the engine's
/// component, whose main module is the code; `None`: the reference's own).
///
/// # Errors
/// [`EngineError::Internal`] naming why it could not be made. A failure to split or compile
/// the code is kept (it would fail again: nothing is tried again); a failed reference set-up
/// (a limit reached under load, the set-up's directory) is not, and the next caller tries again.
pub(super) async fn kept<F, E>(
    kept: &Kept,
    engine: &Engine,
    label: &str,
    runtime: Option<&[u8]>,
    reference: F,
) -> Result<Arc<SharedCode>, EngineError>
where
    F: Future<Output = Result<Vec<u8>, E>>,
    E: std::fmt::Display,
{
    let made = kept
        .get_or_try_init(|| async {
            let reference = reference.await.map_err(|e| {
                let e = format!("setting up the reference snapshot: {e}");
                tracing::warn!(error = %e, "no shared code for {label} yet: this agent is compiled whole, and the next tries again");
                e
            })?;
            let made = SharedCode::make(runtime.unwrap_or(&reference), &reference, engine, label)
                .await
                .map(Arc::new)
                .map_err(|e| e.to_string());
            if let Err(e) = &made {
                tracing::warn!(error = %e, "no shared code for {label}: its agents are compiled whole");
            }
            Ok::<_, String>(made)
        })
        .await
        .map_err(EngineError::Internal)?;
    made.clone().map_err(EngineError::Internal)
}

/// What `hypervisor precompile` compiles of the JavaScript runtime `runtime`, as (what,
/// bytes): the runtime instrumented for set-ups (a component) and its shared code (a core
/// module), each found by its SHA-256 when the host first sets an agent up.
///
/// # Errors
/// The runtime cannot be instrumented or split.
pub fn precompiled_parts(runtime: &[u8]) -> Result<[(&'static str, Vec<u8>); 2], String> {
    let (_, instrumented) = wasmtime_wizer::Wizer::new()
        .instrument_component(runtime)
        .map_err(|e| format!("instrumenting it: {}", super::error_chain(&e)))?;
    let code = js_heap::code_of(runtime)?;
    Ok([
        ("instrumented for set-ups", instrumented),
        ("shared code", code),
    ])
}

impl Engine {
    /// `snapshot` (a snapshot of the runtime whose code `shared` is, `hash` its SHA-256)
    /// prepared over that code and kept in the memory cache. Its compiled form is not written
    /// to the disk cache: it needs this process's shared code, and compiling it again costs
    /// milliseconds.
    ///
    /// # Errors
    /// [`EngineError::InvalidComponent`] when `snapshot` is not a snapshot of that runtime
    /// (the caller may compile it whole), or as [`super::imports::check`].
    pub(super) async fn prepare_js_heap(
        &self,
        shared: &Arc<SharedCode>,
        hash: [u8; 32],
        snapshot: Arc<impl AsRef<[u8]> + Send + Sync + 'static>,
    ) -> Result<Arc<Prepared>, EngineError> {
        self.cache
            .get_or_init(hash, || async {
                // A burst of agents loaded cold queues here, each holding its heap.
                let _slot = self.cache.compile_slot().await?;
                let host = self.engine.clone();
                let code = shared.clone();
                let component = tokio::task::spawn_blocking(move || {
                    let heap = js_heap::heap_component(&code.layout, (*snapshot).as_ref())
                        .map_err(EngineError::InvalidComponent)?;
                    Component::new(&host, &heap)
                        .map_err(|e| EngineError::InvalidComponent(super::error_chain(&e)))
                })
                .await
                .map_err(|e| EngineError::Internal(format!("compile task failed: {e}")))??;
                super::imports::check_with_module(
                    &component,
                    &self.engine,
                    HostImports::of_client_components(),
                    Some(shared.layout.import()),
                )?;
                self.cache.count_compile();
                super::cache::linked(&shared.linker, hash, &component)
            })
            .await
    }
}
