//! The globals the runtime adds to the language's own: a few native functions (output,
//! randomness, `fetch`'s transport, and those of [`super::web`]) and scripts written in
//! JavaScript over them: the web platform's interfaces (`src/web/*.js`: events and abort
//! signals, encodings and base64, streams, URL and URLPattern, structured clone) and the
//! prelude (`console`, `crypto`, `Math.random`, `fetch` and its `Response` and `Headers`, agent
//! state and configuration, `Deno.env`). Timers are [`super::timers`].

use std::io::Write;

use boa_engine::object::builtins::{JsArray, JsUint8Array};
use boa_engine::{
    Context, JsArgs, JsNativeError, JsObject, JsResult, JsString, JsValue, NativeFunction, Source,
};

/// The scripts that build the globals, in order (run once, at setup); the last, the prelude,
/// evaluates to the per-invocation hook.
const SCRIPTS: [(&str, &str); 10] = [
    ("web/json.js", include_str!("web/json.js")),
    ("web/events.js", include_str!("web/events.js")),
    ("web/encoding.js", include_str!("web/encoding.js")),
    ("web/streams.js", include_str!("web/streams.js")),
    ("web/url.js", include_str!("web/url.js")),
    ("web/urlpattern.js", include_str!("web/urlpattern.js")),
    ("web/fetch.js", include_str!("web/fetch.js")),
    ("web/clone.js", include_str!("web/clone.js")),
    ("web/crypto.js", include_str!("web/crypto.js")),
    ("prelude.js", include_str!("prelude.js")),
];

/// web-streams-polyfill's ponyfill build (build.rs finds it in js-deps/node_modules), run
/// with CommonJS's `exports` and `module` so that it gives its classes to src/web/streams.js,
/// not to the global object.
const STREAMS_PONYFILL: &str = concat!(
    "(() => { const exports = {}, module = { exports }; ",
    include_str!(env!("HYPERVISOR_STREAMS_PONYFILL")),
    "\n; return exports; })();"
);

/// What in an agent's source says it may use streams: then the stream classes are built at
/// set-up and come with the snapshot. Otherwise they are built the first time an invocation
/// reaches for one (src/web/streams.js), which costs that invocation the library's evaluation
/// (a few hundred milliseconds), in every fresh instance; set-ups that never need them do not
/// pay for them (measured in docs/PERFORMANCE.md).
const STREAM_WORDS: [&str; 7] = [
    "Stream",
    ".body",
    ".stream(",
    "pipeTo",
    "pipeThrough",
    "getReader",
    "getWriter",
];

/// Whether `source` names anything of the streams API.
pub fn mentions_streams(source: &str) -> bool {
    STREAM_WORDS.iter().any(|w| source.contains(w))
}

/// `__hv_load_streams()`: the library's exports (once per instance: src/web/streams.js keeps
/// them).
fn load_streams(_: &JsValue, _: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let source = Source::from_bytes(STREAMS_PONYFILL)
        .with_path(std::path::Path::new("web-streams-polyfill"));
    context.eval(source)
}

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

/// A string argument as a Rust string (lone surrogates escaped).
pub fn text_arg(args: &[JsValue], i: usize, context: &mut Context) -> JsResult<String> {
    Ok(args
        .get_or_undefined(i)
        .to_string(context)?
        .to_std_string_escaped())
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
    Ok(JsUint8Array::from_iter(bytes, context)?.into())
}

/// `__hv_fetch(url, method, headers, body)`: `headers` flattened `[name, value, …]`, `body` a
/// `Uint8Array` or null; answers `[status, [name, value, …], Uint8Array]`.
fn fetch(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let url = text_arg(args, 0, context)?;
    let method = text_arg(args, 1, context)?;
    let headers = super::web::flat_pairs(args.get_or_undefined(2), context)?;
    let body = if args.get_or_undefined(3).is_null_or_undefined() {
        None
    } else {
        Some(super::web::bytes_arg(args, 3, context)?)
    };
    let answer = super::fetch::send(&url, &method, &headers, body.as_deref())
        .map_err(|why| JsNativeError::typ().with_message(format!("fetch {url}: {why}")))?;
    let flat = answer
        .headers
        .iter()
        .flat_map(|(k, v)| [k.as_str(), v.as_str()])
        .map(|s| JsValue::from(JsString::from(s)))
        .collect::<Vec<_>>();
    let parts = [
        JsValue::from(answer.status),
        JsArray::from_iter(flat, context).into(),
        JsUint8Array::from_iter(answer.body, context)?.into(),
    ];
    Ok(JsArray::from_iter(parts, context).into())
}

/// A native function of the prelude.
type Native = fn(&JsValue, &[JsValue], &mut Context) -> JsResult<JsValue>;

