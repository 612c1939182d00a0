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
//! 4. **Prepare** the component over the engine's shared code ([`super::js_shared`]), as for
//!    the default engine: the engine's main module is compiled once per host (its code taken
//!    from a snapshot of a one-line module the host sets up itself, since wizer rewrites the
//!    module's globals and exports), and each agent's component is its heap over it. A
//!    snapshot that cannot be (never expected of one made here) is compiled whole through an
//!    incremental cache of StarlingMonkey's own functions ([`super::js_compiler`]).
//!
//! The result is a handler agent like any other: sealed at rest, invoked in fresh instances.

mod refusal;
mod setup;
mod workspace;

use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::Module;
use wasmtime_wizer::{ModuleContext, Wizer};

use super::js_compiler::{JsCompiler, code_sections, made_of};
use super::js_shared::SharedCode;
use super::run::RunLimits;
use super::snapshot::{JsModule, JsSnapshot, SnapshotError, blocking};
use super::{Engine, EngineError};
use crate::config::Config;
use workspace::HANDLER;

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
    /// Its code compiled once, shared by its agents.
    shared: super::js_shared::Kept,
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
            shared: tokio::sync::OnceCell::new(),
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

    /// The instrumented engine, made on first use, compiled by the host's engine or found in
    /// its plug-in cache (wizer's instrumentation is deterministic: compiled once per host and
    /// version). Not through the function cache: its entries would not serve the snapshots
    /// (the instrumented functions' IR differs from the snapshot's).
    async fn instrumented(&self, engine: &Engine) -> Result<&Instrumented, EngineError> {
        self.instrumented
            .get_or_try_init(|| async {
                let wasm = self.wasm;
                let (cx, instrumented) = blocking(move || {
                    wizer()
                        .instrument(wasm)
                        .map_err(|e| EngineError::InvalidComponent(super::error_chain(&e)))
                })
                .await?;
                let module = engine
                    .plugins
                    .load_or_compile_module(&engine.engine, instrumented)
                    .await?;
                crate::memory::collect_everywhere();
                Ok(Instrumented { cx, module })
            })
            .await
    }

    /// Its shared code (`super::js_shared`), made on first use from a reference snapshot.
    ///
    /// # Errors
    /// As [`super::js_shared::kept`].
    pub(super) async fn shared(&self, engine: &Engine) -> Result<Arc<SharedCode>, EngineError> {
        super::js_shared::kept(&self.shared, engine, "StarlingMonkey", None, async {
            let (module, limits) = super::snapshot::reference_setup(engine);
            let modules = std::slice::from_ref(&module);
            let (reference, _) = engine
                .starlingmonkey_component(self, &module.name, modules, limits)
                .await?;
            Ok::<_, SnapshotError>(reference)
        })
        .await
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

impl Engine {
    /// Sets `modules` up in StarlingMonkey (`main` evaluated first), snapshots the engine and
    /// prepares the snapshot over the engine's shared code into the memory cache (compiled
    /// whole through its function cache if it cannot be): the agent's component.
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
        let (component, times) = self
            .starlingmonkey_component(sm, main, modules, limits)
            .await?;
        let started = Instant::now();
        let hash: [u8; 32] = Sha256::digest(&component).into();
        let component = Arc::new(component);
        let shared = sm.shared(self).await;
        self.prepare_snapshot(shared, sm.compiler.clone(), hash, component.clone())
            .await?;
        let component = Arc::unwrap_or_clone(component);
        tracing::info!(
            instrumented_ms = times.instrumented.as_millis() as u64,
            set_up_ms = times.set_up.as_millis() as u64,
            encoded_ms = times.encoded.as_millis() as u64,
            compiled_ms = started.elapsed().as_millis() as u64,
            size = component.len(),
            function_cache_bytes = sm.compiler.cache_bytes(),
            "JavaScript agent set up in StarlingMonkey and compiled"
        );
        Ok(JsSnapshot { component, hash })
    }
}
