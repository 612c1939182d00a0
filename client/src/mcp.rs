//! The host's MCP endpoint (`POST /mcp`, `docs/PROTOCOL.md` §20) from the client: list the
//! tools and call one, in the stateless 2026-07-28 revision (every request carries its
//! revision and capabilities in `_meta` and the matching headers; nothing to initialise).

use serde_json::{Value, json};

use crate::{Client, ClientError};

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
        self.mcp(
            "tools/call",
            json!({"name": name, "arguments": arguments}),
            Some(name),
        )
    }

    /// One request: `params` with the revision's `_meta`, the revision's headers.
    fn mcp(
        &self,
        method: &str,
        mut params: Value,
        tool: Option<&str>,
    ) -> Result<Value, ClientError> {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": REVISION,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {
                "name": "hypervisor-client", "version": env!("CARGO_PKG_VERSION")},
        });
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
}
