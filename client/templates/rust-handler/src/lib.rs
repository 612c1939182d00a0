//! `{{name}}`: a handler agent for WASM Hypervisor (world `hypervisor:host/handler-agent`,
//! `wit/`): an event in, a result out, in a fresh instance per invocation. By convention both
//! are JSON. Standard error is the agent's log.

wit_bindgen::generate!({
    path: "wit",
    world: "handler-agent",
});

use exports::hypervisor::host::handler::{Context, Guest, HandlerError};

struct Agent;

export!(Agent);

impl Guest for Agent {
    fn handle(event: Vec<u8>, ctx: Context) -> Result<Vec<u8>, HandlerError> {
        let event: serde_json::Value = serde_json::from_slice(&event).map_err(|_| HandlerError {
            code: "bad_event".into(),
            message: "the event is not JSON".into(),
        })?;
        let name = event["name"].as_str().unwrap_or("world");
        eprintln!("{}: greeted {name}", ctx.agent_name);
        let result = serde_json::json!({
            "greeting": format!("Hello, {name}!"),
            "agent": ctx.agent_name,
            "execution_id": ctx.execution_id,
        });
        Ok(result.to_string().into_bytes())
    }
}