/// Registers the natives and runs the prelude (and builds the stream classes if `streams`);
/// returns the prelude's setter of `Deno.env`
/// (called with each invocation's `event.env`).
///
/// # Errors
/// If the prelude fails (a bug here, not the agent's).
pub fn register(context: &mut Context, streams: bool) -> JsResult<JsObject> {
    let natives: [(&str, usize, Native); 52] = [
        ("__hv_kv", 4, super::state::kv),
        ("__hv_kv_update", 3, super::state::kv_update),
        ("__hv_config", 1, super::state::config_get),
        ("__hv_write", 2, write),
        ("__hv_random", 1, random),
        ("__hv_utf8_encode", 1, super::web::utf8_encode),
        ("__hv_utf8_decode", 2, super::web::utf8_decode),
        ("__hv_url", 2, super::web::url_parse),
        ("__hv_url_set", 3, super::web::url_set),
        ("__hv_urlpattern_parse", 4, super::pattern::parse),
        ("__hv_urlpattern_input", 3, super::pattern::match_input),
        ("__hv_form_parse", 1, super::web::form_parse),
        ("__hv_form_serialize", 1, super::web::form_serialize),
        ("__hv_now", 0, super::web::now),
        ("__hv_fetch", 4, fetch),
        ("__hv_digest", 2, super::subtle::digest_native),
        ("__hv_hmac", 3, super::subtle::hmac),
        ("__hv_ct_eq", 2, super::subtle::ct_eq),
        ("__hv_ec_generate", 0, super::subtle::ec_generate),
        ("__hv_ec_public", 1, super::subtle::ec_public),
        ("__hv_ec_point", 1, super::subtle::ec_point),
        ("__hv_ec_sign", 3, super::subtle::ec_sign),
        ("__hv_ec_verify", 4, super::subtle::ec_verify),
        ("__hv_ec_der", 2, super::subtle::ec_der),
        ("__hv_ec_from_der", 2, super::subtle::ec_from_der),
        ("__hv_aes_gcm", 5, super::subtle::aes_gcm),
        ("__hv_b64u", 1, super::subtle::b64u_encode),
        ("__hv_unb64u", 2, super::subtle::b64u_decode),
        ("__hv_aes_ctr", 4, super::aes::aes_ctr),
        ("__hv_aes_cbc", 4, super::aes::aes_cbc),
        ("__hv_aes_kw", 3, super::aes::aes_kw),
        ("__hv_hkdf", 5, super::derive::hkdf),
        ("__hv_pbkdf2", 5, super::derive::pbkdf2),
        ("__hv_ecdh", 2, super::derive::ecdh),
        ("__hv_rsa_from_spki", 1, super::rsa_public::from_spki),
        ("__hv_rsa_from_jwk", 2, super::rsa_public::from_jwk),
        ("__hv_rsa_jwk", 1, super::rsa_public::jwk),
        ("__hv_rsa_verify", 6, super::rsa_public::verify),
        ("__hv_rsa_encrypt", 4, super::rsa_public::encrypt),
        ("__hv_okp_generate", 1, super::okp::generate),
        ("__hv_okp_public", 2, super::okp::public),
        ("__hv_okp_der", 3, super::okp::der),
        ("__hv_okp_from_der", 3, super::okp::from_der),
        ("__hv_ed_sign", 2, super::okp::ed_sign),
        ("__hv_ed_verify", 3, super::okp::ed_verify),
        ("__hv_x25519", 2, super::okp::x25519),
        ("__hv_codec_new", 2, super::compress::codec_new),
        ("__hv_codec_push", 3, super::compress::codec_push),
        ("__hv_codec_finish", 1, super::compress::codec_finish),
        ("__hv_load_streams", 0, load_streams),
        ("__hv_encoding_for", 1, super::legacy::encoding_for),
        ("__hv_legacy_decode", 5, super::legacy::legacy_decode),
    ];
    for (name, length, f) in natives {
        context.register_global_builtin_callable(
            JsString::from(name),
            length,
            NativeFunction::from_fn_ptr(f),
        )?;
    }
    let mut set_env = JsValue::undefined();
    for (name, script) in SCRIPTS {
        let source = Source::from_bytes(script).with_path(std::path::Path::new(name));
        set_env = context.eval(source)?;
    }
    let set_env = set_env
        .as_callable()
        .ok_or_else(|| JsNativeError::typ().with_message("the prelude returned no env setter"))?;
    // The natives stay reachable only through the prelude's closures.
    let global = context.global_object();
    if streams {
        let install = global.get(JsString::from("__hv_streams_install"), context)?;
        if let Some(install) = install.as_callable() {
            install.call(&JsValue::undefined(), &[], context)?;
        }
    }
    let report = global.get(JsString::from("__hv_report"), context)?;
    if let Some(report) = report.as_callable() {
        super::timers::set_reporter(report.clone());
    }
    // What the scripts leave for one another and for the runtime, gone once they ran.
    for name in [
        "__hv_report",
        "__hv_reset_origin",
        "__hv_pair_iterator",
        "__hv_buffer_copy",
        "__hv_buffer_view",
        "__hv_streams_install",
        "__hv_streams_loaded",
    ] {
        global.delete_property_or_throw(JsString::from(name), context)?;
    }
    for (name, _, _) in natives {
        global.delete_property_or_throw(JsString::from(name), context)?;
    }
    Ok(set_env)
}
