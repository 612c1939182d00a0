//! Compiling the JavaScript runtime and its snapshots fast.
//!
//! Every JavaScript agent is a snapshot of the same runtime component: the same code with
//! different data (the initialised heap). Compiled from scratch, each deployment would pay
//! Cranelift for ~7 MB of code it has compiled before (~5 s on two cores). So the runtime's
//! code is compiled by a second wasmtime engine with the same code-generation settings and
//! Cranelift's **incremental cache** (function by function, keyed by the function's IR): after
//! the first compilation every function of a snapshot is a cache hit, and the artifact is then
//! loaded into the host's engine.
//!
//! Only the embedded runtime's code ever reaches this engine (snapshots change data, not code),
//! never a client's component: a shared per-function cache over clients' code would tell one
//! client, by compile time, which functions another has deployed.
//!
//! The runtime instrumented for wizer (the component a setup runs in) is compiled once per
//! process and kept.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use wasmtime::CacheStore;
use wasmtime::component::Component;

use super::EngineError;

/// The most bytes the function cache keeps (the runtime's compiled functions take ~20 MiB).
const FUNCTION_CACHE_BYTES: usize = 96 << 20;

/// Cranelift's incremental cache, in memory, bounded: entries past the bound are not kept
/// (a miss only costs a compilation).
#[derive(Debug, Default)]
struct FunctionCache {
    entries: Mutex<HashMap<Vec<u8>, Arc<[u8]>>>,
    bytes: AtomicUsize,
}

impl CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(key).map(|v| Cow::Owned(v.to_vec()))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let size = key.len() + value.len();
        if self.bytes.load(Ordering::Relaxed) + size > FUNCTION_CACHE_BYTES {
            return false;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.insert(key.to_vec(), value.into()).is_none() {
            self.bytes.fetch_add(size, Ordering::Relaxed);
        }
        true
    }
}

/// The engine that compiles the JavaScript runtime's code (see the module's doc).
pub(super) struct JsCompiler {
    engine: wasmtime::Engine,
    /// The instrumented runtime, compiled for the host's engine, with the SHA-256 of the
    /// runtime it was made from.
    instrumented: Mutex<Option<([u8; 32], Component)>>,
}

impl JsCompiler {
    /// A compiler producing artifacts for an engine configured as `codegen` (the host's
    /// configuration without its instance allocator).
    pub(super) fn new(mut codegen: wasmtime::Config) -> Result<Self, EngineError> {
        codegen
            .enable_incremental_compilation(Arc::new(FunctionCache::default()))
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let engine =
            wasmtime::Engine::new(&codegen).map_err(|e| EngineError::Internal(e.to_string()))?;
        Ok(Self {
            engine,
            instrumented: Mutex::new(None),
        })
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
            .map_err(|e| EngineError::InvalidComponent(super::cache::error_chain(&e)))?;
        // SAFETY: `deserialize` trusts its input to be a wasmtime artifact. These bytes were
        // produced just above, in this process, by `precompile_component` of an engine with
        // the host engine's code-generation settings; wasmtime checks that the settings match
        // and refuses the artifact otherwise.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(host, &artifact) }
            .map_err(|e| EngineError::Internal(super::cache::error_chain(&e)))?;
        Ok((component, artifact))
    }

    /// The instrumented runtime for the host's engine: the one kept if `runtime_hash` is the
    /// runtime it was made from, else `instrumented` compiled (and kept).
    ///
    /// # Errors
    /// Those of [`Self::compile`].
    pub(super) fn instrumented(
        &self,
        host: &wasmtime::Engine,
        runtime_hash: [u8; 32],
        instrumented: &[u8],
    ) -> Result<Component, EngineError> {
        let mut kept = self
            .instrumented
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((hash, component)) = kept.as_ref()
            && *hash == runtime_hash
        {
            return Ok(component.clone());
        }
        let (component, _) = self.compile(host, instrumented)?;
        *kept = Some((runtime_hash, component.clone()));
        Ok(component)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_cache_keeps_what_fits_and_nothing_more() {
        let cache = FunctionCache::default();
        assert!(cache.insert(b"k1", vec![1, 2, 3]));
        assert_eq!(cache.get(b"k1").as_deref(), Some(&[1u8, 2, 3][..]));
        assert!(cache.get(b"k2").is_none());
        assert!(!cache.insert(b"big", vec![0; FUNCTION_CACHE_BYTES]));
        assert!(cache.get(b"big").is_none());
        assert_eq!(cache.bytes.load(Ordering::Relaxed), 5);
    }
}
