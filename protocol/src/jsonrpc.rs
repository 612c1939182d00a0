//! JSON-RPC 2.0 messages as the host's JSON-RPC fronts take them (MCP's Streamable HTTP,
//! `docs/PROTOCOL.md` §20): one message per request (batches were removed from MCP in
//! 2025-06-18), a request answered by one response object, a notification by no answer.
//! Errors are JSON-RPC error objects with the standard codes. No I/O.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Not a JSON-RPC 2.0 request object (a batch, a wrong `jsonrpc`, no `method`).
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Bad parameters (including an unknown tool).
pub const INVALID_PARAMS: i64 = -32602;
/// The host failed (details in its log only).
pub const INTERNAL_ERROR: i64 = -32603;

/// A request id: a string or a number, kept as sent.
pub type Id = Box<RawValue>;

/// One incoming message, its parameters read as `P` ([`parse`]: an object; [`parse_raw`]:
/// the object's text).
#[derive(Debug)]
pub enum Incoming<P = Map<String, Value>> {
    /// A request, to be answered.
    Request {
        /// Its id.
        id: Id,
        /// The method.
        method: String,
        /// The parameters (an object; absent is empty, or `None` as text).
        params: P,
    },
    /// A notification (no id): `202 Accepted`, nothing else.
    Notification {
        /// The method.
        method: String,
    },
}

/// A JSON-RPC error with the id it answers (`null` when the request's id could not be read).
#[derive(Debug)]
pub struct RpcError {
    /// The id, if known.
    pub id: Option<Id>,
    /// The code.
    pub code: i64,
    /// The message.
    pub message: String,
    /// Structured detail (`data`), if any.
    pub data: Option<Value>,
}

