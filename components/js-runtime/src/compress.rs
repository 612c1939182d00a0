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
use brotli_decompressor::{
    BrotliDecoderParameter, BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc,
};
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

/// A brotli decoder driven through the library's streaming call, which stops when the output
/// space given is full (its `Write` adaptor writes all the output an input makes, which a few
/// bytes of a crafted stream can make gigabytes of).
struct Brotli {
    state: Box<BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>>,
    /// The last call's result: whether the stream is complete, or wants output space.
    last: BrotliResult,
    /// Output made and not yet taken.
    out: Vec<u8>,
}

impl Brotli {
    fn new() -> Self {
        let alloc = StandardAlloc::default();
        let mut state = Box::new(BrotliState::new(alloc, alloc, alloc));
        // RFC 7932's windows only (the library also reads "large window" streams, which are
        // not brotli as the Standard and browsers have it).
        state.set_parameter(BrotliDecoderParameter::BROTLI_DECODER_PARAM_LARGE_WINDOW, 0);
        Self {
            state,
            last: BrotliResult::NeedsMoreInput,
            out: Vec::new(),
        }
    }

    /// Decodes from `input` into its output, straight into the buffer, until the output holds
    /// `max` bytes or the input is taken; returns how much input was taken.
    fn run(&mut self, input: &[u8], max: usize) -> Result<usize, String> {
        let (mut available_in, mut taken) = (input.len(), 0);
        loop {
            if matches!(self.last, BrotliResult::ResultSuccess) {
                return if available_in > 0 {
                    Err("there is data after the end of the compressed stream".into())
                } else {
                    Ok(taken)
                };
            }
            let (start, room) = (self.out.len(), max.saturating_sub(self.out.len()));
            if room == 0 {
                return Ok(taken);
            }
            self.out.resize(start + room, 0);
            let (mut available_out, mut written, mut total) = (room, 0, 0);
            self.last = BrotliDecompressStream(
                &mut available_in,
                &mut taken,
                input,
                &mut available_out,
                &mut written,
                &mut self.out[start..],
                &mut total,
                &mut self.state,
            );
            self.out.truncate(start + written);
            match self.last {
                BrotliResult::ResultFailure => return Err("the brotli stream is corrupt".into()),
                BrotliResult::NeedsMoreInput => return Ok(taken),
                BrotliResult::NeedsMoreOutput | BrotliResult::ResultSuccess => {}
            }
        }
    }
}

/// A stream's codec: flate2's writers, or the brotli decoder.
enum Engine {
    Flate(Box<dyn Sink>),
    Brotli(Brotli),
}

struct Codec {
    engine: Engine,
    decompresses: bool,
}

