//! Request bodies the host accepts (`protocol/src/wire.rs`, `protocol/src/agents.rs`): parsed
//! with `hypervisor_protocol::strict::from_slice` exactly as `host/src/http/extract.rs` does, then every field
//! decoded the way the host's pipeline decodes it (hex envelopes, SEC1 public keys, base64
//! components, agent names, deploy details and owner messages). Nothing may panic, and
//! whatever parses must re-serialize and parse back to the same JSON.
#![no_main]

use base64::Engine as _;
use hypervisor_protocol::EncodedPublicKey;
use hypervisor_protocol::agents::{
    DeployRequest, InvokeRequest, OwnerAction, OwnerStatement, SearchRequest, deploy_detail,
    valid_name,
};
use hypervisor_protocol::wire::{
    CreateKeypairRequest, ExecuteRequest, Limits, PythonRequest, decode_hex,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn parse<T: DeserializeOwned + Serialize>(data: &[u8]) -> Option<T> {
    let value: T = hypervisor_protocol::strict::from_slice(data).ok()?;
    // Round trip: what the host accepted, a client can send again.
    let json = serde_json::to_vec(&value).expect("an accepted request serializes");
    let again: T =
        hypervisor_protocol::strict::from_slice(&json).expect("a serialized request parses back");
    // Compared as bytes, not as `serde_json::Value`: a handler's event is kept as the text sent
    // (a `RawValue`), and JSON allows numbers no f64 holds (`1E400`), which `Value` refuses.
    assert_eq!(
        serde_json::to_vec(&again).expect("serializes"),
        json,
        "round trip changed the request"
    );
    Some(value)
}

fn key(field: &str, hex_str: &str) {
    if let Ok(k) = EncodedPublicKey::from_hex(field, hex_str) {
        // Canonical form: parsing the canonical hex gives the same key.
        let again = EncodedPublicKey::from_hex(field, &k.to_hex()).expect("canonical key parses");
        assert_eq!(k, again);
    }
}

fn hex_fields<'a>(field: &str, values: impl IntoIterator<Item = &'a String>) {
    for v in values {
        let _ = decode_hex(field, v);
    }
}

fn limits(l: Option<&Limits>) {
    if let Some(l) = l {
        let _ = (l.time_ms, l.memory_bytes, l.fuel);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(r) = parse::<CreateKeypairRequest>(data) {
        key("pubkey", &r.pubkey);
    }
    if let Some(r) = parse::<ExecuteRequest>(data) {
        let _ = decode_hex("encrypted_wasm", &r.encrypted_wasm);
        hex_fields("encrypted_arguments", &r.encrypted_arguments);
        hex_fields("encrypted_stdin", &r.encrypted_stdin);
        key("public_key", &r.public_key);
        limits(r.limits.as_ref());
    }
    if let Some(r) = parse::<PythonRequest>(data) {
        let _ = decode_hex("encrypted_python", &r.encrypted_python);
        hex_fields("encrypted_arguments", &r.encrypted_arguments);
        hex_fields("encrypted_stdin", &r.encrypted_stdin);
        key("public_key", &r.public_key);
        limits(r.limits.as_ref());
    }
    if let Some(r) = parse::<DeployRequest>(data) {
        let _ = valid_name(&r.name);
        key("public_key", &r.public_key);
        if let Some(c) = &r.component {
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(c.trim()) {
                let digest = hex::encode(hypervisor_protocol::sha256(&bytes));
                let detail = deploy_detail(&digest, &r);
                let _ = OwnerStatement {
                    audience: "00",
                    action: OwnerAction::Deploy,
                    name: &r.name,
                    signed_at: r.signed_at.unwrap_or(0),
                    sequence: r.sequence.unwrap_or(0),
                    detail: &detail,
                }
                .message();
            }
        }
        hex_fields("encrypted_component", &r.encrypted_component);
        hex_fields("signature", &r.signature);
        limits(r.limits.as_ref());
    }
    if let Some(r) = parse::<InvokeRequest>(data) {
        hex_fields("encrypted_event", &r.encrypted_event);
        hex_fields(
            "encrypted_arguments",
            r.encrypted_arguments.iter().flatten(),
        );
        hex_fields("encrypted_stdin", &r.encrypted_stdin);
        if let Some(k) = &r.public_key {
            key("public_key", k);
        }
        limits(r.limits.as_ref());
    }
    if let Some(r) = parse::<SearchRequest>(data) {
        let _ = r.query.split_whitespace().count();
    }
});
