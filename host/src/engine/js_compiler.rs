//! Compiling a JavaScript engine's snapshots whole, fast.
//!
//! A snapshot is its engine's component with other data (the initialised heap): compiled from
//! scratch, each would pay Cranelift for megabytes of code it has compiled before (seconds on
//! two cores). So the engine's code is compiled by a second wasmtime engine with the same
//! code-generation settings and Cranelift's **incremental cache** (function by function, keyed
//! by the function's IR): after the first compilation every function of a snapshot is a cache
//! hit, and the artifact is then loaded into the host's engine.
//!
//! StarlingMonkey's snapshots are compiled this way (`super::starlingmonkey`). The default
//! runtime's agents run over one shared compiled copy of its code instead (`super::js_shared`);
//! this compiler only takes a snapshot of it that cannot (none the host made itself).
//!
//! Only an engine's own code ever reaches this compiler (snapshots change data, not code),
//! never a client's component: a shared per-function cache over clients' code would tell one
//! client, by compile time, which functions another has deployed.
//!
//! The default runtime instrumented for wizer (the component a setup runs in) is made and
//! compiled once per process ([`JsRuntime`]).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use sha2::{Digest, Sha256};
use wasmtime::CacheStore;
use wasmtime::component::Component;
use wasmtime_wizer::ComponentContext;

use super::EngineError;

type Entries = Arc<Mutex<HashMap<Box<[u8]>, Arc<[u8]>>>>;

/// Cranelift's incremental cache, in memory, bounded: entries past the bound are not kept
/// (a miss only costs a compilation).
///
/// Entries are copied into memory of a thread of the cache's own ([`keeper`]) before they are
/// kept: made on the compiling threads, among Cranelift's short-lived allocations, each would
/// keep a page of those threads' heaps in use, so the ~100 MiB a set-up's compilation frees
/// there could not go back to the system (mimalloc returns whole pages only; see
/// `docs/PERFORMANCE.md`, "Memory over a session").
#[derive(Debug)]
struct FunctionCache {
    entries: Entries,
    bytes: AtomicUsize,
    /// The most bytes kept (`engine.js_function_cache_bytes`; the runtime's compiled
    /// functions take ~24 MiB).
    max_bytes: usize,
    /// The way to the keeper thread (`None` if it could not be started: nothing is kept).
    keeper: Option<Mutex<mpsc::Sender<Keep>>>,
}

/// What the keeper thread is given.
enum Keep {
    /// An entry to copy and keep.
    Entry(Vec<u8>, Vec<u8>),
    /// Say when every entry sent before is kept.
    Barrier(mpsc::SyncSender<()>),
}

