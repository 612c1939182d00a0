//! `agentState` and `agentConfig`: the agent's key-value state (`wasi:keyvalue@0.2.0-draft2`)
//! and its owner's configuration (`wasi:config/store@0.2.0-rc.1`) for JavaScript, the same
//! store and values a Rust or Python agent sees (docs/PROTOCOL.md §23). The natives here; the
//! JavaScript API over them in `prelude.js`.

use boa_engine::object::builtins::JsArray;
use boa_engine::{Context, JsArgs, JsNativeError, JsResult, JsString, JsValue};

use crate::wasi::config0_2_0_rc_1::store as config;
use crate::wasi::keyvalue0_2_0_draft2::{atomics, store};

fn text(args: &[JsValue], i: usize, context: &mut Context) -> JsResult<String> {
    Ok(args.get_or_undefined(i).to_string(context)?.to_std_string_escaped())
}

fn failed(what: &str, e: impl std::fmt::Debug) -> boa_engine::JsError {
    let detail = format!("{e:?}");
    // The host's quota refusals keep their stable code in front.
    JsNativeError::error()
        .with_message(format!("{what}: {detail}"))
        .into()
}

fn bucket(args: &[JsValue], context: &mut Context) -> JsResult<store::Bucket> {
    let name = text(args, 0, context)?;
    store::open(&name).map_err(|e| failed("agentState.bucket", e))
}

/// Bytes from a string (UTF-8) or an array-like of bytes.
fn bytes_of(value: &JsValue, context: &mut Context) -> JsResult<Vec<u8>> {
    if let Some(s) = value.as_string() {
        return Ok(s.to_std_string_escaped().into_bytes());
    }
    let object = value.to_object(context)?;
    let length = object.get(boa_engine::js_string!("length"), context)?.to_length(context)?;
    let mut out = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    for i in 0..length {
        out.push(object.get(i, context)?.to_u32(context)? as u8);
    }
    Ok(out)
}

fn byte_array(bytes: Vec<u8>, context: &mut Context) -> JsValue {
    let values: Vec<JsValue> = bytes.into_iter().map(JsValue::from).collect();
    JsArray::from_iter(values, context).into()
}

/// `__hv_kv(op, bucket, key, value)`: `get` (bytes array or null), `set`, `delete`, `exists`,
/// `incr` (value = delta; the new count), `keys` (every key).
pub fn kv(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let op = text(args, 0, context)?;
    let b = bucket(&args[1.min(args.len())..], context)?;
    let key = text(args, 2, context)?;
    Ok(match op.as_str() {
        "get" => match b.get(&key).map_err(|e| failed("get", e))? {
            Some(v) => byte_array(v, context),
            None => JsValue::null(),
        },
        "set" => {
            let value = bytes_of(args.get_or_undefined(3), context)?;
            b.set(&key, &value).map_err(|e| failed("set", e))?;
            JsValue::undefined()
        }
        "delete" => {
            b.delete(&key).map_err(|e| failed("delete", e))?;
            JsValue::undefined()
        }
        "exists" => JsValue::from(b.exists(&key).map_err(|e| failed("exists", e))?),
        "incr" => {
            let delta = args.get_or_undefined(3).to_number(context)?;
            let value = atomics::increment(&b, &key, delta as i64)
                .map_err(|e| failed("increment", e))?;
            // An integer where one fits (JSON then shows `3`, not `3.0`).
            match i32::try_from(value) {
                Ok(small) => JsValue::from(small),
                Err(_) => JsValue::from(value as f64),
            }
        }
        "keys" => {
            let mut keys = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = b
                    .list_keys(cursor.as_deref())
                    .map_err(|e| failed("keys", e))?;
                keys.extend(page.keys.into_iter().map(|k| JsValue::from(JsString::from(k.as_str()))));
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            JsArray::from_iter(keys, context).into()
        }
        other => {
            return Err(JsNativeError::typ()
                .with_message(format!("agentState: unknown operation {other}"))
                .into());
        }
    })
}

/// `__hv_kv_update(bucket, key, change)`: replaces the value by `change(old bytes or null)`
/// with compare-and-swap, calling `change` again when another invocation changed it between;
/// the value written (bytes).
pub fn kv_update(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let b = bucket(args, context)?;
    let key = text(args, 1, context)?;
    let Some(change) = args.get_or_undefined(2).as_callable() else {
        return Err(JsNativeError::typ()
            .with_message("agentState.update: the change must be a function")
            .into());
    };
    let mut cas = atomics::Cas::new(&b, &key).map_err(|e| failed("update", e))?;
    for _ in 0..100 {
        let old = match cas.current().map_err(|e| failed("update", e))? {
            Some(v) => byte_array(v, context),
            None => JsValue::null(),
        };
        let new = change.call(&JsValue::undefined(), &[old], context)?;
        let bytes = bytes_of(&new, context)?;
        match atomics::swap(cas, &bytes) {
            Ok(()) => return Ok(byte_array(bytes, context)),
            Err(atomics::CasError::CasFailed(again)) => cas = again,
            Err(atomics::CasError::StoreError(e)) => return Err(failed("update", e)),
        }
    }
    Err(JsNativeError::error()
        .with_message(format!("agentState.update: {key:?} kept changing; gave up after 100 tries"))
        .into())
}

/// `__hv_config(name)`: the value, or null. `__hv_config()` (no name): every `[name, value]`.
pub fn config_get(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    if args.is_empty() || args[0].is_undefined() {
        let all = config::get_all().map_err(|e| failed("agentConfig", e))?;
        let pairs: Vec<JsValue> = all
            .into_iter()
            .map(|(k, v)| {
                let pair = vec![
                    JsValue::from(JsString::from(k.as_str())),
                    JsValue::from(JsString::from(v.as_str())),
                ];
                JsArray::from_iter(pair, context).into()
            })
            .collect();
        return Ok(JsArray::from_iter(pairs, context).into());
    }
    let name = text(args, 0, context)?;
    Ok(match config::get(&name).map_err(|e| failed("agentConfig", e))? {
        Some(v) => JsString::from(v.as_str()).into(),
        None => JsValue::null(),
    })
}