impl RpcError {
    /// An error answering `id`.
    pub fn new(id: Option<Id>, code: i64, message: impl Into<String>) -> Self {
        Self {
            id,
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The response object, as JSON text.
    pub fn body(&self) -> Box<RawValue> {
        let mut error = serde_json::json!({"code": self.code, "message": self.message});
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        response(self.id.as_deref(), "error", &error)
    }
}

/// A message as sent: derived, so a key given twice (`"method"` twice, read one way here and
/// another by a gateway) is refused, and the id is kept as its text (a large integer comes
/// back exactly as sent).
#[derive(Deserialize)]
#[serde(bound = "P: Deserialize<'de>")]
struct Message<P> {
    #[serde(default)]
    jsonrpc: Option<Value>,
    /// Present (even `null`) or absent.
    #[serde(default, deserialize_with = "present")]
    id: Option<Id>,
    #[serde(default)]
    method: Option<Value>,
    #[serde(default)]
    params: Option<P>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

/// A field that is present, whatever its value (`null` included).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Id>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

/// Whether an id can be answered as sent: a string, or a number that JSON readers hold (one
/// past a double's range, such as `1e400`, is valid JSON text that serde_json refuses and
/// JavaScript reads as `Infinity`; echoed, it made an answer its client could not read).
fn usable_id(id: &RawValue) -> bool {
    match id.get().as_bytes().first() {
        Some(b'"') => true,
        Some(b'-' | b'0'..=b'9') => serde_json::from_str::<Value>(id.get())
            .is_ok_and(|v| v.as_f64().is_some_and(f64::is_finite)),
        _ => false,
    }
}

/// Reads one message. Everything a client can get wrong is an [`RpcError`]: never a panic.
pub fn parse(bytes: &[u8]) -> Result<Incoming, RpcError> {
    let (id, method, params) = read::<Value>(bytes)?;
    let params = match params {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(params)) => params,
        Some(_) => return Err(not_an_object(id)),
    };
    Ok(incoming(id, method, params))
}

/// [`parse`], with the parameters kept as their text (`None` when absent or `null`), for a
/// front that reads them into its own types without an intermediate JSON value. Every error
/// is [`parse`]'s (nesting past what a JSON reader takes included: a front reads a part of the
/// parameters on its own, which would otherwise take a few levels more than `parse` did, and
/// store what it cannot read back), but for valid JSON that a JSON value cannot hold inside
/// the parameters (a number beyond a double's range, a lone surrogate escape): `parse` refuses
/// the message (`INVALID_REQUEST`), here the parameters are the front's to refuse when it
/// reads them (`INVALID_PARAMS`), or to skip under a key it does not read.
pub fn parse_raw(bytes: &[u8]) -> Result<Incoming<Option<Box<RawValue>>>, RpcError> {
    let (id, method, params) = read::<Box<RawValue>>(bytes)?;
    if params
        .as_ref()
        .is_some_and(|p| nesting(p.get()) > MAX_PARAMS_NESTING)
    {
        // As `parse` refuses it: its reading of the whole message fails, before the id.
        return Err(RpcError::new(
            None,
            INVALID_REQUEST,
            "not a JSON-RPC message: nested too deeply",
        ));
    }
    let params = match params {
        None => None,
        Some(p) if p.get() == "null" => None,
        Some(p) if p.get().starts_with('{') => Some(p),
        Some(_) => return Err(not_an_object(id)),
    };
    Ok(incoming(id, method, params))
}

/// The deepest nesting of arrays and objects `params` may have (itself counted): serde_json
/// reads at most 127 levels, the message's object one of them.
const MAX_PARAMS_NESTING: usize = 126;

/// The deepest nesting of arrays and objects in valid JSON `text` (strings skipped).
fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in text.as_bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn not_an_object(id: Option<Id>) -> RpcError {
    RpcError::new(id, INVALID_PARAMS, "params must be an object")
}

fn incoming<P>(id: Option<Id>, method: String, params: P) -> Incoming<P> {
    match id {
        Some(id) => Incoming::Request { id, method, params },
        None => Incoming::Notification { method },
    }
}

/// The envelope of one message, checked: its id (if any), its method, its parameters as
/// sent (their shape unchecked).
fn read<P: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<(Option<Id>, String, Option<P>), RpcError> {
    let not_json =
        |e: serde_json::Error| RpcError::new(None, PARSE_ERROR, format!("not JSON: {e}"));
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        // Not an object: invalid JSON is a parse error, valid JSON the wrong kind of message.
        let value: Box<RawValue> = serde_json::from_slice(bytes).map_err(not_json)?;
        let what = if value.get().trim_start().starts_with('[') {
            "a batch: one JSON-RPC message per request"
        } else {
            "not a JSON-RPC request object"
        };
        return Err(RpcError::new(None, INVALID_REQUEST, what));
    }
    // An object is read once, straight into the message. On an error the text is checked
    // again as a whole (what the reading skipped: an unknown key's string, a number out of
    // range, nesting, escapes): a parse error exactly when it is not JSON, as when every text
    // was checked first.
    let text = std::str::from_utf8(bytes)
        .map_err(|e| RpcError::new(None, PARSE_ERROR, format!("not JSON: not UTF-8 ({e})")))?;
    let message: Message<P> = serde_json::from_str(text).map_err(|e| {
        if let Err(syntax) = serde_json::from_str::<&RawValue>(text) {
            return not_json(syntax);
        }
        RpcError::new(
            None,
            INVALID_REQUEST,
            format!("not a JSON-RPC message: {e}"),
        )
    })?;
    let id = match message.id {
        None => None,
        Some(id) if usable_id(&id) => Some(id),
        Some(_) => {
            return Err(RpcError::new(
                None,
                INVALID_REQUEST,
                "the id must be a string or a number within a double's range",
            ));
        }
    };
    if message.jsonrpc.as_ref().and_then(Value::as_str) != Some("2.0") {
        return Err(RpcError::new(
            id,
            INVALID_REQUEST,
            "jsonrpc must be \"2.0\"",
        ));
    }
    let Some(Value::String(method)) = message.method else {
        let what = if message.result.is_some() || message.error.is_some() {
            "a response: this endpoint takes requests and notifications"
        } else {
            "no method"
        };
        return Err(RpcError::new(id, INVALID_REQUEST, what));
    };
    Ok((id, method, message.params))
}

/// The success response to `id`.
pub fn result(id: &Id, result: Value) -> Box<RawValue> {
    response(Some(id), "result", &result)
}

/// [`result`] with any serialisable `result`, written straight into the answer's text (no
/// intermediate JSON value).
pub fn result_of<T: Serialize + ?Sized>(id: &Id, result: &T) -> Box<RawValue> {
    response(Some(id), "result", result)
}

/// `{"jsonrpc": "2.0", "id": <id as sent, or null>, <key>: value}`, as JSON text: the id is
/// copied as its own text, so a number of any size comes back exactly as sent.
fn response<T: Serialize + ?Sized>(id: Option<&RawValue>, key: &str, value: &T) -> Box<RawValue> {
    let id = id.map_or("null", RawValue::get);
    let mut text = Vec::with_capacity(256);
    text.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    text.extend_from_slice(id.as_bytes());
    text.extend_from_slice(b",\"");
    text.extend_from_slice(key.as_bytes());
    text.extend_from_slice(b"\":");
    let written = serde_json::to_writer(&mut text, value);
    text.push(b'}');
    // Valid by construction (an id that parsed as JSON, a key of ours, a serialised value).
    written
        .ok()
        .and_then(|()| String::from_utf8(text).ok())
        .and_then(|text| RawValue::from_string(text).ok())
        .unwrap_or_else(|| {
            RawValue::from_string(
                r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"unencodable answer"}}"#
                    .into(),
            )
            .unwrap_or_default()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(bytes: &str) -> i64 {
        parse(bytes.as_bytes()).unwrap_err().code
    }

    #[test]
    fn malformed_messages_get_their_json_rpc_codes() {
        assert_eq!(code("{"), PARSE_ERROR);
        assert_eq!(code("[]"), INVALID_REQUEST);
        assert_eq!(
            code(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#),
            INVALID_REQUEST
        );
        assert_eq!(code("3"), INVALID_REQUEST);
        assert_eq!(
            code(r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#),
            INVALID_REQUEST
        );
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1}"#), INVALID_REQUEST);
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#),
            INVALID_REQUEST
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#),
            INVALID_PARAMS
        );
        // A key given twice is the wrong message; the same text cut short is not JSON, though
        // the message is refused before the parser reaches its end.
        let twice = r#"{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}"#;
        assert_eq!(code(twice), INVALID_REQUEST);
        assert_eq!(code(&twice[..twice.len() - 1]), PARSE_ERROR);
        assert_eq!(code(&format!("{twice} x")), PARSE_ERROR);
        assert_eq!(code(" \n\t{\"jsonrpc\":\"2.0\",\"id\":1}"), INVALID_REQUEST);
        assert_eq!(code("[1,"), PARSE_ERROR);
        // Bytes the message's reading skips are still checked (found by review: a bad string
        // under an unknown key was accepted), and valid JSON its reading refuses is still the
        // wrong message, not a parse error.
        let mut bad = br#"{"jsonrpc":"2.0","id":1,"method":"m","x":""#.to_vec();
        bad.extend_from_slice(b"\xff\"}");
        assert_eq!(parse(&bad).unwrap_err().code, PARSE_ERROR);
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{{"a":{}{}}}}}"#,
            "[".repeat(130),
            "]".repeat(130)
        );
        for valid in [
            r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"n":1e400}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"s":"\udc00"}}"#,
            &deep,
        ] {
            assert_eq!(code(valid), INVALID_REQUEST, "{valid}");
        }
        assert_eq!(code(""), PARSE_ERROR);
    }

    /// `parse_raw` refuses what `parse` refuses, with the same code, and keeps an object's
    /// parameters as their text (absent or `null`: none).
    #[test]
    fn parameters_as_text_are_read_as_parse_reads_them() {
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{{"a":{}{}}}}}"#,
            "[".repeat(130),
            "]".repeat(130)
        );
        let mut bad = br#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"x":""#.to_vec();
        bad.extend_from_slice(b"\xff\"}}");
        let texts: Vec<Vec<u8>> = [
            "{",
            "[]",
            "",
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":3}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"n":1e400}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"s":"\udc00"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1,"a":2}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{},"params":{}}"#,
            &deep,
        ]
        .iter()
        .map(|t| t.as_bytes().to_vec())
        .chain([bad])
        .collect();
        for text in &texts {
            let shown = String::from_utf8_lossy(text);
            if [r#""n":1e400"#, r#""s":"\udc00""#]
                .iter()
                .any(|v| shown.contains(v))
            {
                // Valid JSON a value cannot hold: the front's to refuse (see `parse_raw`).
                assert_eq!(parse(text).unwrap_err().code, INVALID_REQUEST, "{shown}");
                assert!(parse_raw(text).is_ok(), "{shown}");
                continue;
            }
            let code = |r: Result<(), RpcError>| r.err().map(|e| e.code);
            assert_eq!(
                code(parse(text).map(drop)),
                code(parse_raw(text).map(drop)),
                "{shown}"
            );
        }
        let params = |text: &str| match parse_raw(text.as_bytes()) {
            Ok(Incoming::Request { params, .. }) => params.map(|p| p.get().to_string()),
            other => panic!("{other:?}"),
        };
        assert_eq!(params(r#"{"jsonrpc":"2.0","id":1,"method":"m"}"#), None);
        assert_eq!(
            params(r#"{"jsonrpc":"2.0","id":1,"method":"m","params":null}"#),
            None
        );
        assert_eq!(
            params(r#"{"jsonrpc":"2.0","id":1,"method":"m","params": {"a": [1]} }"#).as_deref(),
            Some(r#"{"a": [1]}"#)
        );
        // Nesting: exactly what `parse` takes (found by review: the message, read on its own,
        // took two levels more, and a task stored with them could not be read back). Brackets
        // inside strings do not count.
        for depth in [120, 124, 125, 126, 127, 130] {
            let text = format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{{"s":"[[[{{\"","a":{}{}}}}}"#,
                "[".repeat(depth - 1),
                "]".repeat(depth - 1)
            );
            let code = |r: Result<(), RpcError>| r.err().map(|e| e.code);
            assert_eq!(
                code(parse(text.as_bytes()).map(drop)),
                code(parse_raw(text.as_bytes()).map(drop)),
                "params nested {depth} deep"
            );
            assert_eq!(parse_raw(text.as_bytes()).is_ok(), depth <= 126, "{depth}");
        }
    }

    #[test]
    fn ids_are_answered_as_sent() {
        let Ok(Incoming::Request { id, method, .. }) =
            parse(br#"{"jsonrpc":"2.0","id":"a-1","method":"tools/list"}"#)
        else {
            panic!("a request");
        };
        assert_eq!(method, "tools/list");
        let json = |raw: Box<RawValue>| serde_json::from_str::<Value>(raw.get()).unwrap();
        assert_eq!(json(result(&id, Value::from(1)))["id"], "a-1");
        let err = parse(br#"{"jsonrpc":"2.0","id":7,"method":"x","params":3}"#).unwrap_err();
        assert_eq!(json(err.body())["id"], 7);
        // A large integer id comes back exactly as sent.
        let big = br#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"}"#;
        let Ok(Incoming::Request { id, .. }) = parse(big) else {
            panic!("a request");
        };
        assert!(
            result(&id, Value::Null)
                .get()
                .contains(r#""id":123456789012345678901234567890"#)
        );
        // An id past a double's range is refused, and the answer says `"id": null` (found by
        // fuzz/fuzz_targets/json_rpc.rs: the answer echoed it, and could not be read back).
        for huge in ["1e400", "-1e400", &"9".repeat(400)] {
            let message = format!(r#"{{"jsonrpc":"2.0","id":{huge},"method":"ping"}}"#);
            let error = parse(message.as_bytes()).expect_err("refused");
            let body = json(error.body());
            assert_eq!(body["id"], Value::Null);
            assert_eq!(body["error"]["code"], INVALID_REQUEST);
            let broken = message.replace("jsonrpc", "j|onrpc");
            assert_eq!(
                json(parse(broken.as_bytes()).expect_err("refused").body())["id"],
                Value::Null
            );
        }
        assert!(parse(br#"{"jsonrpc":"2.0","id":1.5e300,"method":"ping"}"#).is_ok());
        // A key given twice is refused, and so is a null id.
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}"#),
            INVALID_REQUEST
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#),
            INVALID_REQUEST
        );
        assert!(matches!(
            parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Incoming::Notification { .. })
        ));
    }
}