/// The keeper thread: copies each entry into its own heap's memory, keeps the copy, and frees
/// the original (which goes back to its compiling thread's heap).
fn keeper(entries: Entries, work: mpsc::Receiver<Keep>) {
    for keep in work {
        match keep {
            Keep::Entry(key, value) => {
                let (key, value) = (Box::<[u8]>::from(&key[..]), Arc::<[u8]>::from(&value[..]));
                entries
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(key, value);
            }
            Keep::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

impl FunctionCache {
    fn new(max_bytes: usize) -> Self {
        let entries = Entries::default();
        let (sender, work) = mpsc::channel();
        let shared = entries.clone();
        let keeper = std::thread::Builder::new()
            .name("js-function-cache".into())
            .spawn(move || keeper(shared, work));
        if let Err(e) = &keeper {
            tracing::warn!(error = %e, "no JavaScript function cache: every set-up compiles the runtime");
        }
        Self {
            entries,
            bytes: AtomicUsize::new(0),
            max_bytes,
            keeper: keeper.ok().map(|_| Mutex::new(sender)),
        }
    }

    /// Returns once every entry inserted before is kept.
    fn settle(&self) {
        let Some(keeper) = &self.keeper else { return };
        let (done, settled) = mpsc::sync_channel(1);
        let sent = keeper
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(Keep::Barrier(done));
        if sent.is_ok() {
            let _ = settled.recv();
        }
    }
}

impl CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(key).map(|v| Cow::Owned(v.to_vec()))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let size = key.len() + value.len();
        let Some(keeper) = &self.keeper else {
            return false;
        };
        // Counted when sent: the bound holds for what the keeper is still copying. (The
        // cache only ever gets the runtime's functions, each compiled once per key before it
        // is kept, so an entry sent twice is rare and only costs its bytes of the bound.)
        if self.bytes.fetch_add(size, Ordering::Relaxed) + size > self.max_bytes {
            self.bytes.fetch_sub(size, Ordering::Relaxed);
            return false;
        }
        keeper
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(Keep::Entry(key.to_vec(), value))
            .is_ok()
    }
}

/// The engine that compiles the JavaScript runtime's code (see the module's doc).
pub(super) struct JsCompiler {
    engine: wasmtime::Engine,
    functions: Arc<FunctionCache>,
}

/// The JavaScript runtime component, ready to set agents up: its bytes (kept as long as the
/// process), their SHA-256, and, from the first setup on, wizer's view of it and its
/// instrumented form compiled for the host's engine (both made once, not per deployment).
pub struct JsRuntime {
    pub(super) wasm: &'static [u8],
    hash: [u8; 32],
    /// Its core modules' code sections (SHA-256): what every snapshot of it carries
    /// unchanged, and nothing else.
    code: std::sync::OnceLock<HashSet<[u8; 32]>>,
    instrumented: tokio::sync::OnceCell<Instrumented>,
    /// Its code compiled once, shared by its agents (`super::js_shared`), or why it could not
    /// be (kept: the agents are then compiled whole, and nothing is tried again).
    pub(super) shared: super::js_shared::Kept,
}

/// The runtime as wizer instrumented it.
pub(super) struct Instrumented {
    /// Wizer's view of the runtime (what `snapshot_component` rewrites).
    pub(super) cx: ComponentContext<'static>,
    /// The instrumented runtime, compiled for the host's engine.
    pub(super) component: Component,
}

impl JsRuntime {
    /// The runtime component `wasm` (world `hypervisor:host/js-runtime`).
    pub fn new(wasm: &'static [u8]) -> Self {
        Self {
            wasm,
            hash: Sha256::digest(wasm).into(),
            code: std::sync::OnceLock::new(),
            instrumented: tokio::sync::OnceCell::new(),
            shared: tokio::sync::OnceCell::new(),
        }
    }

    /// Whether `component` is a snapshot of this runtime: the same code, byte for byte (so
    /// compiling it through [`JsCompiler`] feeds that engine's cache nothing but the
    /// runtime's functions).
    pub fn made_this(&self, sections: &[[u8; 32]]) -> bool {
        let known = self
            .code
            .get_or_init(|| code_sections(self.wasm).into_iter().collect());
        made_of(known, sections)
    }

    /// SHA-256 of the runtime component.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The instrumented runtime, made on first use, compiled by the host's engine or found in
    /// its plug-in cache (the same for every process of a host, so compiled once per version).
    /// Not through [`JsCompiler`]: its functions would fill that cache with entries no
    /// snapshot uses, since snapshots run over the shared code (`super::js_shared`).
    pub(super) async fn instrumented(
        &self,
        engine: &super::Engine,
    ) -> Result<&Instrumented, EngineError> {
        self.instrumented
            .get_or_try_init(|| async {
                let wasm = self.wasm;
                let (cx, instrumented) = tokio::task::spawn_blocking(move || {
                    wasmtime_wizer::Wizer::new()
                        .instrument_component(wasm)
                        .map_err(|e| EngineError::InvalidComponent(super::error_chain(&e)))
                })
                .await
                .map_err(|e| EngineError::Internal(format!("compile task failed: {e}")))??;
                let hash: [u8; 32] = Sha256::digest(&instrumented).into();
                let bytes = Arc::new(crate::crypto::plaintext::Plaintext::new(instrumented));
                let component = engine
                    .plugins
                    .load_or_compile(
                        &engine.engine,
                        hash,
                        bytes,
                        super::HostImports::of_client_components(),
                    )
                    .await?;
                crate::memory::collect_everywhere();
                Ok(Instrumented { cx, component })
            })
            .await
    }
}

impl JsCompiler {
    /// A compiler producing artifacts for an engine configured as `codegen` (the host's
    /// configuration without its instance allocator).
    pub(super) fn new(
        mut codegen: wasmtime::Config,
        cache_bytes: usize,
    ) -> Result<Self, EngineError> {
        let functions = Arc::new(FunctionCache::new(cache_bytes));
        // No map from machine code back to wasm offsets: it only serves the offsets in a
        // trap's backtrace, which inside our own runtime help nobody who deploys JavaScript,
        // and it took ~1.5 MiB of every JavaScript agent's compiled code (the host's engine
        // keeps it for clients' components; wasmtime does not require the two to agree).
        codegen.generate_address_map(false);
        codegen
            .enable_incremental_compilation(functions.clone())
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let engine =
            wasmtime::Engine::new(&codegen).map_err(|e| EngineError::Internal(e.to_string()))?;
        Ok(Self { engine, functions })
    }

    /// Bytes held by the function cache (keys and compiled functions).
    pub(super) fn cache_bytes(&self) -> usize {
        self.functions.bytes.load(Ordering::Relaxed)
    }

    /// `wasm` (the runtime's code: the runtime itself, instrumented or snapshotted) compiled
    /// here and loaded into `host`, with its serialized artifact.
    ///
    /// # Errors
    /// [`EngineError::InvalidComponent`] if it does not compile, [`EngineError::Internal`] if
    /// the host's engine refuses the artifact.
    pub(super) fn compile(
        &self,
        host: &wasmtime::Engine,
        wasm: &[u8],
    ) -> Result<(Component, Vec<u8>), EngineError> {
        let artifact = self
            .engine
            .precompile_component(wasm)
            .map_err(|e| EngineError::InvalidComponent(super::error_chain(&e)))?;
        // SAFETY: `deserialize` trusts its input to be a wasmtime artifact. These bytes were
        // produced just above, in this process, by `precompile_component` of an engine with
        // the host engine's code-generation settings; wasmtime checks that the settings match
        // and refuses the artifact otherwise.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(host, &artifact) }
            .map_err(|e| EngineError::Internal(super::error_chain(&e)))?;
        // Cranelift's working memory, freed in the compiling threads' heaps: given back now
        // (a first set-up otherwise left ~260 MiB more resident, docs/PERFORMANCE.md), once
        // the function cache holds its own copies of what this compilation added.
        self.functions.settle();
        crate::memory::collect_everywhere();
        Ok((component, artifact))
    }
}

/// The SHA-256 of every core module's code section in `wasm` (a component's modules, nested
/// ones included), in order; nothing if it does not parse.
pub(super) fn code_sections(wasm: &[u8]) -> Vec<[u8; 32]> {
    let mut sections = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::CodeSectionStart { range, .. }) => match wasm.get(range) {
                Some(code) => sections.push(Sha256::digest(code).into()),
                None => return Vec::new(),
            },
            Ok(_) => {}
            Err(_) => return Vec::new(),
        }
    }
    sections
}

