//! StarlingMonkey (SpiderMonkey) for JavaScript agents deployed with `"engine":
//! "starlingmonkey"`: the same source as the default engine's agents, set up and snapshotted
//! inside the host, about an order of magnitude faster on CPU-bound code (docs/PERFORMANCE.md).
//!
//! What componentize-js does on a developer's machine, done here for every agent:
//! 1. **Splice** (once, at build time: `components/starlingmonkey/splice.mjs`): the engine's core
//!    module gets the handler world's imports and exports, and the JavaScript bindings between
//!    them and the agent are generated. Neither depends on an agent. The spliced module carries
//!    them in a custom section, [`SECTION`].
//! 2. **Set up** (per agent): the engine, instrumented by wizer and compiled once per process,
//!    runs its initialiser (`componentize.wizer`) under WASI preview 1 with a read-only
//!    directory holding the agent's modules, the bindings and our handler module (which imports
//!    the agent's main module and adapts its `handler(event, context)` to the world's
//!    `handle`), within the deployment's time and memory limits.
//! 3. **Snapshot** the initialised instance (wizer), and make a component of it
//!    (`wit-component`, with wasmtime's WASI preview 1 adapter).
//! 4. **Compile** through an incremental cache of StarlingMonkey's own functions (every
//!    snapshot has the engine's code byte for byte), as [`super::js_compiler`] does for the
//!    default engine.
//!
//! The result is a handler agent like any other: sealed at rest, invoked in fresh instances.

mod refusal;
mod workspace;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::{Linker, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx};
use wasmtime_wizer::{ModuleContext, SnapshotVal, ValType, Wizer};

use super::js_compiler::{JsCompiler, code_sections, made_of};
use super::output::CappedOutput;
use super::run::RunLimits;
use super::sandbox::MemoryLimiter;
use super::snapshot::{JsModule, JsSnapshot, SnapshotError, blocking};
use super::{Engine, EngineError};
use crate::config::Config;
use refusal::{refusal, unavailable_at_load};
use workspace::{HANDLER, INITIALIZER};

/// The custom section of the spliced engine that carries the splice's outputs.
pub const SECTION: &str = "hypervisor:starlingmonkey";
/// The engine's initialiser, which reads the modules and evaluates them.
const INIT_FUNC: &str = "componentize.wizer";
/// The most bytes of the engine's output kept from a set-up (its error messages; the rest is
/// dropped, never an error).
const SETUP_OUTPUT_BYTES: usize = 64 << 10;

/// What the splice left in [`SECTION`].
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Splice {
    componentize_js: String,
    world: String,
    initializer: String,
    exports: Vec<(String, ExportSignature)>,
    imports: Vec<(String, String, u32)>,
}

/// An export's core signature, as the engine's initialiser reads it from its environment.
#[derive(serde::Deserialize)]
struct ExportSignature {
    params: Vec<String>,
    ret: Option<String>,
    retptr: bool,
    retsize: u32,
    paramptr: bool,
}

/// The spliced engine, ready to set agents up.
pub struct StarlingMonkey {
    wasm: &'static [u8],
    hash: [u8; 32],
    version: String,
    initializer: String,
    /// The environment of the initialiser: the world's exports and imports.
    env: Vec<(String, String)>,
    /// The code sections (SHA-256) of the components it makes: the engine's, the adapter's
    /// and `wit-component`'s shims (made once, from the engine as spliced).
    code: std::sync::OnceLock<std::collections::HashSet<[u8; 32]>>,
    compiler: Arc<JsCompiler>,
    instrumented: tokio::sync::OnceCell<Instrumented>,
}

/// The engine as wizer instrumented it, compiled for the host's engine.
struct Instrumented {
    cx: ModuleContext<'static>,
    module: Module,
}

