//! Pre-initialising a JavaScript agent (`wit/js.wit`): the runtime component's `setup` runs
//! once with the agent's modules, under the deployment's limits, and wasmtime's wizer
//! snapshots the initialised instance into a new component. That component is the agent: each
//! invocation instantiates it fresh (copy-on-write from the image), so nothing is shared
//! between invocations and nothing is parsed twice.

use std::time::Duration;

use sha2::{Digest, Sha256};

use wasmtime::Store;
use wasmtime::component::{Instance, Lift, Val, WasmList};
use wasmtime_wizer::ComponentInstanceState;

use super::cache::Prepared;
use super::capabilities::{Capabilities, Invocation, Role};
use std::sync::Arc;

use super::js_compiler::{JsCompiler, JsRuntime};
use super::js_shared::SharedCode;
use super::run::RunLimits;
use super::{Engine, EngineError};

/// One module of a JavaScript agent: its name in the map and its (JavaScript) source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsModule {
    /// Its path in the modules map.
    pub name: String,
    /// Its source.
    pub source: String,
}

/// Why a JavaScript agent could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The modules were refused (`syntax_error`, `missing_module`, `module_outside_map`,
    /// `no_handler`, `module_threw`): the deployer's fault.
    #[error("{message}")]
    Refused {
        /// The runtime's code.
        code: String,
        /// What and where.
        message: String,
    },
    /// The setup ran out of time, or trapped (a loop, a memory bomb at top level).
    #[error("setting up the modules did not finish: {0}")]
    Stopped(String),
    /// The host failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The arguments of `setup(main, modules)`.
fn setup_args(main: &str, modules: &[JsModule]) -> [Val; 2] {
    let modules = modules
        .iter()
        .map(|m| {
            Val::Record(vec![
                ("name".into(), Val::String(m.name.clone())),
                ("source".into(), Val::String(m.source.clone())),
            ])
        })
        .collect();
    [Val::String(main.into()), Val::List(modules)]
}

/// The `setup-error` record of a `result<_, setup-error>` value, as (code, message).
fn refusal(rets: &[Val]) -> Option<(String, String)> {
    let Some(Val::Result(Err(Some(record)))) = rets.first() else {
        return None;
    };
    let Val::Record(fields) = record.as_ref() else {
        return None;
    };
    let field = |name: &str| {
        fields.iter().find_map(|(k, v)| match v {
            Val::String(s) if k == name => Some(s.clone()),
            _ => None,
        })
    };
    Some((field("code")?, field("message")?))
}

/// A JavaScript agent set up: its component (the snapshot), compiled and in the cache.
pub struct JsSnapshot {
    /// The snapshot: the agent's component.
    pub component: Vec<u8>,
    /// Its SHA-256.
    pub hash: [u8; 32],
}

impl Engine {
    /// Runs the JavaScript runtime `runtime` (a component of world `hypervisor:host/js-runtime`)
    /// with `modules`, `main` first to evaluate, snapshots it and prepares the snapshot over
    /// the runtime's shared code (`super::js_shared`; compiled whole through
    /// [`super::js_compiler`] if it cannot be) into the memory cache: the agent's component.
    ///
    /// # Errors
    /// [`SnapshotError`].
    pub async fn snapshot_js(
        &self,
        runtime: &JsRuntime,
        main: &str,
        modules: &[JsModule],
        limits: RunLimits,
    ) -> Result<JsSnapshot, SnapshotError> {
        let started = std::time::Instant::now();
        let (snapshot, instrumented_at) =
            self.snapshot_bytes(runtime, main, modules, limits).await?;
        let set_up_at = started.elapsed();
        let hash: [u8; 32] = Sha256::digest(&snapshot).into();
        let snapshot = Arc::new(snapshot);
        let shared = runtime.shared(self).await;
        self.prepare_snapshot(shared, self.js_compiler.clone(), hash, snapshot.clone())
            .await?;
        let component = Arc::unwrap_or_clone(snapshot);
        let compiled_at = started.elapsed();
        tracing::info!(
            instrumented_ms = instrumented_at.as_millis() as u64,
            set_up_ms = (set_up_at - instrumented_at).as_millis() as u64,
            compiled_ms = (compiled_at - set_up_at).as_millis() as u64,
            size = component.len(),
            function_cache_bytes = self.js_compiler.cache_bytes(),
            "JavaScript agent set up and compiled"
        );
        Ok(JsSnapshot { component, hash })
    }

