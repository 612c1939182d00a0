//! Plug-in components: operator code that the host links through the worlds in `wit/` and runs
//! in the same sandbox as client code, swappable without rebuilding the host.
//!
//! - [`policy`]: the operator's policy, asked before any code runs (warm instances);
//! - [`python`]: the runtime of the Python routes (a fresh instance per script);
//! - [`payments`]: x402 challenges, verification and settlement (warm instances).
//!
//! Each plug-in is a component named in the configuration (a file, or one of the [`builtin`]
//! components embedded in the binary, the defaults), compiled once and kept in the
//! sealed plug-in cache (see [`crate::engine::Engine::load_plugin`]). Loading, binding,
//! instantiating and calling are written once, in `instance`; each plug-in's store gets its
//! role's capabilities (see [`crate::engine::Capabilities`]).

pub mod builtin;
mod instance;
pub mod payments;
pub mod policy;
pub mod python;

use std::path::{Path, PathBuf};

use crate::engine::EngineError;

/// Why a plug-in could not be loaded (at start-up or on reload).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The file could not be read, compiled or linked.
    #[error("plug-in {path}: {source}")]
    Load {
        /// The component file.
        path: PathBuf,
        /// What went wrong.
        source: EngineError,
    },
    /// The component does not export the interface its role needs.
    #[error("plug-in {path} does not export {interface}: {detail}")]
    MissingExport {
        /// The component file.
        path: PathBuf,
        /// The interface, e.g. `hypervisor:host/policy`.
        interface: &'static str,
        /// wasmtime's explanation.
        detail: String,
    },
    /// The rules document could not be read or converted to JSON.
    #[error("policy rules {path}: {detail}")]
    RulesFile {
        /// The rules file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The component refused the rules (`configure` returned an error).
    #[error("the policy component refused its rules: {0}")]
    RulesRejected(String),
    /// The component refused its settings, or could not be called.
    #[error("the plug-in refused its settings: {0}")]
    SettingsRejected(String),
    /// Instantiating or configuring the component failed (trap, deadline, memory).
    #[error("plug-in {path} failed to start: {detail}")]
    Start {
        /// The component file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

fn load_error(path: &Path) -> impl FnOnce(EngineError) -> PluginError + '_ {
    move |source| PluginError::Load {
        path: path.to_owned(),
        source,
    }
}

/// The error and its causes on one line.
fn chain(e: &wasmtime::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}