impl StarlingMonkey {
    /// The spliced engine `wasm` (`components/starlingmonkey/splice.mjs`'s output), for a host
    /// configured as `config`.
    ///
    /// # Errors
    /// [`EngineError::InvalidComponent`] if it is not a spliced engine.
    pub fn new(wasm: &'static [u8], config: &Config) -> Result<Self, EngineError> {
        let bad = |why: String| EngineError::InvalidComponent(format!("StarlingMonkey: {why}"));
        let section = wasmparser::Parser::new(0)
            .parse_all(wasm)
            .find_map(|payload| match payload {
                Ok(wasmparser::Payload::CustomSection(c)) if c.name() == SECTION => Some(c.data()),
                _ => None,
            })
            .ok_or_else(|| bad(format!("no {SECTION} section: not made by splice.mjs")))?;
        let splice: Splice = serde_json::from_slice(section).map_err(|e| bad(e.to_string()))?;
        if splice.world != "hypervisor:host/handler-agent" {
            return Err(bad(format!(
                "spliced for {}, not the handler world",
                splice.world
            )));
        }
        let compiler = Arc::new(JsCompiler::new(
            super::settings::code_generation(config),
            config.javascript.starlingmonkey_function_cache_bytes,
        )?);
        Ok(Self {
            wasm,
            hash: Sha256::digest(wasm).into(),
            env: environment(&splice),
            version: splice.componentize_js,
            initializer: splice.initializer,
            code: std::sync::OnceLock::new(),
            compiler,
            instrumented: tokio::sync::OnceCell::new(),
        })
    }

    /// SHA-256 of the spliced engine.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The componentize-js version it was spliced from.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether `component` is a snapshot of this engine: every core module's code is one a
    /// component made here has (the engine's, the adapter's, the shims'), byte for byte.
    pub fn made_this(&self, sections: &[[u8; 32]]) -> bool {
        let known = self.code.get_or_init(|| {
            // The component of the engine as spliced has the same modules' code as every
            // snapshot: wizer changes data, not code, and the imports are the same.
            match encode(self.wasm) {
                Ok(made) => code_sections(&made).into_iter().collect(),
                Err(e) => {
                    tracing::warn!("StarlingMonkey: no component of the engine ({e}): snapshots compile from scratch");
                    std::collections::HashSet::new()
                }
            }
        });
        made_of(known, sections)
    }

    /// Its snapshots' compiler.
    pub(super) fn compiler(&self) -> Arc<JsCompiler> {
        self.compiler.clone()
    }

    /// The instrumented engine, made and compiled on first use. Compiled by the host's engine,
    /// not through the function cache: compiled there, its entries did not serve the
    /// snapshots (the instrumented functions' IR differs from the snapshot's), and with them
    /// the cache filled its 64 MiB bound in one set-up (docs/PERFORMANCE.md).
    async fn instrumented(&self, host: &wasmtime::Engine) -> Result<&Instrumented, EngineError> {
        self.instrumented
            .get_or_try_init(|| async {
                let (host, wasm) = (host.clone(), self.wasm);
                blocking(move || {
                    let invalid =
                        |e: wasmtime::Error| EngineError::InvalidComponent(super::error_chain(&e));
                    let (cx, instrumented) = wizer().instrument(wasm).map_err(invalid)?;
                    let module = Module::new(&host, &instrumented).map_err(invalid)?;
                    crate::memory::collect_everywhere();
                    Ok(Instrumented { cx, module })
                })
                .await
            })
            .await
    }

    /// The set-up's WASI: stdin carries the initialiser's arguments, the environment the
    /// world's signatures, `dir` is the only directory (read-only), and output goes to `output`.
    fn wasi(&self, dir: &Path, output: &CappedOutput) -> Result<WasiP1Ctx, EngineError> {
        let args =
            format!("--initializer-script-path /{INITIALIZER} --strip-path-prefix / {HANDLER}");
        let mut wasi = WasiCtx::builder();
        wasi.stdin(MemoryInputPipe::new(args.into_bytes()))
            .stdout(output.clone())
            .stderr(output.clone());
        for (key, value) in &self.env {
            wasi.env(key, value);
        }
        wasi.preopened_dir(dir, "/", FsPerms::ReadOnly)
            .map_err(|e| EngineError::Internal(format!("the set-up's directory: {e}")))?;
        Ok(wasi.build_p1())
    }
}

