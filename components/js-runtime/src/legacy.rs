//! `TextDecoder`'s legacy encodings (the Encoding Standard's single-byte encodings, the CJK
//! ones, `x-user-defined`), through encoding_rs, the Standard's implementation in Firefox.
//! UTF-8 and UTF-16 stay in src/web/encoding.js, with their byte order marks. A streaming
//! decoder lives here between `decode` calls, by number; the instance ends with the
//! invocation.

use std::cell::RefCell;
use std::collections::HashMap;

use boa_engine::{Context, JsArgs, JsNativeError, JsResult, JsString, JsValue};

use super::globals::text_arg;
use encoding_rs::{CoderResult, Decoder, DecoderResult, Encoding};

thread_local! {
    static DECODERS: RefCell<(u32, HashMap<u32, Decoder>)> = RefCell::new((0, HashMap::new()));
}

/// `__hv_encoding_for(label)`: the encoding's name as `TextDecoder.encoding` gives it (lower
/// case), or null for a label the Standard does not know or that names the replacement
/// encoding (both a `RangeError` in the constructor).
pub fn encoding_for(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let label = text_arg(args, 0, context)?;
    Ok(
        match Encoding::for_label_no_replacement(label.trim().as_bytes()) {
            Some(encoding) => JsString::from(encoding.name().to_ascii_lowercase().as_str()).into(),
            None => JsValue::null(),
        },
    )
}

/// `__hv_legacy_decode(id, name, bytes, last, fatal)`: the text of `bytes` in the encoding
/// `name`, continuing the stream `id` (0: a new one); answers `[id, text]`, `text` null when
/// `fatal` and the bytes are malformed (the stream is then over). `last` ends the stream.
pub fn legacy_decode(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let mut id = args.get_or_undefined(0).to_u32(context)?;
    let name = text_arg(args, 1, context)?;
    let bytes = super::web::bytes_arg(args, 2, context)?;
    let last = args.get_or_undefined(3).to_boolean();
    let fatal = args.get_or_undefined(4).to_boolean();
    let text = DECODERS.with_borrow_mut(|(next, decoders)| {
        if id == 0 || !decoders.contains_key(&id) {
            let encoding = Encoding::for_label_no_replacement(name.as_bytes())
                .ok_or_else(|| format!("no encoding {name}"))?;
            *next += 1;
            id = *next;
            decoders.insert(id, encoding.new_decoder_without_bom_handling());
        }
        let decoder = decoders
            .get_mut(&id)
            .ok_or_else(|| "the decoder is gone".to_owned())?;
        let text = decode(decoder, &bytes, last, fatal);
        if last || text.is_none() {
            decoders.remove(&id);
        }
        Ok::<_, String>(text)
    });
    let text = text.map_err(|e| JsNativeError::typ().with_message(e))?;
    let text = text.map_or(JsValue::null(), |t| JsString::from(t.as_str()).into());
    let answer = [JsValue::from(id), text];
    Ok(boa_engine::object::builtins::JsArray::from_iter(answer, context).into())
}

/// One chunk through `decoder`; None when `fatal` and the bytes are malformed.
fn decode(decoder: &mut Decoder, bytes: &[u8], last: bool, fatal: bool) -> Option<String> {
    let room = decoder
        .max_utf8_buffer_length(bytes.len())
        .unwrap_or(bytes.len().saturating_mul(3).saturating_add(16));
    let mut out = String::with_capacity(room);
    if fatal {
        let (result, _) = decoder.decode_to_string_without_replacement(bytes, &mut out, last);
        match result {
            DecoderResult::InputEmpty => Some(out),
            DecoderResult::Malformed(_, _) | DecoderResult::OutputFull => None,
        }
    } else {
        let (result, _, _) = decoder.decode_to_string(bytes, &mut out, last);
        (result == CoderResult::InputEmpty).then_some(out)
    }
}