    /// The snapshot of `runtime` set up with `modules` (`main` first), and how long getting
    /// the instrumented runtime took.
    ///
    /// # Errors
    /// [`SnapshotError`].
    pub(super) async fn snapshot_bytes(
        &self,
        runtime: &JsRuntime,
        main: &str,
        modules: &[JsModule],
        limits: RunLimits,
    ) -> Result<(Vec<u8>, Duration), SnapshotError> {
        let started = std::time::Instant::now();
        let wizer = wasmtime_wizer::Wizer::new();
        let instrumented = runtime.instrumented(self).await?;
        let (cx, component) = (&instrumented.cx, &instrumented.component);
        let instrumented_at = started.elapsed();

        let _slot = self.execution_slot().await?;
        let capabilities = Capabilities::of(Role::HandlerAgent);
        let mut sandbox = self.sandbox(&capabilities, Invocation::default(), limits, [0; 32])?;
        let linker = &self.linker;
        let args = setup_args(main, modules);
        let (result, _) = sandbox
            .run(self, async |store| {
                let instance = linker.instantiate_async(&mut *store, component).await?;
                let setup = instance
                    .get_func(&mut *store, "setup")
                    .ok_or_else(|| wasmtime::Error::msg("the runtime exports no `setup`"))?;
                let mut rets = [Val::Bool(false)];
                setup.call_async(&mut *store, &args, &mut rets).await?;
                let mut state = InstanceState {
                    store,
                    instance,
                    failure: None,
                };
                let snapshot = wizer.snapshot_component(cx, &mut state).await?;
                if let Some(failure) = state.failure {
                    return Err(failure.context("reading the initialised instance's state"));
                }
                Ok::<_, wasmtime::Error>((snapshot, rets))
            })
            .await;
        let (snapshot, rets) = match result {
            None => {
                return Err(SnapshotError::Stopped(format!(
                    "time limit of {} ms",
                    limits.time.as_millis()
                )));
            }
            Some(Err(e)) => {
                let memory = sandbox.memory_refused();
                return Err(SnapshotError::Stopped(if memory {
                    "memory limit exceeded".into()
                } else {
                    super::cap_text(format!("{e:#}"), super::TRAP_DETAIL_BYTES)
                }));
            }
            Some(Ok(done)) => done,
        };
        drop(sandbox);
        if let Some((code, message)) = refusal(&rets) {
            return Err(SnapshotError::Refused { code, message });
        }
        Ok((snapshot, instrumented_at))
    }
}

impl Engine {
    /// `snapshot` (`hash` its SHA-256) of the engine whose shared code `shared` is made (or
    /// failed to be), prepared over it into the memory cache, or, if it cannot be, compiled
    /// whole through that engine's function cache `compiler`, with a warning. Also says
    /// whether it was prepared over the shared code.
    ///
    /// # Errors
    /// As [`Engine::compile_snapshot`].
    pub(super) async fn prepare_snapshot<W>(
        &self,
        shared: Result<Arc<SharedCode>, EngineError>,
        compiler: Arc<JsCompiler>,
        hash: [u8; 32],
        snapshot: Arc<W>,
    ) -> Result<(Arc<Prepared>, bool), EngineError>
    where
        W: AsRef<[u8]> + Send + Sync + 'static,
    {
        let over_shared = match shared {
            Ok(shared) => self.prepare_js_heap(&shared, hash, snapshot.clone()).await,
            Err(e) => Err(e),
        };
        match over_shared {
            Ok(prepared) => Ok((prepared, true)),
            Err(e) => {
                tracing::warn!(error = %e, "a JavaScript snapshot not prepared over the shared code; compiling it whole");
                Ok((
                    self.compile_snapshot(compiler, hash, snapshot).await?.0,
                    false,
                ))
            }
        }
    }

    /// `wasm` (a snapshot of one of the host's JavaScript engines, `hash` its SHA-256)
    /// compiled through `compiler` off the async threads and kept in the component cache;
    /// `wasm` is handed back.
    ///
    /// # Errors
    /// As [`JsCompiler::compile`].
    pub(super) async fn compile_snapshot<W>(
        &self,
        compiler: Arc<JsCompiler>,
        hash: [u8; 32],
        wasm: W,
    ) -> Result<(Arc<super::Prepared>, W), EngineError>
    where
        W: std::ops::Deref + Send + 'static,
        W::Target: AsRef<[u8]>,
    {
        let host = self.engine.clone();
        let (compiled, artifact, wasm) = blocking(move || {
            let (compiled, artifact) = compiler.compile(&host, (*wasm).as_ref())?;
            Ok((compiled, artifact, wasm))
        })
        .await?;
        let prepared = self
            .cache
            .adopt(&self.linker, hash, compiled, artifact)
            .await?;
        Ok((prepared, wasm))
    }
}