/// The initialiser's environment, as componentize-js sets it: each export's name and core
/// signature, each import's name and argument count.
fn environment(splice: &Splice) -> Vec<(String, String)> {
    let star = |b: bool| if b { "*" } else { "" };
    let mut env = vec![
        ("SOURCE_NAME".to_owned(), HANDLER.to_owned()),
        ("FEATURE_CLOCKS".to_owned(), "1".to_owned()),
        ("EXPORT_CNT".to_owned(), splice.exports.len().to_string()),
        ("IMPORT_CNT".to_owned(), splice.imports.len().to_string()),
    ];
    for (i, (name, sig)) in splice.exports.iter().enumerate() {
        env.push((format!("EXPORT{i}_NAME"), name.clone()));
        let args = format!("{}{}", star(sig.paramptr), sig.params.join(","));
        env.push((format!("EXPORT{i}_ARGS"), args));
        let ret = format!("{}{}", star(sig.retptr), sig.ret.as_deref().unwrap_or(""));
        env.push((format!("EXPORT{i}_RET"), ret));
        env.push((format!("EXPORT{i}_RETSIZE"), sig.retsize.to_string()));
    }
    for (i, (_, name, args)) in splice.imports.iter().enumerate() {
        env.push((format!("IMPORT{i}_NAME"), name.clone()));
        env.push((format!("IMPORT{i}_ARGCNT"), args.to_string()));
    }
    env
}

/// The component of a core module of the engine: the module and wasmtime's WASI preview 1
/// adapter, as componentize-js makes it.
fn encode(module: &[u8]) -> anyhow::Result<Vec<u8>> {
    wit_component::ComponentEncoder::default()
        .module(module)?
        .adapter(
            "wasi_snapshot_preview1",
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .encode()
}

fn wizer() -> Wizer {
    let mut wizer = Wizer::new();
    wizer.init_func(INIT_FUNC);
    wizer
}

/// A set-up's store.
struct SetUp {
    wasi: WasiP1Ctx,
    limiter: MemoryLimiter,
}

impl Engine {
    /// Sets `modules` up in StarlingMonkey (`main` evaluated first), snapshots the engine and
    /// compiles the snapshot into the component cache: the agent's component.
    ///
    /// # Errors
    /// [`SnapshotError`].
    pub async fn snapshot_starlingmonkey(
        &self,
        sm: &StarlingMonkey,
        main: &str,
        modules: &[JsModule],
        limits: RunLimits,
    ) -> Result<JsSnapshot, SnapshotError> {
        let started = Instant::now();
        let instrumented = sm.instrumented(&self.engine).await?;
        let instrumented_at = started.elapsed();
        let _slot = self.execution_slot().await?;
        let dir = workspace::create(&sm.initializer, main, modules)?;
        let output = CappedOutput::new(SETUP_OUTPUT_BYTES);
        let mut store = Store::new(
            &self.engine,
            SetUp {
                wasi: sm.wasi(dir.path(), &output)?,
                limiter: MemoryLimiter::new(limits.memory_bytes),
            },
        );
        store.limiter(|s| &mut s.limiter);
        if self.fuel {
            store
                .set_fuel(limits.fuel.unwrap_or(u64::MAX))
                .map_err(|e| EngineError::Internal(e.to_string()))?;
        }
        let mut linker = Linker::new(&self.engine);
        let internal = |e: wasmtime::Error| EngineError::Internal(super::error_chain(&e));
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut SetUp| &mut s.wasi)
            .map_err(internal)?;
        // The world's own imports: never called while setting up.
        linker
            .define_unknown_imports_as_traps(&instrumented.module)
            .map_err(internal)?;
        let result = self
            .call_with_deadline(&mut store, limits.time, async |store| {
                let instance = linker
                    .instantiate_async(&mut *store, &instrumented.module)
                    .await?;
                for name in ["_initialize", INIT_FUNC] {
                    let init = instance.get_typed_func::<(), ()>(&mut *store, name)?;
                    init.call_async(&mut *store, ()).await?;
                }
                let mut state = State {
                    store,
                    instance,
                    failure: None,
                };
                let snapshot = wizer().snapshot(&instrumented.cx, &mut state).await?;
                if let Some(failure) = state.failure {
                    return Err(failure.context("reading the initialised instance's state"));
                }
                let check = instance.get_typed_func::<(), i32>(&mut *store, "check_init")?;
                let checked = check.call_async(&mut *store, ()).await?;
                Ok::<_, wasmtime::Error>((snapshot, checked))
            })
            .await;
        drop(dir);
        let text = String::from_utf8_lossy(&output.take().0).into_owned();
        let snapshot = match result {
            None => {
                return Err(SnapshotError::Stopped(format!(
                    "time limit of {} ms",
                    limits.time.as_millis()
                )));
            }
            Some(Err(e)) => {
                if store.data().limiter.refused() {
                    return Err(SnapshotError::Stopped("memory limit exceeded".into()));
                }
                if super::is_deadline(&e) {
                    return Err(SnapshotError::Stopped(format!(
                        "time limit of {} ms",
                        limits.time.as_millis()
                    )));
                }
                if let Some(import) = unavailable_at_load(&e) {
                    return Err(SnapshotError::Refused {
                        code: "module_threw".into(),
                        message: format!(
                            "the modules' top-level code used {import}, which StarlingMonkey \
                             cannot reach while it loads them (randomness, the monotonic clock, \
                             timers and the network wait for the handler): call it inside \
                             `handler`"
                        ),
                    });
                }
                return Err(refusal(&text).unwrap_or_else(|| {
                    SnapshotError::Stopped(super::cap_text(
                        format!("{e:#}"),
                        super::TRAP_DETAIL_BYTES,
                    ))
                }));
            }
            Some(Ok((_, checked))) if checked != 0 => {
                return Err(SnapshotError::Stopped(format!(
                    "the engine's check after the set-up failed ({checked}): {}",
                    super::cap_text(text, super::TRAP_DETAIL_BYTES)
                )));
            }
            Some(Ok((snapshot, _))) => snapshot,
        };
        drop(store);
        let set_up_at = started.elapsed();
        let component = encode(&snapshot)
            .map_err(|e| EngineError::Internal(format!("making the component: {e:#}")))?;
        drop(snapshot);
        let encoded_at = started.elapsed();
        let hash: [u8; 32] = Sha256::digest(&component).into();
        let (_, component) = self
            .compile_snapshot(sm.compiler.clone(), hash, component)
            .await?;
        let compiled_at = started.elapsed();
        tracing::info!(
            instrumented_ms = instrumented_at.as_millis() as u64,
            set_up_ms = (set_up_at - instrumented_at).as_millis() as u64,
            encoded_ms = (encoded_at - set_up_at).as_millis() as u64,
            compiled_ms = (compiled_at - encoded_at).as_millis() as u64,
            size = component.len(),
            function_cache_bytes = sm.compiler.cache_bytes(),
            "JavaScript agent set up in StarlingMonkey and compiled"
        );
        Ok(JsSnapshot { component, hash })
    }
}

