//! JSON-RPC messages as the MCP front takes them (`protocol/src/jsonrpc.rs`): any bytes are a
//! request, a notification or a JSON-RPC error, never a panic; a request's id is answered as
//! sent, and every error body is a JSON-RPC error object.
#![no_main]

use hypervisor_protocol::jsonrpc::{Incoming, parse, result};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(Incoming::Request { id, method, .. }) => {
            let answer = result(&id, serde_json::Value::from(method));
            let answer: serde_json::Value =
                serde_json::from_str(answer.get()).expect("an answer is JSON");
            let sent: serde_json::Value = serde_json::from_str(id.get()).expect("an id is JSON");
            assert_eq!(answer["id"], sent, "the id is answered as sent");
            assert!(sent.is_string() || sent.is_number());
        }
        Ok(Incoming::Notification { method }) => {
            let _ = method.len();
        }
        Err(error) => {
            let body: serde_json::Value =
                serde_json::from_str(error.body().get()).expect("an error body is JSON");
            assert_eq!(body["jsonrpc"], "2.0");
            assert!(body["error"]["code"].as_i64().is_some_and(|c| c < -32000));
        }
    }
});
