//! x402's `bazaar` extension (x402 `specs/extensions/bazaar.md`): what a paid resource takes and
//! gives, declared in its challenge (`extensions.bazaar = {info, schema}`) so that facilitators
//! and marketplaces can catalog it, and served by this host itself as a discovery listing
//! (`GET /discovery/resources`, `http::routes::discovery`).
//!
//! Declared for the paid code routes (a `POST` of the route's JSON request, which is encrypted
//! to a session: the example shows its shape with placeholders), and for paid handler and CLI
//! agents (a `POST` of their invocation; a handler's event schema is the one its owner signed,
//! its examples the schema's own `examples`). A paid handler agent is also an MCP tool of the
//! host (`input.type = "mcp"`). HTTP agents declare nothing: their methods, paths and bodies are
//! theirs, and the host knows none of them.

use std::sync::{Arc, LazyLock};

use hypervisor_protocol::agents::{AgentKind, ToolSchemas};
use serde_json::{Value, json};

/// The extension's key in `extensions`.
pub const EXTENSION: &str = "bazaar";

/// What a paid resource declares: its `info` (input, output) and the `schema` of that `info`.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    /// `info`.
    pub info: Value,
    /// `schema`: JSON Schema draft 2020-12 of `info`.
    pub schema: Value,
}

impl Discovery {
    /// `{info, schema}`, as `extensions.bazaar`.
    pub fn declaration(&self) -> Value {
        json!({ "info": self.info, "schema": self.schema })
    }
}

const HEX: &str = "<hex>";
const KEY: &str = "<the client's P-256 public key, SEC1 hex>";
const SESSION: &str = "<session id from /encrypt/create_keypair>";

/// The declaration of the paid code route `path`, made once per kind of program: every paid
/// request's charge carries it (its 402 declares it), and making it costs about as much as
/// the payment's ledger write.
pub fn code_route(path: &str) -> Arc<Discovery> {
    static WASM: LazyLock<Arc<Discovery>> = LazyLock::new(|| Arc::new(code("encrypted_wasm")));
    static PYTHON: LazyLock<Arc<Discovery>> = LazyLock::new(|| Arc::new(code("encrypted_python")));
    if path.contains("python") {
        PYTHON.clone()
    } else {
        WASM.clone()
    }
}

/// The declaration of a paid code route whose program is the request's field `program`.
fn code(program: &str) -> Discovery {
    let body = json!({
        program: HEX,
        "encrypted_arguments": [HEX],
        "encrypted_stdin": HEX,
        "public_key": KEY,
        "session_id": SESSION,
    });
    let result = json!({
        "session_id": SESSION,
        "encrypted_result": HEX,
        "result_nonce": HEX,
        "result_commitment": HEX,
    });
    let body_schema = json!({
        "type": "object",
        "properties": {
            program: { "type": "string" },
            "encrypted_arguments": { "type": "array", "items": { "type": "string" } },
            "encrypted_stdin": { "type": "string" },
            "public_key": { "type": "string" },
            "session_id": { "type": "string" },
            "limits": { "type": "object" }
        },
        "required": [program, "public_key"]
    });
    http_post(body, body_schema, Some(result))
}

/// The declaration of the paid agent `kind` with `schemas` (handler and CLI agents; `None`
/// for HTTP agents).
pub fn agent(kind: AgentKind, schemas: Option<&ToolSchemas>) -> Option<Discovery> {
    match kind {
        AgentKind::Http => None,
        AgentKind::Cli => Some(http_post(
            json!({ "args": ["<argument>"], "stdin": "<standard input>" }),
            json!({
                "type": "object",
                "properties": {
                    "args": { "type": "array", "items": { "type": "string" } },
                    "stdin": { "type": "string" },
                    "limits": { "type": "object" }
                }
            }),
            None,
        )),
        AgentKind::Handler => {
            let (input, output) = event_schemas(schemas);
            let output_example = first_example(&output);
            Some(http_post(
                json!({ "event": first_example(&input).unwrap_or_else(|| json!({})) }),
                json!({
                    "type": "object",
                    "properties": { "event": input, "limits": { "type": "object" } },
                    "required": ["event"]
                }),
                output_example,
            ))
        }
    }
}