/// The one-line module a reference snapshot is set up from, and the limits of that set-up.
pub(super) fn reference_setup(engine: &Engine) -> (JsModule, RunLimits) {
    let limits = RunLimits {
        time: MAX_SETUP_TIME,
        memory_bytes: 256 << 20,
        fuel: engine.fuel_enabled().then_some(u64::MAX / 4),
    };
    let module = JsModule {
        name: "main.js".into(),
        source: "export function handler() { return null; }\n".into(),
    };
    (module, limits)
}

impl JsRuntime {
    /// The runtime's shared code (`super::js_shared`), made on first use.
    ///
    /// # Errors
    /// As [`super::js_shared::kept`].
    pub(super) async fn shared(&self, engine: &Engine) -> Result<Arc<SharedCode>, EngineError> {
        super::js_shared::kept(
            &self.shared,
            engine,
            "the JavaScript runtime",
            Some(self.wasm),
            async {
                let (module, limits) = reference_setup(engine);
                let modules = std::slice::from_ref(&module);
                let (reference, _) = engine
                    .snapshot_bytes(self, &module.name, modules, limits)
                    .await?;
                Ok::<_, SnapshotError>(reference)
            },
        )
        .await
    }
}

/// The initialised instance as wizer reads it: through the exports `instrument_component` added
/// (one function per global and memory of the runtime), called with wasmtime. wasmtime-wizer
/// has the same adapter behind its `wasmtime` feature, which also turns on wasmtime's `cache`,
/// `gc`, `threads` and `wave` features (zstd, a second wit parser, …) that nothing here uses:
/// they cost the build minutes and the binary megabytes. Unlike that one, a failed call is kept
/// as this snapshot's error (wizer's trait has no error path), not a panic.
struct InstanceState<'a, T: 'static> {
    store: &'a mut Store<T>,
    instance: Instance,
    failure: Option<wasmtime::Error>,
}

impl<T: Send> InstanceState<'_, T> {
    async fn call<R, R2: Default>(
        &mut self,
        instance: &str,
        func: &str,
        use_ret: impl FnOnce(&mut Store<T>, R) -> R2,
    ) -> R2
    where
        R: Lift + 'static,
    {
        if self.failure.is_some() {
            return R2::default();
        }
        match self.try_call::<R>(instance, func).await {
            Ok(ret) => use_ret(&mut *self.store, ret),
            Err(e) => {
                self.failure = Some(e.context(format!("{instance}#{func}")));
                R2::default()
            }
        }
    }

    async fn try_call<R: Lift + 'static>(
        &mut self,
        instance: &str,
        func: &str,
    ) -> wasmtime::Result<R> {
        let missing = || wasmtime::Error::msg("the instrumented component lacks this export");
        let (_, outer) = self
            .instance
            .get_export(&mut *self.store, None, instance)
            .ok_or_else(missing)?;
        let (_, inner) = self
            .instance
            .get_export(&mut *self.store, Some(&outer), func)
            .ok_or_else(missing)?;
        let typed = self
            .instance
            .get_typed_func::<(), (R,)>(&mut *self.store, inner)?;
        Ok(typed.call_async(&mut *self.store, ()).await?.0)
    }
}

impl<T: Send> ComponentInstanceState for InstanceState<'_, T> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        self.call(instance, func, |store, list: WasmList<u8>| {
            contents(list.as_le_slice(&store));
        })
        .await;
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func, |_, r| r).await
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func, |_, r| r).await
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call(instance, func, |_, r: f32| r.to_bits()).await
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call(instance, func, |_, r: f64| r.to_bits()).await
    }
}

/// `f` on a blocking thread (compilation takes whole cores).
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("compile task failed: {e}")))?
}

/// How long a setup may take at most, whatever the deployment asks.
pub const MAX_SETUP_TIME: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_gets_main_and_the_modules_as_records() {
        let [main, modules] = setup_args(
            "m.js",
            &[JsModule {
                name: "m.js".into(),
                source: "x".into(),
            }],
        );
        assert_eq!(main, Val::String("m.js".into()));
        let Val::List(list) = modules else {
            panic!("not a list")
        };
        assert_eq!(
            list,
            vec![Val::Record(vec![
                ("name".into(), Val::String("m.js".into())),
                ("source".into(), Val::String("x".into())),
            ])]
        );
    }
}
