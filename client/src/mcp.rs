//! The host's MCP endpoint (`POST /mcp`, `docs/PROTOCOL.md` §20) from the client: list the
//! tools and call one, in the stateless 2026-07-28 revision (every request carries its
//! revision and capabilities in `_meta` and the matching headers; nothing to initialise).

use serde_json::{Value, json};

use crate::x402::{Offer, Payer};
use crate::{Client, ClientError};

/// `_meta` key of a payment (the x402 MCP binding).
const PAYMENT: &str = "x402/payment";

/// The revision spoken.
const REVISION: &str = "2026-07-28";

impl Client {
    /// `tools/list`: the host's tools (its public handler agents without a price).
    ///
    /// # Errors
    /// Transport errors, a JSON-RPC error ([`ClientError::Server`] with the JSON-RPC code as
    /// its `code`), or an answer without `tools`.
    pub fn mcp_tools(&self) -> Result<Vec<Value>, ClientError> {
        let result = self.mcp("tools/list", json!({}), None)?;
        match result.get("tools") {
            Some(Value::Array(tools)) => Ok(tools.clone()),
            _ => Err(ClientError::BadResponse("tools/list: no tools".into())),
        }
    }

    /// `tools/call` of `name` with `arguments`: the tool result (`content`, `structuredContent`,
    /// `isError`). A tool that failed is an `Ok` result with `isError: true`.
    ///
    /// # Errors
    /// Transport errors, or a JSON-RPC error such as an unknown tool (-32602).
    pub fn mcp_call(&self, name: &str, arguments: Value) -> Result<Value, ClientError> {
        self.mcp_call_paying(name, arguments, None)
    }

    /// [`Self::mcp_call`], paying a priced tool through the x402 MCP binding with `payer`: a
    /// result asking for payment (`isError`, PaymentRequired in `structuredContent`) is paid
    /// within the payer's limit and the call made again with the payment in
    /// `_meta["x402/payment"]`. Without a payer that result is returned as it is.
    ///
    /// # Errors
    /// As [`Self::mcp_call`]; [`ClientError::PaymentRefused`] for a price outside the limit.
    pub fn mcp_call_paying(
        &self,
        name: &str,
        arguments: Value,
        payer: Option<&Payer<'_>>,
    ) -> Result<Value, ClientError> {
        let params = json!({"name": name, "arguments": arguments});
        let result = self.mcp("tools/call", params.clone(), Some(name))?;
        let asks = result["isError"] == true && result["structuredContent"]["x402Version"].is_u64();
        let Some(payer) = payer.filter(|_| asks) else {
            return Ok(result);
        };
        let payload = payer.payload(&Offer::from_document(&result["structuredContent"])?)?;
        let mut paid = params;
        paid["_meta"] = json!({ PAYMENT: payload });
        self.mcp("tools/call", paid, Some(name))
    }

    /// One request: `params` with the revision's `_meta`, the revision's headers.
    fn mcp(
        &self,
        method: &str,
        mut params: Value,
        tool: Option<&str>,
    ) -> Result<Value, ClientError> {
        let meta = json!({
            "io.modelcontextprotocol/protocolVersion": REVISION,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {
                "name": "hypervisor-client", "version": env!("CARGO_PKG_VERSION")},
        });
        match params.get_mut("_meta").and_then(Value::as_object_mut) {
            Some(existing) => existing.extend(
                meta.as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.clone())),
            ),
            None => params["_meta"] = meta,
        }
        let mut headers = vec![
            ("mcp-protocol-version", REVISION.to_owned()),
            ("mcp-method", method.to_owned()),
            ("accept", "application/json, text/event-stream".to_owned()),
        ];
        if let Some(tool) = tool {
            headers.push(("mcp-name", tool.to_owned()));
        }
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let (status, _, answer) = self.post_json_with("/mcp", &request, &headers)?;
        rpc_result(method, status, answer)
    }
}

/// The `result` of a JSON-RPC answer; its `error` as [`ClientError::Server`] (the JSON-RPC code
/// as `code`).
///
/// # Errors
/// The error, or an answer with neither.
pub(crate) fn rpc_result(method: &str, status: u16, answer: Value) -> Result<Value, ClientError> {
    if let Some(error) = answer.get("error") {
        return Err(ClientError::Server {
            status,
            code: error["code"].to_string(),
            message: error["message"].as_str().unwrap_or_default().to_owned(),
        });
    }
    answer
        .get("result")
        .cloned()
        .ok_or_else(|| ClientError::BadResponse(format!("{method}: no result ({status})")))
}