/// What one push did: the output made, the input taken, and whether the codec stopped at the
/// output bound (it may have more to give without more input).
struct Pushed {
    out: Vec<u8>,
    taken: usize,
    more: bool,
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
                return Some(Self {
                    engine: Engine::Brotli(Brotli::new()),
                    decompresses,
                });
            }
            _ => return None,
        };
        Some(Self {
            engine: Engine::Flate(sink),
            decompresses,
        })
    }

    /// The output made so far, taken.
    fn take(&mut self) -> Vec<u8> {
        match &mut self.engine {
            Engine::Flate(sink) => std::mem::take(sink.output()),
            Engine::Brotli(decoder) => std::mem::take(&mut decoder.out),
        }
    }

    /// Feeds `input` until it is taken or about `max` bytes of output are made (the brotli
    /// decoder stops at the bound exactly; flate2's writers may add what their buffers hold,
    /// up to ~96 KiB more, since a write makes at most their 32 KiB buffer), so that a small
    /// input that expands enormously (a "decompression bomb") comes out in bounded pieces as
    /// it is read, never all at once. A decoder's output so far
    /// is flushed out of flate2's buffer, so that each piece is readable at once. A decoder
    /// that takes none of what is left has reached its stream's end: whatever follows is an
    /// error (the Standard's "junk after the end"), after the output made before it.
    fn push(&mut self, input: &[u8], max: usize) -> (Pushed, Result<(), String>) {
        let decompresses = self.decompresses;
        let (taken, result) = match &mut self.engine {
            Engine::Brotli(decoder) => match decoder.run(input, max) {
                Ok(taken) => (taken, Ok(())),
                Err(e) => (0, Err(e)),
            },
            Engine::Flate(sink) => {
                let mut taken = 0;
                let mut result = Ok(());
                // A slice at a time: a slice's output is bounded by the writer's buffer.
                while taken < input.len() && sink.output().len() < max {
                    let slice = &input[taken..input.len().min(taken + 4096)];
                    match sink.write(slice) {
                        Ok(0) => {
                            result =
                                Err("there is data after the end of the compressed stream"
                                    .to_owned());
                            break;
                        }
                        Ok(n) => taken += n,
                        Err(e) => {
                            result = Err(e.to_string());
                            break;
                        }
                    }
                }
                // All of the input taken: out with what the decoder holds (its buffer and
                // window, at most ~64 KiB), so that the piece is readable at once. Stopped at
                // the bound instead: the next push carries on from there.
                if result.is_ok() && decompresses && taken == input.len() {
                    result = sink.flush().map_err(|e| e.to_string());
                }
                (taken, result)
            }
        };
        let out = self.take();
        let more = result.is_ok() && out.len() >= max;
        (Pushed { out, taken, more }, result)
    }

    /// Ends the stream; a decoder whose input stopped before the stream's end fails. (A flate2
    /// decoder past its stream's end takes no more input: the probe of one byte says which;
    /// what an unfinished one makes of that byte does not matter, it fails anyway.)
    fn finish(mut self) -> Result<Vec<u8>, String> {
        match &mut self.engine {
            Engine::Brotli(decoder) => {
                if !matches!(decoder.last, BrotliResult::ResultSuccess) {
                    return Err("the compressed stream ends before its end".into());
                }
            }
            Engine::Flate(sink) => {
                sink.end().map_err(|e| e.to_string())?;
                if self.decompresses && !matches!(sink.write(&[0]), Ok(0)) {
                    return Err("the compressed stream ends before its end".into());
                }
            }
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

/// `[output, error, taken, more]` as the natives answer: the output made, the error that
/// ended the codec (a message) or null, the input taken, and whether the codec may give more
/// output without more input.
fn answer(pushed: Pushed, error: Option<String>, context: &mut Context) -> JsResult<JsValue> {
    let error = error.map_or(JsValue::null(), |e| {
        JsValue::from(JsString::from(e.as_str()))
    });
    let out = JsUint8Array::from_iter(pushed.out, context)?.into();
    let taken = JsValue::from(u32::try_from(pushed.taken).unwrap_or(u32::MAX));
    let answer = [out, error, taken, JsValue::from(pushed.more)];
    Ok(JsArray::from_iter(answer, context).into())
}

fn nothing() -> Pushed {
    Pushed {
        out: Vec::new(),
        taken: 0,
        more: false,
    }
}

/// `__hv_codec_push(id, bytes, max)`: `[output, error, taken, more]` for input `bytes`, of
/// which the codec takes what it can while its output stays within about `max` bytes; a
/// failing codec is dropped.
pub fn codec_push(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let id = id_arg(args, context)?;
    let input = super::web::bytes_arg(args, 1, context)?;
    let max = usize::try_from(args.get_or_undefined(2).to_u32(context)?)
        .unwrap_or(usize::MAX)
        .max(1);
    let (pushed, error) = CODECS.with_borrow_mut(|(_, codecs)| match codecs.get_mut(&id) {
        None => (nothing(), Some("the stream has ended already".to_owned())),
        Some(codec) => {
            let (pushed, result) = codec.push(&input, max);
            if result.is_err() {
                codecs.remove(&id);
            }
            (pushed, result.err())
        }
    });
    answer(pushed, error, context)
}

/// `__hv_codec_finish(id)`: `[output, error, 0, false]` for the end of the input (what a
/// finished decoder has left is what its last push held back: little, a trailer's worth); the
/// codec is gone.
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
    let pushed = Pushed { out, ..nothing() };
    answer(pushed, error, context)
}
