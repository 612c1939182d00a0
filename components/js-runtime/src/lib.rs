//! The JavaScript runtime of JS/TS agents (world `hypervisor:host/js-runtime`, `wit/js.wit`):
//! Boa, a JavaScript engine in pure Rust, built for `wasm32-wasip2` from the crate registry.
//!
//! - `setup` (once, at deployment, before the host snapshots the instance): parses the
//!   agent's modules, links them through a loader that resolves imports inside the modules map
//!   only, evaluates the main module and keeps its exported `handler`.
//! - `handler.handle` (every invocation, in a fresh instance of the snapshot): calls
//!   `handler(event, context)`, runs the job queue until its promise settles, and answers the
//!   result as JSON.
//!
//! Globals besides the language's own (JSON, Date, Promise, …): `console` (`log`, `info`,
//! `debug` to stdout; `warn`, `error` to stderr), `TextEncoder`/`TextDecoder` (UTF-8),
//! `crypto.getRandomValues`, `fetch` over `wasi:http` (see [`fetch`]), and `agentState` and
//! `agentConfig` over `wasi:keyvalue` and `wasi:config` (see [`state`]).

mod aes;
mod compress;
mod derive;
mod fetch;
mod globals;
mod json;
mod legacy;
mod loader;
mod okp;
mod pattern;
mod rsa_public;
mod state;
mod subtle;
mod timers;
mod web;

use std::cell::RefCell;
use std::rc::Rc;

use boa_engine::builtins::promise::PromiseState;
use boa_engine::module::Module as JsModule;
use boa_engine::object::builtins::JsPromise;
use boa_engine::{Context, JsError, JsObject, JsValue, Source, js_string};

wit_bindgen::generate!({
    path: "../../wit",
    world: "hypervisor:host/js-runtime",
    generate_all,
});

use exports::hypervisor::host::handler::{Context as Invocation, Guest as Handler, HandlerError};

/// The set-up runtime: the engine and the agent's handler. Lives in the instance's memory, so
/// the host's snapshot carries it into every invocation.
struct Loaded {
    context: Context,
    handler: JsObject,
    /// Sets `Deno.env` to an invocation's `event.env`.
    set_env: JsObject,
    /// The engine's own `JSON.parse` and `JSON.stringify`.
    json: json::Json,
}

thread_local! {
    static LOADED: RefCell<Option<Loaded>> = const { RefCell::new(None) };
}

fn setup_error(code: &str, message: impl Into<String>) -> SetupError {
    SetupError {
        code: code.to_string(),
        message: message.into(),
    }
}

fn failure(code: &str, message: impl Into<String>) -> HandlerError {
    HandlerError {
        code: code.to_string(),
        message: message.into(),
    }
}

/// A thrown value as text: an error's `name: message`, anything else as JSON or a string.
fn describe(e: &JsError, context: &mut Context) -> String {
    let value = e
        .clone()
        .into_opaque(context)
        .unwrap_or_else(|_| JsValue::undefined());
    if let Some(object) = value.as_object() {
        let field = |name: &str, context: &mut Context| {
            object
                .get(js_string!(name), context)
                .ok()
                .filter(|v| !v.is_undefined())
                .and_then(|v| v.to_string(context).ok())
                .map(|s| s.to_std_string_escaped())
        };
        if let Some(message) = field("message", context) {
            let name = field("name", context).unwrap_or_else(|| "Error".into());
            return format!("{name}: {message}");
        }
    }
    globals::display(&value, context)
}

/// Runs the event loop until `promise` settles (or nothing is left that could settle it), then
/// drops the timers still pending.
fn settle(promise: &JsPromise, context: &mut Context) -> Result<PromiseState, JsError> {
    let state = timers::run_until(promise, context);
    timers::clear_all();
    state
}

/// An exception nothing caught (in a timer's callback), on standard error as `Uncaught …`.
pub(crate) fn report_uncaught(e: &JsError, context: &mut Context) {
    use std::io::Write;
    let text = format!("Uncaught {}\n", describe(e, context));
    let _ = std::io::stderr().write_all(text.as_bytes());
}

struct Runtime;

