//! JavaScript and TypeScript agents: the modules of a `js` deployment checked (TypeScript
//! stripped of its types, `crate::typescript`), then set up once in the host's
//! JavaScript runtime (`components/js-runtime`, Boa) and snapshotted (`Engine::snapshot_js`):
//! the snapshot is the agent's component, a handler agent like any other (sealed at rest,
//! compiled once, invoked in fresh instances, encrypted, verifiable and payable as any).

use hypervisor_protocol::agents::{JsEngine, JsSource, MAX_JS_MODULES};
use hypervisor_protocol::wire::Limits;

use crate::engine::{JsModule, JsSnapshot, MAX_SETUP_TIME, SnapshotError};
use crate::error::ApiError;
use crate::pipeline::{Pipeline, resolve_limits};
use crate::typescript;

/// The longest module name, bytes.
const MAX_MODULE_NAME: usize = 256;

/// Checks the modules map: names, count, the main module present.
fn check(js: &JsSource) -> Result<(), ApiError> {
    let bad = |why: String| Err(ApiError::InvalidRequest(format!("js: {why}")));
    if js.modules.is_empty() || js.modules.len() > MAX_JS_MODULES {
        return bad(format!("send 1 to {MAX_JS_MODULES} modules"));
    }
    for name in js.modules.keys() {
        let fine = !name.is_empty()
            && name.len() <= MAX_MODULE_NAME
            && !name.starts_with('/')
            && name
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..")
            && name.bytes().all(|b| b.is_ascii_graphic());
        if !fine {
            return bad(format!(
                "{name:?} is not a module name (a relative `/`-separated path of printable ASCII, \
                 at most {MAX_MODULE_NAME} bytes, without `.` or `..` parts)"
            ));
        }
    }
    if !js.modules.contains_key(&js.main) {
        return bad(format!("the main module {:?} is not in `modules`", js.main));
    }
    Ok(())
}

impl Pipeline {
    /// The component of a JavaScript agent: its modules set up in the runtime and
    /// snapshotted (and the snapshot compiled), within the deployment's limits (and at most [`MAX_SETUP_TIME`]).
    ///
    /// # Errors
    /// [`ApiError::InvalidRequest`] for bad modules or a setup the runtime refused (a syntax
    /// error with its module, line and column; an import outside the map; no `handler`
    /// export; a module that threw), [`ApiError::AgentFailed`] for a setup stopped by a limit,
    /// [`ApiError::InvalidRequest`] on a host without the runtime.
    pub(super) async fn js_component(
        &self,
        js: &JsSource,
        limits: Option<&Limits>,
    ) -> Result<JsSnapshot, ApiError> {
        let Some(runtime) = self.js_runtime.clone() else {
            return Err(ApiError::InvalidRequest(
                "this host takes no JavaScript agents (javascript.enabled = false)".into(),
            ));
        };
        let starlingmonkey = match js.engine {
            JsEngine::Boa => None,
            JsEngine::StarlingMonkey => Some(self.starlingmonkey.clone().ok_or_else(|| {
                ApiError::InvalidRequest(
                    "js: engine_unavailable: this host has no StarlingMonkey engine \
                     (javascript.starlingmonkey is off, or the binary was built without it)"
                        .into(),
                )
            })?),
        };
        check(js)?;
        let mut limits = resolve_limits(limits, &self.config.limits, self.engine.fuel_enabled())?;
        limits.time = limits.time.min(MAX_SETUP_TIME);
        // TypeScript modules lose their types here (oxc), so a syntax error in any of them is
        // reported with its module, line and column before anything runs.
        let modules = js
            .modules
            .iter()
            .map(|(name, source)| {
                let source = if name.ends_with(".ts") || name.ends_with(".mts") {
                    typescript::strip(name, source)
                        .map_err(|e| ApiError::InvalidRequest(format!("js: syntax_error: {e}")))?
                } else {
                    source.clone()
                };
                Ok(JsModule {
                    name: name.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let snapshot = match &starlingmonkey {
            None => {
                self.engine
                    .snapshot_js(&runtime, &js.main, &modules, limits)
                    .await
            }
            Some(sm) => {
                self.engine
                    .snapshot_starlingmonkey(sm, &js.main, &modules, limits)
                    .await
            }
        };
        snapshot.map_err(|e| match e {
            SnapshotError::Refused { code, message } => {
                ApiError::InvalidRequest(format!("js: {code}: {message}"))
            }
            SnapshotError::Stopped(why) => {
                ApiError::AgentFailed(format!("setting up the JavaScript modules: {why}"))
            }
            SnapshotError::Engine(e) => e.into(),
        })
    }
}
