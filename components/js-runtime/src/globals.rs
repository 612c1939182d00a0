//! The globals the runtime adds to the language's own: a few native functions (output,
//! randomness, UTF-8, `fetch`'s transport) and a prelude written in JavaScript over them
//! (`console`, `crypto.getRandomValues`, `Math.random`, `TextEncoder`, `TextDecoder`, `fetch`
//! and its `Response` and `Headers`).

use std::io::Write;

use boa_engine::object::builtins::JsArray;
use boa_engine::{
    Context, JsArgs, JsNativeError, JsObject, JsResult, JsString, JsValue, NativeFunction, Source,
    js_string,
};

/// The prelude (run once, at setup).
const PRELUDE: &str = include_str!("prelude.js");

/// A value as text: strings as they are, anything else as JSON when it has one, else as
/// JavaScript prints it.
pub fn display(value: &JsValue, context: &mut Context) -> String {
    if let Some(s) = value.as_string() {
        return s.to_std_string_escaped();
    }
    if value.is_object()
        && let Ok(Some(json)) = value.to_json(context)
    {
        return json.to_string();
    }
    value
        .to_string(context)
        .map(|s| s.to_std_string_escaped())
        .unwrap_or_else(|_| "<value>".into())
}

fn text_arg(args: &[JsValue], i: usize, context: &mut Context) -> JsResult<String> {
    Ok(args.get_or_undefined(i).to_string(context)?.to_std_string_escaped())
}

/// `__hv_write(stream, text)`: 1 = stdout, 2 = stderr.
fn write(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let stream = args.get_or_undefined(0).to_u32(context)?;
    let mut text = text_arg(args, 1, context)?;
    text.push('\n');
    let _ = if stream == 2 {
        std::io::stderr().write_all(text.as_bytes())
    } else {
        std::io::stdout().write_all(text.as_bytes())
    };
    Ok(JsValue::undefined())
}

/// `__hv_random(n)`: `n` (≤ 65536) random bytes from the host, as an array.
fn random(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let n = args.get_or_undefined(0).to_u32(context)?;
    if n > 65536 {
        return Err(JsNativeError::range()
            .with_message("getRandomValues: at most 65536 bytes at once")
            .into());
    }
    let bytes = wasip2::random::random::get_random_bytes(u64::from(n));
    let values: Vec<JsValue> = bytes.into_iter().map(JsValue::from).collect();
    Ok(JsArray::from_iter(values, context).into())
}

/// `__hv_utf8_encode(text)`: its UTF-8 bytes, as an array.
fn utf8_encode(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let text = text_arg(args, 0, context)?;
    let values: Vec<JsValue> = text.into_bytes().into_iter().map(JsValue::from).collect();
    Ok(JsArray::from_iter(values, context).into())
}

/// `__hv_utf8_decode(bytes)`: the text of an array-like of bytes (invalid sequences become
/// U+FFFD).
fn utf8_decode(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let object = args.get_or_undefined(0).to_object(context)?;
    let length = object.get(js_string!("length"), context)?.to_length(context)?;
    let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    for i in 0..length {
        bytes.push(object.get(i, context)?.to_u32(context)? as u8);
    }
    Ok(JsString::from(String::from_utf8_lossy(&bytes).as_ref()).into())
}

/// `__hv_fetch(url, method, headers_json, body)`: `{status, headers, body}` as JSON text.
fn fetch(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let url = text_arg(args, 0, context)?;
    let method = text_arg(args, 1, context)?;
    let headers = text_arg(args, 2, context)?;
    let body = args.get_or_undefined(3);
    let body = if body.is_null_or_undefined() {
        None
    } else {
        Some(body.to_string(context)?.to_std_string_escaped())
    };
    let headers: Vec<(String, String)> = serde_json::from_str(&headers).unwrap_or_default();
    match super::fetch::send(&url, &method, &headers, body.as_deref()) {
        Ok(answer) => Ok(JsString::from(answer.as_str()).into()),
        Err(why) => Err(JsNativeError::typ().with_message(format!("fetch {url}: {why}")).into()),
    }
}

/// A native function of the prelude.
type Native = fn(&JsValue, &[JsValue], &mut Context) -> JsResult<JsValue>;

/// Registers the natives and runs the prelude; returns the prelude's setter of `Deno.env`
/// (called with each invocation's `event.env`).
///
/// # Errors
/// If the prelude fails (a bug here, not the agent's).
pub fn register(context: &mut Context) -> JsResult<JsObject> {
    let natives: [(&str, usize, Native); 8] = [
        ("__hv_kv", 4, super::state::kv),
        ("__hv_kv_update", 3, super::state::kv_update),
        ("__hv_config", 1, super::state::config_get),
        ("__hv_write", 2, write),
        ("__hv_random", 1, random),
        ("__hv_utf8_encode", 1, utf8_encode),
        ("__hv_utf8_decode", 1, utf8_decode),
        ("__hv_fetch", 4, fetch),
    ];
    for (name, length, f) in natives {
        context.register_global_builtin_callable(
            JsString::from(name),
            length,
            NativeFunction::from_fn_ptr(f),
        )?;
    }
    let set_env = context.eval(Source::from_bytes(PRELUDE))?;
    let set_env = set_env
        .as_callable()
        .ok_or_else(|| JsNativeError::typ().with_message("the prelude returned no env setter"))?;
    // The natives stay reachable only through the prelude's closures.
    let global = context.global_object();
    for (name, _, _) in natives {
        global.delete_property_or_throw(JsString::from(name), context)?;
    }
    Ok(set_env)
}