impl Guest for Runtime {
    fn setup(main: String, modules: Vec<Module>) -> Result<(), SetupError> {
        if LOADED.with(|l| l.borrow().is_some()) {
            return Err(setup_error(
                "already_set_up",
                "the modules are set up already",
            ));
        }
        web::reset_time_origin();
        let loader = Rc::new(loader::MapLoader::default());
        let mut context = Context::builder()
            .module_loader(loader.clone())
            .build()
            .map_err(|e| setup_error("internal", format!("{e}")))?;
        let json = json::Json::capture(&mut context)
            .map_err(|e| setup_error("internal", format!("{e}")))?;
        timers::register(&mut context).map_err(|e| setup_error("internal", format!("{e}")))?;
        let streams = modules.iter().any(|m| globals::mentions_streams(&m.source));
        let set_env = globals::register(&mut context, streams)
            .map_err(|e| setup_error("internal", format!("{e}")))?;
        for m in &modules {
            let source =
                Source::from_bytes(m.source.as_bytes()).with_path(std::path::Path::new(&m.name));
            let parsed = JsModule::parse(source, None, &mut context).map_err(|e| {
                setup_error(
                    "syntax_error",
                    format!("{}: {}", m.name, describe(&e, &mut context)),
                )
            })?;
            loader.insert(&m.name, parsed);
        }
        let Some(module) = loader.get(&main) else {
            return Err(setup_error(
                "missing_module",
                format!("the main module {main:?} is not in the modules map"),
            ));
        };
        let promise = module.load_link_evaluate(&mut context);
        match settle(&promise, &mut context) {
            Ok(PromiseState::Fulfilled(_)) => {}
            Ok(PromiseState::Rejected(reason)) => {
                let e = JsError::from_opaque(reason);
                let text = describe(&e, &mut context);
                let code = loader.refusal().unwrap_or("module_threw");
                return Err(setup_error(code, text));
            }
            Ok(PromiseState::Pending) => {
                return Err(setup_error(
                    "module_threw",
                    "the main module's evaluation never finished (a top-level await that never settles)",
                ));
            }
            Err(e) => return Err(setup_error("module_threw", describe(&e, &mut context))),
        }
        let namespace = module.namespace(&mut context);
        let handler = namespace
            .get(js_string!("handler"), &mut context)
            .map_err(|e| setup_error("no_handler", describe(&e, &mut context)))?;
        let Some(handler) = handler.as_callable() else {
            return Err(setup_error(
                "no_handler",
                format!("the main module {main:?} does not export a function `handler`"),
            ));
        };
        LOADED.with(|l| {
            *l.borrow_mut() = Some(Loaded {
                context,
                handler,
                set_env,
                json,
            })
        });
        Ok(())
    }
}

impl Handler for Runtime {
    fn handle(event: Vec<u8>, invocation: Invocation) -> Result<Vec<u8>, HandlerError> {
        LOADED.with(|l| {
            let mut loaded = l.borrow_mut();
            let Some(Loaded {
                context,
                handler,
                set_env,
                json,
            }) = loaded.as_mut()
            else {
                return Err(failure("not_set_up", "no JavaScript modules are set up"));
            };
            web::reset_time_origin();
            let event = std::str::from_utf8(&event)
                .map_err(|_| failure("bad_event", "the event is not UTF-8 text"))?;
            let event = json.parse(event, context).map_err(|e| {
                failure(
                    "bad_event",
                    format!("the event is not JSON: {}", describe(&e, context)),
                )
            })?;
            let env = match event.as_object() {
                Some(object) => object
                    .get(js_string!("env"), context)
                    .map_err(|e| failure("bad_event", describe(&e, context)))?,
                None => JsValue::undefined(),
            };
            set_env
                .call(&JsValue::undefined(), &[env], context)
                .map_err(|e| failure("internal", describe(&e, context)))?;
            // An environment of the Assist-compatible routes is the agent `env-<id>`.
            let environment = invocation
                .agent_name
                .strip_prefix("env-")
                .unwrap_or(&invocation.agent_name);
            let info = serde_json::json!({
                "executionId": invocation.execution_id,
                "requestId": invocation.execution_id,
                "environmentId": environment,
                "agentName": invocation.agent_name,
                "agentVersion": invocation.agent_version,
                "caller": invocation.caller,
                "deadlineMs": invocation.deadline_ms,
            });
            let info = JsValue::from_json(&info, context)
                .map_err(|e| failure("internal", describe(&e, context)))?;
            let returned = handler
                .call(&JsValue::undefined(), &[event, info], context)
                .map_err(|e| failure("handler_threw", describe(&e, context)))?;
            let value = match returned
                .as_object()
                .and_then(|o| JsPromise::from_object(o.clone()).ok())
            {
                None => returned,
                Some(promise) => match settle(&promise, context) {
                    Ok(PromiseState::Fulfilled(v)) => v,
                    Ok(PromiseState::Rejected(reason)) => {
                        let e = JsError::from_opaque(reason);
                        return Err(failure("handler_threw", describe(&e, context)));
                    }
                    Ok(PromiseState::Pending) => {
                        return Err(failure(
                            "handler_never_settled",
                            "the handler's promise never settled: nothing was left to run",
                        ));
                    }
                    Err(e) => return Err(failure("handler_threw", describe(&e, context))),
                },
            };
            json.stringify(&value, context).map_err(|e| match e {
                json::NotJson::Unrepresentable(what) => failure(
                    "result_not_json",
                    format!("the handler's result is {what}, which JSON cannot carry"),
                ),
                json::NotJson::Threw(e) => failure(
                    "result_not_json",
                    format!(
                        "the handler's result cannot be JSON: {}",
                        describe(&e, context)
                    ),
                ),
            })
        })
    }
}

export!(Runtime);
