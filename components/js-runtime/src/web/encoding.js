// TextEncoder and TextDecoder (Encoding Standard: UTF-8 and UTF-16 LE/BE here, with `fatal`,
// `ignoreBOM` and streaming; every legacy encoding through encoding_rs, src/legacy.rs), atob
// and btoa (HTML's forgiving-base64).
(() => {
  const encode = __hv_utf8_encode, decodeUtf8 = __hv_utf8_decode,
        encodingFor = __hv_encoding_for, legacyDecode = __hv_legacy_decode;
  const define = (name, value) => Object.defineProperty(globalThis, name,
    { value, writable: true, configurable: true, enumerable: false });
  const isBuffer = (input) => input instanceof ArrayBuffer
    || (typeof SharedArrayBuffer !== "undefined" && input instanceof SharedArrayBuffer);
  const notBufferSource = (what) => new TypeError(`${what}: an ArrayBuffer or an ArrayBufferView is needed`);
  // A view of a buffer source's bytes (no copy).
  const view = (input, what) => {
    if (isBuffer(input)) return new Uint8Array(input);
    if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    throw notBufferSource(what);
  };
  // The view, for streams.js (the runtime deletes the global once the scripts ran).
  globalThis.__hv_buffer_view = view;
  // WebIDL's "get a copy of the bytes held by the buffer source", for fetch.js and crypto.js
  // (the runtime deletes the global once the scripts ran).
  globalThis.__hv_buffer_copy = (input, what) => {
    if (isBuffer(input)) return new Uint8Array(input.slice(0));
    if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer.slice(input.byteOffset, input.byteOffset + input.byteLength));
    throw notBufferSource(what);
  };

  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(input = "") { return encode(String(input)); }
    encodeInto(source, destination) {
      if (!(destination instanceof Uint8Array)) throw new TypeError("encodeInto: a Uint8Array is needed");
      const text = String(source);
      let read = 0, written = 0;
      for (const ch of text) {
        const bytes = encode(ch);
        if (written + bytes.length > destination.length) break;
        destination.set(bytes, written);
        written += bytes.length;
        read += ch.length;
      }
      return { read, written };
    }
  }

  const labels = new Map();
  [["utf-8", ["unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "utf-8", "utf8", "x-unicode20utf8"]],
   ["utf-16le", ["csunicode", "iso-10646-ucs-2", "ucs-2", "unicode", "unicodefeff", "utf-16", "utf-16le"]],
   ["utf-16be", ["unicodefffe", "utf-16be"]]].forEach(([name, list]) => list.forEach((l) => labels.set(l, name)));
  // The number of bytes at the end of `b` that begin a UTF-8 sequence that is valid so far but
  // not finished (the Encoding Standard's decoder holds exactly those; anything invalid is an
  // error at once).
  const utf8Pending = (b) => {
    for (let i = 1; i <= Math.min(3, b.length); i++) {
      const lead = b[b.length - i];
      if ((lead & 0xc0) === 0x80) continue;
      const need = lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
      if (need <= i) return 0;
      if (i >= 2) {
        const second = b[b.length - i + 1];
        const [low, high] = lead === 0xe0 ? [0xa0, 0xbf] : lead === 0xed ? [0x80, 0x9f]
          : lead === 0xf0 ? [0x90, 0xbf] : lead === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
        if (second < low || second > high) return 0;
      }
      return i;
    }
    return 0;
  };
  class TextDecoder {
    #encoding; #fatal; #ignoreBOM; #pending = new Uint8Array(0); #bomSeen = false;
    // A legacy encoding's streaming decoder (its number in src/legacy.rs; 0: none yet).
    #legacy = false; #stream = 0;
    constructor(label = "utf-8", options = {}) {
      let name = labels.get(String(label).trim().toLowerCase());
      if (!name) {
        name = encodingFor(String(label));
        if (name === null) {
          throw new RangeError(`TextDecoder: ${JSON.stringify(String(label))} is not a label of an encoding of the Encoding Standard`);
        }
        this.#legacy = true;
      }
      this.#encoding = name;
      this.#fatal = !!(options && options.fatal);
      this.#ignoreBOM = !!(options && options.ignoreBOM);
    }
    get encoding() { return this.#encoding; }
    get fatal() { return this.#fatal; }
    get ignoreBOM() { return this.#ignoreBOM; }
    decode(input, options = {}) {
      const stream = !!(options && options.stream);
      let bytes = input === undefined ? new Uint8Array(0) : view(input, "TextDecoder.decode");
      if (this.#legacy) {
        const [id, text] = legacyDecode(this.#stream, this.#encoding, bytes, !stream, this.#fatal);
        this.#stream = stream && text !== null ? id : 0;
        if (text === null) throw new TypeError(`TextDecoder: the data is not valid ${this.#encoding}`);
        return text;
      }
      if (this.#pending.length) {
        const joined = new Uint8Array(this.#pending.length + bytes.length);
        joined.set(this.#pending); joined.set(bytes, this.#pending.length);
        bytes = joined;
      }
      let keep = 0;
      if (stream) keep = this.#encoding === "utf-8" ? utf8Pending(bytes) : bytes.length % 2;
      this.#pending = bytes.slice(bytes.length - keep);
      bytes = bytes.subarray(0, bytes.length - keep);
      let text = this.#encoding === "utf-8" ? this.#utf8(bytes, stream) : this.#utf16(bytes, stream);
      if (!this.#ignoreBOM && !this.#bomSeen && text.length) {
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        this.#bomSeen = true;
      }
      if (!stream) { this.#bomSeen = false; this.#pending = new Uint8Array(0); }
      return text;
    }
    #fail() {
      this.#pending = new Uint8Array(0); this.#bomSeen = false;
      throw new TypeError(`TextDecoder: the data is not valid ${this.#encoding}`);
    }
    #utf8(bytes) {
      const text = decodeUtf8(bytes, this.#fatal);
      if (text === null) this.#fail();
      return text;
    }
    #utf16(bytes, stream) {
      const le = this.#encoding === "utf-16le";
      let out = "";
      const n = bytes.length - (bytes.length % 2);
      for (let i = 0; i < n; i += 2) {
        const unit = le ? bytes[i] | (bytes[i + 1] << 8) : (bytes[i] << 8) | bytes[i + 1];
        out += String.fromCharCode(unit);
      }
      if (n < bytes.length && !stream) { if (this.#fatal) this.#fail(); out += "\ufffd"; }
      // Lone surrogates are errors: fatal throws, otherwise each becomes U+FFFD.
      if (!out.isWellFormed()) {
        if (stream && /[\ud800-\udbff]$/.test(out)) {
          // A high surrogate at the end may be finished by the next chunk: keep its bytes.
          const tail = bytes.slice(n - 2, n);
          const rest = this.#pending;
          this.#pending = new Uint8Array(tail.length + rest.length);
          this.#pending.set(tail); this.#pending.set(rest, tail.length);
          out = out.slice(0, -1);
        }
        if (!out.isWellFormed()) { if (this.#fatal) this.#fail(); out = out.toWellFormed(); }
      }
      return out;
    }
  }
  define("TextEncoder", TextEncoder);
  define("TextDecoder", TextDecoder);

  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const values = new Map([...alphabet].map((c, i) => [c, i]));
  const invalid = (what) => new DOMException(what, "InvalidCharacterError");
  define("btoa", function btoa(data) {
    if (arguments.length === 0) throw new TypeError("btoa: 1 argument required");
    const s = String(data);
    let out = "";
    for (let i = 0; i < s.length; i += 3) {
      const a = s.charCodeAt(i), b = s.charCodeAt(i + 1), c = s.charCodeAt(i + 2);
      if (a > 255 || b > 255 || c > 255) throw invalid("btoa: the string contains characters outside Latin1");
      const n = (a << 16) | ((b || 0) << 8) | (c || 0);
      out += alphabet[n >> 18] + alphabet[(n >> 12) & 63]
        + (i + 1 < s.length ? alphabet[(n >> 6) & 63] : "=") + (i + 2 < s.length ? alphabet[n & 63] : "=");
    }
    return out;
  });
  define("atob", function atob(data) {
    if (arguments.length === 0) throw new TypeError("atob: 1 argument required");
    let s = String(data).replace(/[\t\n\f\r ]/g, "");
    if (s.length % 4 === 0) s = s.replace(/==?$/, "");
    if (s.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(s)) throw invalid("atob: the string is not correctly encoded");
    let out = "", buffer = 0, bits = 0;
    for (const c of s) {
      buffer = (buffer << 6) | values.get(c);
      bits += 6;
      if (bits >= 8) { bits -= 8; out += String.fromCharCode((buffer >> bits) & 255); }
    }
    return out;
  });
})();
