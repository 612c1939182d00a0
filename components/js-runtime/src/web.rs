//! Natives under the web platform's interfaces (`src/web/*.js` builds the interfaces over
//! them): WHATWG URL parsing and its setters through the `url` crate (servo's implementation,
//! the one Firefox's tests run against, its `quirks` module being exactly the URL Standard's
//! API), `application/x-www-form-urlencoded` through `form_urlencoded`, UTF-8 through the
//! standard library (whose replacement of invalid sequences is the Encoding Standard's), and
//! the monotonic clock of `performance.now`.

use std::cell::Cell;

use boa_engine::object::builtins::{JsArray, JsUint8Array};
use boa_engine::{Context, JsArgs, JsNativeError, JsResult, JsString, JsValue, js_string};
use url::Url;

/// A string argument as a Rust string, lone surrogates replaced (WebIDL's `USVString`).
pub(crate) fn usv(args: &[JsValue], i: usize, context: &mut Context) -> JsResult<String> {
    Ok(args
        .get_or_undefined(i)
        .to_string(context)?
        .to_std_string_lossy())
}

/// The bytes of a `Uint8Array` argument (the JavaScript side makes one of any view).
pub fn bytes_arg(args: &[JsValue], i: usize, context: &mut Context) -> JsResult<Vec<u8>> {
    let object = args
        .get_or_undefined(i)
        .as_object()
        .and_then(|o| JsUint8Array::from_object(o.clone()).ok())
        .ok_or_else(|| JsNativeError::typ().with_message("a Uint8Array is needed"))?;
    object.to_vec(context)
}

/// The URL's parts as the URL Standard's getters give them: `[href, origin, protocol,
/// username, password, host, hostname, port, pathname, search, hash]`.
fn parts(url: &Url, context: &mut Context) -> JsValue {
    use url::quirks;
    let values = [
        quirks::href(url).to_string(),
        origin(url),
        quirks::protocol(url).to_string(),
        quirks::username(url).to_string(),
        quirks::password(url).to_string(),
        quirks::host(url).to_string(),
        quirks::hostname(url).to_string(),
        quirks::port(url).to_string(),
        quirks::pathname(url).to_string(),
        quirks::search(url).to_string(),
        quirks::hash(url).to_string(),
    ];
    JsArray::from_iter(
        values
            .into_iter()
            .map(|v| JsValue::from(JsString::from(v.as_str()))),
        context,
    )
    .into()
}

/// The URL Standard's origin, serialised. The crate gives a `blob:` URL the origin of the URL
/// in its path whatever that URL's scheme; the Standard only for `http` and `https` (any other
/// is an opaque origin, `null`).
fn origin(url: &Url) -> String {
    if url.scheme() == "blob" {
        return match Url::parse(url.path()) {
            Ok(inner) if matches!(inner.scheme(), "http" | "https") => url::quirks::origin(&inner),
            _ => "null".to_string(),
        };
    }
    url::quirks::origin(url)
}

/// `__hv_url(input, base)`: the parts of `input` parsed against `base` (if not undefined), or
/// null if either fails to parse.
pub fn url_parse(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let input = usv(args, 0, context)?;
    let base = match args.get_or_undefined(1) {
        v if v.is_undefined() => None,
        _ => match Url::parse(&usv(args, 1, context)?) {
            Ok(base) => Some(base),
            Err(_) => return Ok(JsValue::null()),
        },
    };
    match Url::options().base_url(base.as_ref()).parse(&input) {
        Ok(url) => Ok(parts(&url, context)),
        Err(_) => Ok(JsValue::null()),
    }
}