/// The declaration of a paid handler agent as the host's MCP tool `tool`.
pub fn mcp_tool(tool: &str, description: &str, schemas: Option<&ToolSchemas>) -> Discovery {
    let (input, output) = event_schemas(schemas);
    let mut input_info = json!({
        "type": "mcp",
        "tool": tool,
        "description": description,
        "transport": "streamable-http",
        "inputSchema": input,
    });
    if let Some(example) = first_example(&input) {
        input_info["example"] = example;
    }
    declared(
        input_info,
        json!({
            "type": "object",
            "properties": {
                "type": { "type": "string", "const": "mcp" },
                "tool": { "type": "string" },
                "description": { "type": "string" },
                "transport": { "type": "string", "enum": ["streamable-http", "sse"] },
                "inputSchema": { "type": "object" },
                "example": { "type": "object" }
            },
            "required": ["type", "tool", "inputSchema"],
            "additionalProperties": false
        }),
        first_example(&output),
    )
}

/// The largest owner schema a declaration carries, bytes of JSON: the declaration travels in
/// the base64 `PAYMENT-REQUIRED` header, which proxies and HTTP libraries bound (Node's whole
/// head at 16 KiB).
pub const MAX_DECLARED_SCHEMA_BYTES: usize = 4096;

/// A handler's event and result schemas, as its owner declared them; any object when not, when
/// larger than [`MAX_DECLARED_SCHEMA_BYTES`], or when it refers to its own root (`$ref`, which
/// would not resolve once embedded in the declaration's schema).
fn event_schemas(schemas: Option<&ToolSchemas>) -> (Value, Value) {
    let schemas = schemas.cloned().unwrap_or_default();
    let usable = |schema: Option<Value>| {
        schema
            .filter(|s| !has_ref(s))
            .filter(|s| s.to_string().len() <= MAX_DECLARED_SCHEMA_BYTES)
            .unwrap_or_else(|| json!({ "type": "object" }))
    };
    (usable(schemas.input), usable(schemas.output))
}

/// Whether `schema` has a `$ref` anywhere.
fn has_ref(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => map.contains_key("$ref") || map.values().any(has_ref),
        Value::Array(items) => items.iter().any(has_ref),
        _ => false,
    }
}

/// A schema's first `examples` entry (JSON Schema's own keyword), if it has one.
fn first_example(schema: &Value) -> Option<Value> {
    schema["examples"].as_array()?.first().cloned()
}

fn output_schema() -> Value {
    json!({
        "type": "object",
        "properties": { "type": { "type": "string" }, "example": {} },
        "required": ["type"]
    })
}

/// A `POST` of a JSON body like `body` (whose schema is `body_schema`), answering JSON like
/// `output` (when known).
fn http_post(body: Value, body_schema: Value, output: Option<Value>) -> Discovery {
    declared(
        json!({ "type": "http", "method": "POST", "bodyType": "json", "body": body }),
        json!({
            "type": "object",
            "properties": {
                "type": { "type": "string", "const": "http" },
                "method": { "type": "string", "enum": ["POST"] },
                "bodyType": { "type": "string", "enum": ["json"] },
                "body": body_schema,
                "queryParams": { "type": "object", "additionalProperties": { "type": "string" } },
                "headers": { "type": "object", "additionalProperties": { "type": "string" } }
            },
            "required": ["type", "method", "bodyType", "body"],
            "additionalProperties": false
        }),
        output,
    )
}

