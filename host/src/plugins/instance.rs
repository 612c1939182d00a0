//! What every plug-in does the same way, written once: generate the bindings of its world
//! ([`plugin_world!`]), load the component for its role and check that it exports the world's
//! interface ([`Bound::load`]), build a store with the role's capabilities
//! ([`Bound::sandbox`]), instantiate in it and call under the store's time limit
//! ([`Bound::call`]), and say why a call failed ([`outcome`]).
//!
//! What differs stays with each plug-in: which slots bound its calls (the policy's own permits,
//! the execution slots for scripts, [`crate::engine::PLUGIN_CALLS`] for payments), whether an
//! instance is kept warm (policy, payments) or fresh per call (Python), and what its calls mean.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::{PluginError, builtin, chain, load_error};
use crate::engine::{Capabilities, Engine, EngineError, HostState, Invocation, RunLimits, Sandbox};

/// The bindings `bindgen!` generated for a plug-in world (implemented by [`plugin_world!`]).
pub(super) trait World: Sized + Send + 'static {
    /// The pre-instantiated bindings (`<World>Pre<HostState>`).
    type Pre: Send + Sync;
    /// The interface the world exports, named in errors (`hypervisor:host/policy`).
    const INTERFACE: &'static str;
    /// Binds a pre-linked component; fails when it lacks the world's export.
    fn bind(pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre>;
    /// A new instance in `store`.
    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<HostState>,
    ) -> impl Future<Output = wasmtime::Result<Self>> + Send;
}

/// Generates `mod bindings` for a plug-in world of `wit/` (async exports) and implements
/// [`World`] for its bindings type.
macro_rules! plugin_world {
    (world: $world:tt, bindings: $ty:ident, pre: $pre:ident, interface: $interface:tt) => {
        mod bindings {
            wasmtime::component::bindgen!({
                path: "../wit",
                world: $world,
                exports: { default: async },
            });
        }

        impl $crate::plugins::instance::World for bindings::$ty {
            type Pre = bindings::$pre<$crate::engine::HostState>;
            const INTERFACE: &'static str = $interface;

            fn bind(
                pre: wasmtime::component::InstancePre<$crate::engine::HostState>,
            ) -> wasmtime::Result<Self::Pre> {
                bindings::$pre::new(pre)
            }

            fn instantiate(
                pre: &Self::Pre,
                store: &mut wasmtime::Store<$crate::engine::HostState>,
            ) -> impl ::std::future::Future<Output = wasmtime::Result<Self>> + Send {
                pre.instantiate_async(store)
            }
        }
    };
}
pub(super) use plugin_world;

/// A loaded plug-in bound to its world, with its role's capabilities.
pub(super) struct Bound<W: World> {
    /// The engine it runs in.
    pub engine: Arc<Engine>,
    /// The component file.
    pub path: PathBuf,
    /// SHA-256 of the component file.
    pub hash: [u8; 32],
    /// Its stores' capabilities.
    pub capabilities: Capabilities,
    pre: W::Pre,
}

impl<W: World> Bound<W> {
    /// Loads the component at `path` for `capabilities.role` (imports checked against it) and
    /// binds it to `W`.
    ///
    /// # Errors
    /// [`PluginError::Load`], or [`PluginError::MissingExport`] naming `W::INTERFACE`.
    pub async fn load(
        engine: Arc<Engine>,
        capabilities: Capabilities,
        path: &Path,
    ) -> Result<Self, PluginError> {
        let bytes = builtin::read(path)
            .await
            .map_err(|e| load_error(path)(EngineError::Internal(e)))?;
        let plugin = engine
            .load_plugin(capabilities.role, bytes)
            .await
            .map_err(load_error(path))?;
        let pre = W::bind(plugin.pre).map_err(|e| PluginError::MissingExport {
            path: path.to_owned(),
            interface: W::INTERFACE,
            detail: chain(&e),
        })?;
        Ok(Self {
            engine,
            path: path.to_owned(),
            hash: plugin.hash,
            capabilities,
            pre,
        })
    }

    /// A fresh store with the plug-in's capabilities, `invocation` and `limits`.
    ///
    /// # Errors
    /// [`EngineError::Internal`] if the fuel budget cannot be set.
    pub fn sandbox(
        &self,
        invocation: Invocation<'_>,
        limits: RunLimits,
    ) -> Result<Sandbox, EngineError> {
        self.engine
            .sandbox(&self.capabilities, invocation, limits, self.hash)
    }

    /// Instantiates the plug-in in `sandbox` and calls `f` on the instance, all under the
    /// sandbox's time limit; the result (`None` at the deadline) and the time it took.
    pub async fn call<R>(
        &self,
        sandbox: &mut Sandbox,
        f: impl AsyncFnOnce(W, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> (Option<wasmtime::Result<R>>, Duration) {
        sandbox
            .run(&self.engine, async |store| {
                let instance = W::instantiate(&self.pre, &mut *store).await?;
                f(instance, store).await
            })
            .await
    }
}

/// A call's result, or why it failed: `timed out`, or the error with its causes.
pub(super) fn outcome<R>(result: Option<wasmtime::Result<R>>) -> Result<R, String> {
    match result {
        None => Err("timed out".into()),
        Some(Err(e)) => Err(chain(&e)),
        Some(Ok(r)) => Ok(r),
    }
}
