//! The codecs under `CompressionStream` and `DecompressionStream` (Compression Standard:
//! `deflate` is zlib, RFC 1950; `deflate-raw` RFC 1951; `gzip` RFC 1952; `brotli` RFC 7932),
//! through flate2 over miniz_oxide and through Dropbox's `brotli-decompressor` (both pure
//! Rust). A stream's codec lives here between its chunks, by number; the instance, and every
//! codec in it, ends with the invocation.
//!
//! Brotli is decompression only. Its encoder (the `brotli` crate) would add 0.8 MB of code to
//! this runtime's 5.5 MB (measured), and this runtime's code is compiled into every JavaScript
//! agent's snapshot and kept in memory with it, for a format agents rarely need to write
//! (gzip is everywhere brotli is). The decompressor with its dictionary adds 0.2 MB.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;

use boa_engine::object::builtins::{JsArray, JsUint8Array};
use boa_engine::{Context, JsArgs, JsNativeError, JsResult, JsString, JsValue};
use brotli_decompressor::BrotliDecoderParameter;
use flate2::Compression;

/// What the codecs' writers have in common beyond `Write` (their own methods, not a trait's).
trait Sink: Write {
    /// The output buffer.
    fn output(&mut self) -> &mut Vec<u8>;
    /// Writes what the end of the input implies (a trailer, or a decoder's last output).
    fn end(&mut self) -> std::io::Result<()>;
}

macro_rules! sink {
    ($($writer:ident),*) => {$(
        impl Sink for flate2::write::$writer<Vec<u8>> {
            fn output(&mut self) -> &mut Vec<u8> {
                self.get_mut()
            }
            fn end(&mut self) -> std::io::Result<()> {
                self.try_finish()
            }
        }
    )*};
}
sink!(
    ZlibEncoder,
    DeflateEncoder,
    GzEncoder,
    ZlibDecoder,
    DeflateDecoder,
    GzDecoder
);

impl Sink for brotli_decompressor::DecompressorWriter<Vec<u8>> {
    fn output(&mut self) -> &mut Vec<u8> {
        self.get_mut()
    }
    fn end(&mut self) -> std::io::Result<()> {
        self.close()
    }
}

struct Codec {
    sink: Box<dyn Sink>,
    decompresses: bool,
}

thread_local! {
    static CODECS: RefCell<(u32, HashMap<u32, Codec>)> = RefCell::new((0, HashMap::new()));
}

fn type_error(message: impl Into<String>) -> boa_engine::JsError {
    JsNativeError::typ().with_message(message.into()).into()
}

impl Codec {
    fn new(format: &str, decompresses: bool) -> Option<Self> {
        use flate2::write::{
            DeflateDecoder, DeflateEncoder, GzDecoder, GzEncoder, ZlibDecoder, ZlibEncoder,
        };
        let (out, level) = (Vec::new(), Compression::default());
        let sink: Box<dyn Sink> = match (format, decompresses) {
            ("deflate", false) => Box::new(ZlibEncoder::new(out, level)),
            ("deflate-raw", false) => Box::new(DeflateEncoder::new(out, level)),
            ("gzip", false) => Box::new(GzEncoder::new(out, level)),
            ("deflate", true) => Box::new(ZlibDecoder::new(out)),
            ("deflate-raw", true) => Box::new(DeflateDecoder::new(out)),
            ("gzip", true) => Box::new(GzDecoder::new(out)),
            ("brotli", true) => {
                let mut decoder = brotli_decompressor::DecompressorWriter::new(out, 4096);
                // RFC 7932's windows only (the library also reads "large window" streams,
                // which are not brotli as the Standard and browsers have it).
                decoder.set_parameter(BrotliDecoderParameter::BROTLI_DECODER_PARAM_LARGE_WINDOW, 0);
                Box::new(decoder)
            }
            _ => return None,
        };
        Some(Self { sink, decompresses })
    }

    /// The output made so far, taken.
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(self.sink.output())
    }

    /// Feeds `input`. A decoder's output so far is flushed out of flate2's buffer, so that
    /// each chunk's output is readable at once. A decoder that takes none of what is left has
    /// reached its stream's end: whatever follows is an error (the Standard's "junk after the
    /// end"), after the output made before it.
    fn push(&mut self, mut input: &[u8]) -> Result<(), String> {
        while !input.is_empty() {
            match self.sink.write(input) {
                Ok(0) => return Err("there is data after the end of the compressed stream".into()),
                Ok(n) => input = &input[n..],
                Err(e) => return Err(e.to_string()),
            }
        }
        if self.decompresses {
            self.sink.flush().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Ends the stream; a decoder whose input stopped before the stream's end fails. (A
    /// decoder past its stream's end takes no more input: the probe of one byte says which;
    /// what an unfinished one makes of that byte does not matter, it fails anyway.)
    fn finish(mut self) -> Result<Vec<u8>, String> {
        self.sink.end().map_err(|e| e.to_string())?;
        if self.decompresses && !matches!(self.sink.write(&[0]), Ok(0)) {
            return Err("the compressed stream ends before its end".into());
        }
        Ok(self.take())
    }
}

/// `__hv_codec_new(format, decompress)`: a codec's number.
pub fn codec_new(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let format = super::globals::text_arg(args, 0, context)?;
    let decompress = args.get_or_undefined(1).to_boolean();
    let codec = Codec::new(&format, decompress).ok_or_else(|| {
        type_error(format!(
            "the compression format {format:?} is not supported"
        ))
    })?;
    let id = CODECS.with_borrow_mut(|(next, codecs)| {
        *next += 1;
        codecs.insert(*next, codec);
        *next
    });
    Ok(JsValue::from(id))
}

fn id_arg(args: &[JsValue], context: &mut Context) -> JsResult<u32> {
    args.get_or_undefined(0).to_u32(context)
}

/// `[output, error]` as the natives answer: the output made, and the error that ended the
/// codec (a message) or null.
fn answer(out: Vec<u8>, error: Option<String>, context: &mut Context) -> JsResult<JsValue> {
    let error = error.map_or(JsValue::null(), |e| {
        JsValue::from(JsString::from(e.as_str()))
    });
    let out = JsUint8Array::from_iter(out, context)?.into();
    Ok(JsArray::from_iter([out, error], context).into())
}

/// `__hv_codec_push(id, bytes)`: `[output, error]` for one more chunk of input; a failing
/// codec is dropped.
pub fn codec_push(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let id = id_arg(args, context)?;
    let input = super::web::bytes_arg(args, 1, context)?;
    let (out, error) = CODECS.with_borrow_mut(|(_, codecs)| match codecs.get_mut(&id) {
        None => (Vec::new(), Some("the stream has ended already".to_owned())),
        Some(codec) => {
            let pushed = codec.push(&input);
            let out = codec.take();
            if pushed.is_err() {
                codecs.remove(&id);
            }
            (out, pushed.err())
        }
    });
    answer(out, error, context)
}

/// `__hv_codec_finish(id)`: `[output, error]` for the end of the input; the codec is gone.
pub fn codec_finish(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let id = id_arg(args, context)?;
    let codec = CODECS.with_borrow_mut(|(_, codecs)| codecs.remove(&id));
    let (out, error) = match codec {
        None => (Vec::new(), Some("the stream has ended already".to_owned())),
        Some(codec) => match codec.finish() {
            Ok(out) => (out, None),
            Err(e) => (Vec::new(), Some(e)),
        },
    };
    answer(out, error, context)
}