/// The initialised instance as wizer reads it (its exported globals and memory). A failed
/// read is kept as this snapshot's error (wizer's trait has no error path), not a panic.
struct State<'a> {
    store: &'a mut Store<SetUp>,
    instance: wasmtime::Instance,
    failure: Option<wasmtime::Error>,
}

impl wasmtime_wizer::InstanceState for State<'_> {
    async fn global_get(&mut self, name: &str, _type: ValType) -> SnapshotVal {
        let value = self
            .instance
            .get_global(&mut *self.store, name)
            .map(|g| g.get(&mut *self.store));
        match value {
            Some(wasmtime::Val::I32(x)) => SnapshotVal::I32(x),
            Some(wasmtime::Val::I64(x)) => SnapshotVal::I64(x),
            Some(wasmtime::Val::F32(x)) => SnapshotVal::F32(x),
            Some(wasmtime::Val::F64(x)) => SnapshotVal::F64(x),
            Some(wasmtime::Val::V128(x)) => SnapshotVal::V128(x.as_u128()),
            other => {
                self.failure.get_or_insert_with(|| {
                    wasmtime::Error::msg(format!("global {name}: {other:?}"))
                });
                SnapshotVal::I32(0)
            }
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        match self.instance.get_memory(&mut *self.store, name) {
            Some(memory) => contents(memory.data(&*self.store)),
            None => {
                self.failure
                    .get_or_insert_with(|| wasmtime::Error::msg(format!("no memory {name}")));
                contents(&[]);
            }
        }
    }
}
