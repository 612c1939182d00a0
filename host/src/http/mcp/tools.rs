//! Deployed agents as MCP tools: the translation into the pipeline's one door
//! (`Pipeline::invoke_agent`, as `POST /agents/{name}/invoke` in the clear), never a second
//! way to run code.
//!
//! A tool is a public handler agent: its name, its description, an input schema of "any
//! object" (the arguments are the handler's event). Calling it runs the agent; the handler's
//! JSON result comes back as `structuredContent` and, serialised, as the text block; a handler
//! error, a trap or a limit is a result with `isError: true`.
//!
//! A priced agent is paid with the x402 MCP binding: a call without payment (or with one
//! refused) is a tool result with `isError: true` carrying the PaymentRequired document in
//! `structuredContent` and, serialised, in `content[0].text`; the client calls again with the
//! PaymentPayload in `params._meta["x402/payment"]`; the result carries the settlement in
//! `_meta["x402/payment-response"]`.

use hypervisor_protocol::agents::{AgentKind, InvokeRequest};
use serde_json::{Map, Value, json};

use super::Revision;
use crate::error::ApiError;
use crate::http::{AppState, x402_meta};
use crate::pipeline::agents::invoke::Invoked;
use hypervisor_protocol::jsonrpc::{INTERNAL_ERROR, INVALID_PARAMS, Id, RpcError};

/// Tools per page of `tools/list`.
pub const TOOLS_PER_PAGE: usize = 100;

/// Agents read from the catalog at a time while filling a page of tools.
const SCAN: u32 = 1000;

/// `tools/list`: a page of tools, by name, from `params.cursor` (MCP's pagination: the
/// `nextCursor` of the previous page, here the last tool's name), with the `nextCursor` of the
/// next page when the page is full.
pub fn list(state: &AppState, id: &Id, params: &Map<String, Value>) -> Result<Value, RpcError> {
    let mut after = match params.get("cursor") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(cursor)) => cursor.clone(),
        Some(_) => {
            return Err(RpcError::new(
                Some(id.clone()),
                INVALID_PARAMS,
                "params.cursor must be a string (a nextCursor)",
            ));
        }
    };
    let mut tools: Vec<Value> = Vec::new();
    'pages: loop {
        let agents = state
            .pipeline
            .list_agents(&after, SCAN)
            .map_err(|e| internal(id, &e))?;
        let last_page = agents.len() < SCAN as usize;
        for a in &agents {
            after.clone_from(&a.name);
            if !is_tool(a.public, a.latest.kind) {
                continue;
            }
            let description = match (&a.price, &a.tariff) {
                (Some(price), Some(tariff)) => {
                    format!("{} (paid: {})", a.description, tariff.describe(price))
                }
                (Some(price), None) => format!(
                    "{} (paid: {price} atomic units per call, with x402)",
                    a.description
                ),
                (None, _) => a.description.clone(),
            };
            // The schemas its owner declared (signed with the deployment), else any object.
            let schemas = a.schemas.clone().unwrap_or_default();
            let mut tool = json!({
                "name": a.name,
                "description": description,
                "inputSchema": schemas.input.unwrap_or_else(|| json!({"type": "object"})),
            });
            if let Some(output) = schemas.output {
                tool["outputSchema"] = output;
            }
            // A metered tool's tariff and maximum, as its payment challenge offers them.
            if let (Some(price), Some(tariff)) = (&a.price, &a.tariff) {
                tool["_meta"] = json!({"x402/upto": {"maximum": price, "tariff": tariff}});
            }
            tools.push(tool);
            if tools.len() == TOOLS_PER_PAGE {
                break 'pages;
            }
        }
        if last_page {
            return Ok(json!({ "tools": tools }));
        }
    }
    Ok(json!({ "tools": tools, "nextCursor": after }))
}

/// Whether an agent is an MCP tool.
fn is_tool(public: bool, kind: AgentKind) -> bool {
    public && kind == AgentKind::Handler
}

/// `_meta` key of the client's payment (a PaymentPayload).
const PAYMENT: &str = "x402/payment";
/// `_meta` key of the settlement (a SettlementResponse).
const PAYMENT_RESPONSE: &str = "x402/payment-response";

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
    if !is_tool(agent.public, agent.latest.kind) {
        return Err(unknown());
    }
    let payment = params
        .get("_meta")
        .and_then(|m| m.get(PAYMENT))
        .map(x402_meta::payment_header);
    let event = serde_json::value::to_raw_value(&arguments).map_err(|e| bad(e.to_string()))?;
    let request = InvokeRequest {
        event: Some(event),
        ..InvokeRequest::default()
    };
    let (response, settlement) = match state
        .pipeline
        .invoke_agent(name, request.clone(), payment, None)
        .await
    {
        Ok(Invoked::Clear {
            response,
            settlement,
            ..
        }) => (response, settlement),
        Ok(Invoked::Encrypted(_)) => return Err(internal_message(id, "an encrypted answer")),
        // No payment, or one refused: the requirements, as the binding says.
        Err(ApiError::PaymentRequired {
            challenge, reason, ..
        }) => {
            return payment_required(id, x402_meta::requirements(&challenge), &reason);
        }
        // Settled work whose settlement failed: the result is withheld; ask again.
        Err(ApiError::SettlementFailed { reason, .. }) => {
            let required = match state.pipeline.invoke_agent(name, request, None, None).await {
                Err(ApiError::PaymentRequired { challenge, .. }) => {
                    x402_meta::requirements(&challenge)
                }
                _ => None,
            };
            return payment_required(id, required, &reason);
        }
        // The request reached the host but could not run (a limit, the policy, busy, a plug-in
        // unavailable): a tool error the model can read, with the host's stable code. Only the
        // host's own failures (500) are JSON-RPC errors.
        Err(e) if e.status_and_code().0 != axum::http::StatusCode::INTERNAL_SERVER_ERROR => {
            return Ok(tool_error(&format!(
                "{}: {}",
                e.error_code().as_str(),
                e.client_message()
            )));
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
    // The text block is the handler's JSON as it made it (a JS agent's `JSON.stringify`: key
    // order, number formatting and escapes kept); a string result is its text.
    let text = match (&result, &response.result) {
        (Value::String(s), _) => s.clone(),
        (_, Some(raw)) => raw.get().to_string(),
        (other, None) => other.to_string(),
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
    if let Some(settlement) = &settlement {
        body["_meta"][PAYMENT_RESPONSE] = x402_meta::settlement(settlement);
    }
    Ok(body)
}

/// The binding's payment-required result: the PaymentRequired document (its `error` the
/// reason) as structured content and as the text block.
fn payment_required(id: &Id, required: Option<Value>, reason: &str) -> Result<Value, RpcError> {
    let Some(mut required) = required.filter(Value::is_object) else {
        return Err(internal_message(id, "payment requirements"));
    };
    required["error"] = json!(reason);
    Ok(json!({
        "content": [{"type": "text", "text": required.to_string()}],
        "structuredContent": required,
        "isError": true,
    }))
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
