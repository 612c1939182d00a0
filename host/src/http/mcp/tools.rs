//! Deployed agents as MCP tools: the translation into the pipeline's one door
//! (`Pipeline::invoke_agent`, as `POST /agents/{name}/invoke` in the clear), never a second
//! way to run code.
//!
//! A tool is a public handler agent without a price: its name, its description, an input
//! schema of "any object" (the arguments are the handler's event). Calling it runs the agent;
//! the handler's JSON result comes back as `structuredContent` and, serialised, as the text
//! block; a handler error, a trap or a limit is a result with `isError: true`. Priced agents
//! are not tools yet (the x402 MCP binding is not implemented).

use hypervisor_protocol::agents::{AgentKind, InvokeRequest};
use serde_json::{Map, Value, json};

use super::Revision;
use crate::error::ApiError;
use crate::http::AppState;
use crate::pipeline::agents::invoke::Invoked;
use hypervisor_protocol::jsonrpc::{INTERNAL_ERROR, INVALID_PARAMS, Id, RpcError};

/// `tools/list`: every tool, in one page.
pub fn list(state: &AppState, id: &Id) -> Result<Value, RpcError> {
    let agents = state.pipeline.list_agents().map_err(|e| internal(id, &e))?;
    let tools: Vec<Value> = agents
        .iter()
        .filter(|a| is_tool(a.public, a.latest.kind, a.price.is_some()))
        .map(|a| {
            json!({
                "name": a.name,
                "description": a.description,
                "inputSchema": {"type": "object"},
            })
        })
        .collect();
    Ok(json!({ "tools": tools }))
}

/// Whether an agent is an MCP tool.
fn is_tool(public: bool, kind: AgentKind, priced: bool) -> bool {
    public && kind == AgentKind::Handler && !priced
}

/// `tools/call`: runs the agent named `params.name` with `params.arguments` as its event.
pub async fn call(
    state: &AppState,
    revision: Revision,
    id: &Id,
    params: &Map<String, Value>,
) -> Result<Value, RpcError> {
    let bad = |message: String| RpcError::new(Some(id.clone()), INVALID_PARAMS, message);
    let Some(Value::String(name)) = params.get("name") else {
        return Err(bad("tools/call needs params.name, a string".into()));
    };
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(bad("params.arguments must be an object".into())),
    };
    let unknown = || bad(format!("unknown tool: {name}"));
    let agent = match state.pipeline.agent_record(name) {
        Ok(agent) => agent,
        Err(ApiError::AgentNotFound(_)) => return Err(unknown()),
        Err(e) => return Err(internal(id, &e)),
    };
    if !is_tool(agent.public, agent.latest.kind, agent.price.is_some()) {
        return Err(unknown());
    }
    let event = serde_json::value::to_raw_value(&arguments).map_err(|e| bad(e.to_string()))?;
    let request = InvokeRequest {
        event: Some(event),
        ..InvokeRequest::default()
    };
    let response = match state.pipeline.invoke_agent(name, request, None, None).await {
        Ok(Invoked::Clear { response, .. }) => response,
        Ok(Invoked::Encrypted(_)) => return Err(internal_message(id, "an encrypted answer")),
        // The request reached the host but could not run (a limit, the policy, busy, a plug-in
        // unavailable): a tool error the model can read, with the host's stable code. Only the
        // host's own failures (500) are JSON-RPC errors.
        Err(e) if e.status_and_code().0 != axum::http::StatusCode::INTERNAL_SERVER_ERROR => {
            return Ok(tool_error(&format!("{}: {e}", e.error_code().as_str())));
        }
        Err(e) => return Err(internal(id, &e)),
    };
    if !response.ok {
        let message = match &response.error {
            Some(failure) => format!("{}: {}", failure.code, failure.message),
            None => format!("the agent stopped: {:?}", response.status),
        };
        return Ok(tool_error(&message));
    }
    let result = response.result_json().unwrap_or(Value::Null);
    let text = match &result {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut body = json!({
        "content": [{"type": "text", "text": text}],
        "isError": false,
    });
    // Structured output: any JSON value from 2026-07-28 on; an object before.
    if revision.structured_content_any() || result.is_object() {
        body["structuredContent"] = result;
    }
    body["_meta"] = json!({ "wasm-hypervisor/execution-id": response.execution_id });
    Ok(body)
}

/// A tool result reporting an error.
fn tool_error(message: &str) -> Value {
    json!({
        "content": [{"type": "text", "text": message}],
        "isError": true,
    })
}

/// A host failure: the stable code only (details stay in the host's log).
fn internal(id: &Id, e: &ApiError) -> RpcError {
    tracing::warn!(error = %e, "MCP request failed");
    internal_message(id, e.error_code().as_str())
}

fn internal_message(id: &Id, what: &str) -> RpcError {
    RpcError::new(
        Some(id.clone()),
        INTERNAL_ERROR,
        format!("the host failed: {what}"),
    )
}