/// The declaration of `input` (whose schema is `input_schema`), answering JSON like
/// `output_example` (when known): `info` and the draft 2020-12 schema of `info`.
fn declared(input: Value, input_schema: Value, output_example: Option<Value>) -> Discovery {
    let mut output = json!({ "type": "json" });
    if let Some(example) = output_example {
        output["example"] = example;
    }
    Discovery {
        info: json!({ "input": input, "output": output }),
        schema: json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": { "input": input_schema, "output": output_schema() },
            "required": ["input"]
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `value` against the parts of JSON Schema these declarations use (type, const, enum,
    /// required, properties, additionalProperties false, items): enough to check that every
    /// `info` satisfies its own `schema`, as facilitators must check before cataloging.
    fn satisfies(value: &Value, schema: &Value) -> Result<(), String> {
        if let Some(t) = schema["type"].as_str() {
            let ok = match t {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                _ => true,
            };
            if !ok {
                return Err(format!("{value} is not {t}"));
            }
        }
        if let Some(c) = schema.get("const")
            && c != value
        {
            return Err(format!("{value} is not {c}"));
        }
        if let Some(e) = schema["enum"].as_array()
            && !e.contains(value)
        {
            return Err(format!("{value} not in {e:?}"));
        }
        for r in schema["required"].as_array().into_iter().flatten() {
            let key = r.as_str().unwrap();
            if value.get(key).is_none() {
                return Err(format!("{key} missing in {value}"));
            }
        }
        if let (Some(props), Some(obj)) = (schema["properties"].as_object(), value.as_object()) {
            for (k, v) in obj {
                match props.get(k) {
                    Some(s) => satisfies(v, s)?,
                    None if schema["additionalProperties"] == json!(false) => {
                        return Err(format!("{k} not allowed"));
                    }
                    None => {}
                }
            }
        }
        if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
            for v in arr {
                satisfies(v, items)?;
            }
        }
        Ok(())
    }

    #[test]
    fn every_declaration_satisfies_its_own_schema() {
        let typed = ToolSchemas {
            input: Some(json!({
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
                "examples": [{"text": "One two."}]
            })),
            output: Some(json!({"type": "object", "examples": [{"words": 2}]})),
        };
        let all = [
            (*code_route("/x402_execute/test/wasm")).clone(),
            (*code_route("/x402_policy/unsafe/python")).clone(),
            agent(AgentKind::Cli, None).unwrap(),
            agent(AgentKind::Handler, None).unwrap(),
            agent(AgentKind::Handler, Some(&typed)).unwrap(),
            mcp_tool("stats", "word counts", Some(&typed)),
            mcp_tool("any", "anything", None),
        ];
        for d in &all {
            satisfies(&d.info, &d.schema).unwrap_or_else(|e| panic!("{e}: {}", d.info));
            assert_eq!(
                d.schema["$schema"],
                "https://json-schema.org/draft/2020-12/schema"
            );
        }
        // The owner's examples are the declared examples; the event's schema is the signed one.
        let handler = &all[4];
        assert_eq!(
            handler.info["input"]["body"],
            json!({"event": {"text": "One two."}})
        );
        assert_eq!(handler.info["output"]["example"], json!({"words": 2}));
        assert_eq!(
            handler.schema["properties"]["input"]["properties"]["body"]["properties"]["event"]["required"],
            json!(["text"])
        );
        assert_eq!(all[5].info["input"]["example"], json!({"text": "One two."}));
        assert_eq!(all[5].info["input"]["type"], "mcp");
        assert_eq!(all[1].info["input"]["body"]["encrypted_python"], HEX);
        // Nothing for HTTP agents.
        assert!(agent(AgentKind::Http, None).is_none());
        // Schemas that refer to their root, or too large for a header, are not embedded.
        let referring = ToolSchemas {
            input: Some(
                json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/a"}}, "$defs": {"a": {"type": "string"}}}),
            ),
            output: Some(
                json!({"type": "object", "description": "x".repeat(MAX_DECLARED_SCHEMA_BYTES)}),
            ),
        };
        let d = agent(AgentKind::Handler, Some(&referring)).unwrap();
        assert_eq!(
            d.schema["properties"]["input"]["properties"]["body"]["properties"]["event"],
            json!({"type": "object"})
        );
        assert_eq!(d.info["output"], json!({"type": "json"}));
    }
}