/// Whether a component with code `sections` ([`code_sections`]) has code, and all of it is
/// among `known` (code sections by SHA-256):
/// then it is one of ours (a snapshot of the engine whose code `known` holds), and compiling
/// it through that engine's function cache feeds the cache nothing but the engine's
/// functions. A client's component with one module of the engine's code and another of its
/// own is not.
pub(super) fn made_of(known: &HashSet<[u8; 32]>, sections: &[[u8; 32]]) -> bool {
    !sections.is_empty() && sections.iter().all(|s| known.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module with one function whose body is `body` (without its size).
    fn module(body: &[u8]) -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.extend([1, 4, 1, 0x60, 0, 0]); // one type: [] -> []
        m.extend([3, 2, 1, 0]); // one function of it
        let len = u8::try_from(body.len()).unwrap();
        m.extend([10, len + 2, 1, len]);
        m.extend(body);
        m
    }

    /// A component of `modules` (core module sections only).
    fn component(modules: &[&[u8]]) -> Vec<u8> {
        let mut c = b"\0asm\x0d\0\x01\0".to_vec();
        for m in modules {
            c.push(1);
            c.push(u8::try_from(m.len()).unwrap());
            c.extend(*m);
        }
        c
    }

    #[test]
    fn only_components_whose_every_module_is_known_code_are_recognised() {
        let ours = module(&[0, 0x0b]);
        let theirs = module(&[0, 0x01, 0x0b]);
        let known: HashSet<[u8; 32]> = code_sections(&ours).into_iter().collect();
        assert_eq!(known.len(), 1);
        assert!(made_of(&known, &code_sections(&component(&[&ours]))));
        assert!(made_of(&known, &code_sections(&component(&[&ours, &ours]))));
        // The engine's code first, a client's after it: not ours (it once was: only the
        // first module's code was compared).
        assert!(!made_of(
            &known,
            &code_sections(&component(&[&ours, &theirs]))
        ));
        assert!(!made_of(&known, &code_sections(&component(&[&theirs]))));
        assert!(!made_of(&known, &code_sections(&component(&[]))));
        assert!(!made_of(&known, &code_sections(b"not wasm")));
    }

    #[test]
    fn the_function_cache_keeps_what_fits_and_nothing_more() {
        let cache = FunctionCache::new(96 << 20);
        assert!(cache.insert(b"k1", vec![1, 2, 3]));
        cache.settle();
        assert_eq!(cache.get(b"k1").as_deref(), Some(&[1u8, 2, 3][..]));
        assert!(cache.get(b"k2").is_none());
        assert!(!cache.insert(b"big", vec![0; 96 << 20]));
        assert!(cache.get(b"big").is_none());
        assert_eq!(cache.bytes.load(Ordering::Relaxed), 5);
    }
}