/// `__hv_url_set(href, part, value)`: the parts after the URL Standard's setter of `part` (a
/// setter that refuses the value leaves the URL as it was); `href` that fails to parse throws
/// a `TypeError`.
pub fn url_set(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    use url::quirks;
    let href = usv(args, 0, context)?;
    let part = usv(args, 1, context)?;
    let value = usv(args, 2, context)?;
    let invalid = || JsNativeError::typ().with_message(format!("Invalid URL: {value:?}"));
    let mut url = Url::parse(&href).map_err(|_| invalid())?;
    match part.as_str() {
        "href" => quirks::set_href(&mut url, &value).map_err(|_| invalid())?,
        "protocol" => {
            let _ = quirks::set_protocol(&mut url, &value);
        }
        "username" => {
            let _ = quirks::set_username(&mut url, &value);
        }
        "password" => {
            let _ = quirks::set_password(&mut url, &value);
        }
        "host" => {
            let _ = quirks::set_host(&mut url, &value);
        }
        "hostname" => {
            let _ = quirks::set_hostname(&mut url, &value);
        }
        "port" => {
            let _ = quirks::set_port(&mut url, &value);
        }
        "pathname" => quirks::set_pathname(&mut url, &value),
        "search" => quirks::set_search(&mut url, &value),
        "hash" => quirks::set_hash(&mut url, &value),
        other => {
            return Err(JsNativeError::typ()
                .with_message(format!("no URL part {other:?}"))
                .into());
        }
    }
    Ok(parts(&url, context))
}

/// `__hv_form_parse(text)`: the name-value pairs of an `application/x-www-form-urlencoded`
/// string, flattened `[name, value, name, value, …]`.
pub fn form_parse(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let text = usv(args, 0, context)?;
    let flat = form_urlencoded::parse(text.as_bytes())
        .flat_map(|(name, value)| [name.into_owned(), value.into_owned()])
        .map(|s| JsValue::from(JsString::from(s.as_str())));
    Ok(JsArray::from_iter(flat, context).into())
}

/// Flattened name-value pairs `[name, value, name, value, …]` (a JavaScript array) as strings,
/// lone surrogates replaced.
pub fn flat_pairs(value: &JsValue, context: &mut Context) -> JsResult<Vec<(String, String)>> {
    let flat = value.to_object(context)?;
    let length = flat
        .get(js_string!("length"), context)?
        .to_length(context)?;
    let mut pairs = Vec::new();
    let mut i = 0;
    while i + 1 < length {
        let name = flat
            .get(i, context)?
            .to_string(context)?
            .to_std_string_lossy();
        let value = flat
            .get(i + 1, context)?
            .to_string(context)?
            .to_std_string_lossy();
        pairs.push((name, value));
        i += 2;
    }
    Ok(pairs)
}

/// `__hv_form_serialize(flat)`: the `application/x-www-form-urlencoded` string of flattened
/// name-value pairs.
pub fn form_serialize(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in flat_pairs(args.get_or_undefined(0), context)? {
        serializer.append_pair(&name, &value);
    }
    Ok(JsString::from(serializer.finish().as_str()).into())
}

/// `__hv_utf8_encode(text)`: its UTF-8 bytes (lone surrogates as U+FFFD), a `Uint8Array`.
pub fn utf8_encode(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let text = usv(args, 0, context)?;
    Ok(JsUint8Array::from_iter(text.into_bytes(), context)?.into())
}

/// `__hv_utf8_decode(bytes, fatal)`: the text of a `Uint8Array`; invalid sequences become
/// U+FFFD, or, when `fatal`, the answer is null.
pub fn utf8_decode(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let bytes = bytes_arg(args, 0, context)?;
    let fatal = args.get_or_undefined(1).to_boolean();
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) if fatal => return Ok(JsValue::null()),
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    Ok(JsString::from(text.as_str()).into())
}

thread_local! {
    /// The monotonic clock's reading at the time origin (the set-up's or the invocation's
    /// start), ns.
    static ORIGIN: Cell<u64> = const { Cell::new(0) };
}

/// Sets `performance`'s time origin to now (at set-up and at each invocation's start).
pub fn reset_time_origin() {
    ORIGIN.with(|o| o.set(wasip2::clocks::monotonic_clock::now()));
}

/// `__hv_now()`: ms since the time origin, to the microsecond (coarsened, as browsers coarsen
/// it, so that timing is no finer a side channel than elsewhere).
pub fn now(_: &JsValue, _: &[JsValue], _: &mut Context) -> JsResult<JsValue> {
    let elapsed = wasip2::clocks::monotonic_clock::now().saturating_sub(ORIGIN.with(Cell::get));
    Ok(JsValue::from((elapsed / 1_000) as f64 / 1_000.0))
}
