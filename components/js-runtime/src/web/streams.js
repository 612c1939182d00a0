// Streams (WHATWG Streams Standard) and the transform streams built on them (Encoding's
// TextEncoderStream and TextDecoderStream, Compression's CompressionStream and
// DecompressionStream).
//
// The stream classes themselves are web-streams-polyfill's (npm, MIT licence; pinned by
// js-deps/package-lock.json), an implementation written from the Standard's reference
// implementation that runs web-platform-tests' streams suite. Its evaluation costs a few hundred
// milliseconds, so it is deferred: the globals are accessors that evaluate the library the
// first time one is read or written and then become the Standard's data properties (writable,
// configurable, not enumerable). The runtime builds them at set-up instead, into the snapshot,
// when an agent's source mentions streams (src/globals.rs). Compression goes through flate2
// natives (src/compress.rs).
(() => {
  const loadLibrary = __hv_load_streams;
  const codecNew = __hv_codec_new, codecPush = __hv_codec_push, codecFinish = __hv_codec_finish;
  const define = (name, value) => Object.defineProperty(globalThis, name,
    { value, writable: true, configurable: true, enumerable: false });
  const NAMES = [
    "ReadableStream", "ReadableStreamDefaultReader", "ReadableStreamBYOBReader",
    "ReadableStreamBYOBRequest", "ReadableStreamDefaultController", "ReadableByteStreamController",
    "WritableStream", "WritableStreamDefaultWriter", "WritableStreamDefaultController",
    "TransformStream", "TransformStreamDefaultController",
    "ByteLengthQueuingStrategy", "CountQueuingStrategy",
  ];
  let loaded = false;
  const install = () => {
    if (loaded) return;
    loaded = true;
    const exported = loadLibrary();
    for (const name of NAMES) {
      if (typeof exported[name] !== "function") throw new TypeError(`streams: the library has no ${name}`);
      define(name, exported[name]);
    }
  };
  for (const name of NAMES) {
    Object.defineProperty(globalThis, name, {
      configurable: true, enumerable: false,
      get() { install(); return globalThis[name]; },
      set(value) { install(); globalThis[name] = value; },
    });
  }
  // For the runtime (set-up) and fetch.js (no stream can exist before the library is loaded).
  globalThis.__hv_streams_install = install;
  globalThis.__hv_streams_loaded = () => loaded;

  // A chunk as bytes (a view of the caller's, as the Standards' transforms read them), or a
  // TypeError naming what was written (encoding.js's view of a buffer source).
  const chunkBytes = __hv_buffer_view;

  // The generic transform stream mixin (Streams §6.5.1): `readable` and `writable` of an inner
  // TransformStream, held privately.
  const transforms = new WeakMap();
  const inner = (self, what) => {
    const t = transforms.get(self);
    if (!t) throw new TypeError(`${what}: illegal invocation`);
    return t;
  };

  class TextEncoderStream {
    constructor() {
      const encoder = new TextEncoder();
      let pendingHigh = null;
      transforms.set(this, new TransformStream({
        transform(chunk, controller) {
          let text = String(chunk);
          if (pendingHigh !== null) { text = pendingHigh + text; pendingHigh = null; }
          if (text.length && /[\ud800-\udbff]$/.test(text)) { pendingHigh = text.slice(-1); text = text.slice(0, -1); }
          if (text.length) controller.enqueue(encoder.encode(text));
        },
        flush(controller) {
          if (pendingHigh !== null) controller.enqueue(new Uint8Array([0xef, 0xbf, 0xbd]));
        },
      }));
    }
    get encoding() { inner(this, "TextEncoderStream.encoding"); return "utf-8"; }
    get readable() { return inner(this, "TextEncoderStream.readable").readable; }
    get writable() { return inner(this, "TextEncoderStream.writable").writable; }
    get [Symbol.toStringTag]() { return "TextEncoderStream"; }
  }
  define("TextEncoderStream", TextEncoderStream);

  const decoders = new WeakMap();
  class TextDecoderStream {
    constructor(label = "utf-8", options = {}) {
      const decoder = new TextDecoder(label, options);
      decoders.set(this, decoder);
      transforms.set(this, new TransformStream({
        transform(chunk, controller) {
          const text = decoder.decode(chunkBytes(chunk, "TextDecoderStream"), { stream: true });
          if (text) controller.enqueue(text);
        },
        flush(controller) {
          const text = decoder.decode();
          if (text) controller.enqueue(text);
        },
      }));
    }
    get encoding() { inner(this, "TextDecoderStream.encoding"); return decoders.get(this).encoding; }
    get fatal() { inner(this, "TextDecoderStream.fatal"); return decoders.get(this).fatal; }
    get ignoreBOM() { inner(this, "TextDecoderStream.ignoreBOM"); return decoders.get(this).ignoreBOM; }
    get readable() { return inner(this, "TextDecoderStream.readable").readable; }
    get writable() { return inner(this, "TextDecoderStream.writable").writable; }
    get [Symbol.toStringTag]() { return "TextDecoderStream"; }
  }
  define("TextDecoderStream", TextDecoderStream);

  // Compression Standard: "deflate" (zlib, RFC 1950), "deflate-raw" (RFC 1951), "gzip" (RFC
  // 1952), "brotli" (RFC 7932, decompression only: src/compress.rs says why). The natives keep
  // the codec's state between chunks; an error (corrupt or truncated input, data after the
  // end) is a TypeError, as the Standard says.
  const FORMATS = ["deflate", "deflate-raw", "gzip", "brotli"];
  // A BufferSource (not shared: WebIDL's BufferSource without [AllowShared]) as bytes.
  const sourceBytes = (chunk, what) => {
    const shared = typeof SharedArrayBuffer !== "undefined"
      && (chunk instanceof SharedArrayBuffer || (ArrayBuffer.isView(chunk) && chunk.buffer instanceof SharedArrayBuffer));
    if (shared) throw new TypeError(`${what}: a chunk must not be shared memory`);
    return chunkBytes(chunk, what);
  };
  // The most output one read of a (de)compression stream gets: a small input that expands
  // enormously (a "decompression bomb") comes out a piece at a time as it is read, so that a
  // reader that processes its chunks as they come never holds more than a piece.
  const PIECE = 64 * 1024;
  // A codec stream: the Standard's TransformStream semantics (an error or a cancel ends both
  // sides; a write is done once its chunk is taken), with the transform driven by the reads:
  // each read takes the output of as much of the written input as makes one piece. (A
  // TransformStream's transform must make all of a chunk's output at once.)
  const codecStream = (self, format, decompress, what) => {
    format = String(format);
    if (!FORMATS.includes(format)) {
      const supported = decompress ? "deflate, deflate-raw, gzip and brotli are" : "deflate, deflate-raw and gzip are";
      throw new TypeError(`${what}: the format ${JSON.stringify(format)} is not supported (${supported})`);
    }
    if (format === "brotli" && !decompress) {
      throw new TypeError(`${what}: brotli compression is not available in this runtime (DecompressionStream reads brotli; CompressionStream makes deflate, deflate-raw and gzip)`);
    }
    const id = codecNew(format, decompress);
    let work = null; // the chunk being worked through: {bytes, resolve, reject}
    let wake = null; // a read waiting for work
    let ended = false;
    let readableController, writableController;
    // Ends both sides with `error` (the writable is told unless it is the one aborting).
    const stop = (error, aborting = false) => {
      if (ended) return;
      ended = true;
      // The native codec goes now (a brotli decoder's window can be 16 MiB).
      try { codecFinish(id); } catch {}
      try { readableController.error(error); } catch {}
      if (!aborting) try { writableController.error(error); } catch {}
      const w = work;
      work = null;
      if (w) w.reject(error);
      if (wake) wake();
    };
    const give = (bytes) => new Promise((resolve, reject) => {
      work = { bytes, resolve, reject };
      if (wake) wake();
    });
    const readable = new ReadableStream({
      start(c) { readableController = c; },
      async pull(c) {
        for (;;) {
          if (ended) return;
          if (work === null) {
            await new Promise((r) => { wake = r; });
            wake = null;
            continue;
          }
          // A piece of input at a time: the native copies what it is given.
          const [out, error, taken, more] = codecPush(id, work.bytes.subarray(0, PIECE), PIECE);
          work.bytes = work.bytes.subarray(taken);
          // (The output made before an error reaches the read that waits for it.)
          if (out.length) c.enqueue(out);
          if (error !== null) { stop(new TypeError(error)); return; }
          if (!work.bytes.length && !more) {
            const w = work;
            work = null;
            w.resolve();
          }
          if (out.length) return;
        }
      },
      cancel(reason) { stop(reason); },
    }, { highWaterMark: 0 });
    const writable = new WritableStream({
      start(c) {
        writableController = c;
        // An abort ends both sides at once, even while a chunk is being read out.
        c.signal?.addEventListener("abort", () => stop(c.signal.reason, true));
      },
      write(chunk) {
        let bytes;
        try {
          bytes = new Uint8Array(sourceBytes(chunk, what));
        } catch (e) {
          stop(e);
          throw e;
        }
        return give(bytes);
      },
      // The end of the input, at once (a close comes after the last chunk is taken): what the
      // codec has left (a trailer, a decoder's last bytes) is queued and the readable closes.
      close() {
        if (ended) return;
        const [out, error] = codecFinish(id);
        if (out.length) readableController.enqueue(out);
        if (error !== null) {
          const e = new TypeError(error);
          stop(e);
          throw e;
        }
        ended = true;
        readableController.close();
        if (wake) wake();
      },
      abort(reason) { stop(reason, true); },
    }, { highWaterMark: 1 });
    transforms.set(self, { readable, writable });
  };
  class CompressionStream {
    constructor(format) {
      if (arguments.length < 1) throw new TypeError("CompressionStream: a format is required");
      codecStream(this, format, false, "CompressionStream");
    }
    get readable() { return inner(this, "CompressionStream.readable").readable; }
    get writable() { return inner(this, "CompressionStream.writable").writable; }
    get [Symbol.toStringTag]() { return "CompressionStream"; }
  }
  class DecompressionStream {
    constructor(format) {
      if (arguments.length < 1) throw new TypeError("DecompressionStream: a format is required");
      codecStream(this, format, true, "DecompressionStream");
    }
    get readable() { return inner(this, "DecompressionStream.readable").readable; }
    get writable() { return inner(this, "DecompressionStream.writable").writable; }
    get [Symbol.toStringTag]() { return "DecompressionStream"; }
  }
  define("CompressionStream", CompressionStream);
  define("DecompressionStream", DecompressionStream);
})();
