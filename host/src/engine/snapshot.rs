//! Pre-initialising a JavaScript agent (`wit/js.wit`): the runtime component's `setup` runs
//! once with the agent's modules, under the deployment's limits, and wasmtime's wizer
//! snapshots the initialised instance into a new component. That component is the agent: each
//! invocation instantiates it fresh (copy-on-write from the image), so nothing is shared
//! between invocations and nothing is parsed twice.

use std::time::Duration;

use wasmtime::component::Val;

use super::capabilities::{Capabilities, Invocation, Role};
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

/// `text` as a WAVE string literal.
fn wave_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\'' => out.push_str("\\'"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The wizer call of `setup` with `main` and `modules`, in WAVE.
fn setup_call(main: &str, modules: &[JsModule]) -> String {
    let list = modules
        .iter()
        .map(|m| {
            format!(
                "{{name: {}, source: {}}}",
                wave_string(&m.name),
                wave_string(&m.source)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("setup({}, [{list}])", wave_string(main))
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

impl Engine {
    /// Runs the JavaScript runtime `runtime` (a component of world `hypervisor:host/js-runtime`)
    /// with `modules`, `main` first to evaluate, and returns the snapshot: the agent's
    /// component.
    ///
    /// # Errors
    /// [`SnapshotError`].
    pub async fn snapshot_js(
        &self,
        runtime: &[u8],
        main: &str,
        modules: &[JsModule],
        limits: RunLimits,
    ) -> Result<Vec<u8>, SnapshotError> {
        let _slot = self.execution_slot().await?;
        let capabilities = Capabilities::of(Role::HandlerAgent);
        let mut sandbox = self.sandbox(&capabilities, Invocation::default(), limits, [0; 32])?;
        let wizer = {
            let mut w = wasmtime_wizer::Wizer::new();
            w.init_func(setup_call(main, modules));
            w
        };
        let linker = &self.linker;
        let (result, _) = sandbox
            .run(self, async |store| {
                wizer
                    .run_component(store, runtime, async |store, component| {
                        linker.instantiate_async(store, component).await
                    })
                    .await
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
        if let Some((code, message)) = refusal(&rets) {
            return Err(SnapshotError::Refused { code, message });
        }
        Ok(snapshot)
    }
}

/// How long a setup may take at most, whatever the deployment asks.
pub const MAX_SETUP_TIME: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wave_strings_escape_what_they_must() {
        assert_eq!(wave_string("a\"b\\c\nd'é"), r#""a\"b\\c\nd\'é""#);
        assert_eq!(wave_string("\u{1}"), r#""\u{1}""#);
        let call = setup_call(
            "m.js",
            &[JsModule {
                name: "m.js".into(),
                source: "x".into(),
            }],
        );
        assert_eq!(call, r#"setup("m.js", [{name: "m.js", source: "x"}])"#);
    }
}
