// Blob, File, FormData, Headers, Request, Response and fetch (File API, XHR's FormData, Fetch
// Standard). A body is held as bytes until its `body` stream is asked for (a byte stream over
// those bytes), or is the ReadableStream it was made from; fetch reads a stream body whole
// before sending it, and answers with the whole response (wasi:http as far as the agent's
// grants allow; a refusal rejects with a TypeError naming the wasi:http error); redirects are
// not followed.
(() => {
  const transport = __hv_fetch, encode = __hv_utf8_encode, decodeUtf8 = __hv_utf8_decode,
        random = __hv_random, streamsLoaded = __hv_streams_loaded;
  const define = (name, value) => Object.defineProperty(globalThis, name,
    { value, writable: true, configurable: true, enumerable: false });
  const decode = (bytes) => decodeUtf8(bytes, false).replace(/^\ufeff/, "");
  const concat = (chunks) => {
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) { out.set(c, at); at += c.length; }
    return out;
  };
  const bufferCopy = __hv_buffer_copy;
  const copy = (data) => bufferCopy(data, "a body");
  // A byte stream of `bytes` (one chunk, a copy: a byte stream takes its chunks' buffers).
  const bytesStream = (bytes) => new ReadableStream({
    type: "bytes",
    pull(controller) {
      if (bytes.length) controller.enqueue(new Uint8Array(bytes));
      controller.close();
    },
  });
  // Every chunk of a stream of bytes, read to its end, as one array.
  const readAll = async (stream) => {
    const reader = stream.getReader(), chunks = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return concat(chunks);
      if (!(value instanceof Uint8Array)) throw new TypeError("a body stream's chunks must be Uint8Arrays");
      chunks.push(value);
    }
  };
  const isBufferSource = (v) => v instanceof ArrayBuffer || ArrayBuffer.isView(v)
    || (typeof SharedArrayBuffer !== "undefined" && v instanceof SharedArrayBuffer);

  // Blob: immutable bytes and a type.
  const blobBytes = new WeakMap();
  class Blob {
    #type;
    constructor(parts = [], options = {}) {
      if (parts === null || typeof parts !== "object" || typeof parts[Symbol.iterator] !== "function") {
        if (parts !== undefined) throw new TypeError("Blob: the parts must be a sequence");
      }
      const chunks = [];
      const endings = options && options.endings === "native" ? "native" : "transparent";
      for (const part of parts || []) {
        if (part instanceof Blob) chunks.push(blobBytes.get(part));
        else if (isBufferSource(part)) chunks.push(copy(part));
        else {
          let text = String(part);
          if (endings === "native") text = text.replace(/\r\n|\r/g, "\n");
          chunks.push(encode(text));
        }
      }
      blobBytes.set(this, concat(chunks));
      const type = options && options.type !== undefined ? String(options.type) : "";
      this.#type = /^[\x20-\x7e]*$/.test(type) ? type.toLowerCase() : "";
    }
    get size() { return blobBytes.get(this).length; }
    get type() { return this.#type; }
    slice(start = 0, end = undefined, type = "") {
      const bytes = blobBytes.get(this), size = bytes.length;
      const clamp = (v, d) => { const n = v === undefined ? d : Math.trunc(Number(v)) || 0; return n < 0 ? Math.max(size + n, 0) : Math.min(n, size); };
      const from = clamp(start, 0), to = clamp(end, size);
      return new Blob([bytes.slice(from, Math.max(from, to))], { type: String(type) });
    }
    async arrayBuffer() { return blobBytes.get(this).slice().buffer; }
    async bytes() { return blobBytes.get(this).slice(); }
    async text() { return decode(blobBytes.get(this)); }
    stream() { return bytesStream(blobBytes.get(this)); }
    get [Symbol.toStringTag]() { return "Blob"; }
  }
  class File extends Blob {
    #name; #lastModified;
    constructor(parts, name, options = {}) {
      if (arguments.length < 2) throw new TypeError("File: the parts and a name are required");
      super(parts, options);
      this.#name = String(name);
      this.#lastModified = options && options.lastModified !== undefined ? Number(options.lastModified) : Date.now();
    }
    get name() { return this.#name; }
    get lastModified() { return this.#lastModified; }
    get [Symbol.toStringTag]() { return "File"; }
  }
  define("Blob", Blob);
  define("File", File);

  // Live pair iterators (WebIDL), as URLSearchParams has them (src/web/url.js).
  const iterate = __hv_pair_iterator;

  class FormData {
    #entries = [];
    constructor(form = undefined) {
      if (form !== undefined) throw new TypeError("FormData: there are no HTML forms in this runtime");
    }
    static #entry(name, value, filename) {
      if (value instanceof Blob) {
        const file = value instanceof File && filename === undefined ? value
          : new File([value], filename !== undefined ? String(filename) : value instanceof File ? value.name : "blob",
            { type: value.type, lastModified: value instanceof File ? value.lastModified : undefined });
        return [String(name).toWellFormed(), file];
      }
      return [String(name).toWellFormed(), String(value).toWellFormed()];
    }
    append(name, value, filename) { this.#entries.push(FormData.#entry(name, value, filename)); }
    set(name, value, filename) {
      const entry = FormData.#entry(name, value, filename);
      const i = this.#entries.findIndex(([k]) => k === entry[0]);
      if (i < 0) this.#entries.push(entry);
      else { this.#entries[i] = entry; this.#entries = this.#entries.filter(([k], j) => j <= i || k !== entry[0]); }
    }
    delete(name) { const n = String(name).toWellFormed(); this.#entries = this.#entries.filter(([k]) => k !== n); }
    get(name) { const n = String(name).toWellFormed(); const e = this.#entries.find(([k]) => k === n); return e ? e[1] : null; }
    getAll(name) { const n = String(name).toWellFormed(); return this.#entries.filter(([k]) => k === n).map(([, v]) => v); }
    has(name) { const n = String(name).toWellFormed(); return this.#entries.some(([k]) => k === n); }
    forEach(callback, thisArg) { for (let i = 0; i < this.#entries.length; i++) callback.call(thisArg, this.#entries[i][1], this.#entries[i][0], this); }
    keys() { return iterate(() => this.#entries, "keys"); }
    values() { return iterate(() => this.#entries, "values"); }
    entries() { return iterate(() => this.#entries, "entries"); }
    [Symbol.iterator]() { return this.entries(); }
    get [Symbol.toStringTag]() { return "FormData"; }
  }
  define("FormData", FormData);

  // multipart/form-data (RFC 7578), as the HTML Standard encodes a form's entries.
  const multipart = (form) => {
    const boundary = `----hypervisor-${[...random(12)].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
    const escape = (s) => s.replace(/\r\n|\r|\n/g, "\r\n").replace(/\n/g, "%0A").replace(/\r/g, "%0D").replace(/"/g, "%22");
    const chunks = [];
    // No entries, no body (what browsers send, and WPT's consume-empty tests expect).
    if (![...form].length) return [new Uint8Array(0), `multipart/form-data; boundary=${boundary}`];
    for (const [name, value] of form) {
      let head = `--${boundary}\r\nContent-Disposition: form-data; name="${escape(name)}"`;
      if (value instanceof File) {
        head += `; filename="${escape(value.name)}"\r\nContent-Type: ${value.type || "application/octet-stream"}\r\n\r\n`;
        chunks.push(encode(head), blobBytes.get(value), encode("\r\n"));
      } else {
        chunks.push(encode(`${head}\r\n\r\n${value.replace(/\r\n|\r|\n/g, "\r\n")}\r\n`));
      }
    }
    chunks.push(encode(`--${boundary}--\r\n`));
    return [concat(chunks), `multipart/form-data; boundary=${boundary}`];
  };
  const parseMultipart = (bytes, type) => {
    const m = /boundary="?([^";]+)"?/i.exec(type);
    if (!m) throw new TypeError("formData: the multipart body has no boundary");
    const text = decodeUtf8(bytes, false);
    const form = new FormData();
    const parts = text.split(`--${m[1]}`);
    if (parts.length < 2) throw new TypeError("formData: the body is not multipart/form-data");
    for (const part of parts.slice(1)) {
      if (part.startsWith("--")) break;
      const split = part.indexOf("\r\n\r\n");
      if (split < 0) throw new TypeError("formData: a part has no header section");
      const head = part.slice(2, split), body = part.slice(split + 4, part.endsWith("\r\n") ? -2 : undefined);
      const disposition = /content-disposition:[^\r\n]*?\bname="([^"]*)"(?:[^\r\n]*?\bfilename="([^"]*)")?/i.exec(head);
      if (!disposition) throw new TypeError("formData: a part has no name");
      const partType = /content-type:\s*([^\r\n]*)/i.exec(head);
      if (disposition[2] !== undefined) form.append(disposition[1], new File([body], disposition[2], { type: partType ? partType[1] : "" }));
      else form.append(disposition[1], body);
    }
    return form;
  };

  // Headers (Fetch Standard): names lower-cased, values' surrounding whitespace removed,
  // iteration sorted with set-cookie kept apart.
  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  const normalizeValue = (v) => String(v).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
  const checkName = (n) => { const s = String(n); if (!TOKEN.test(s)) throw new TypeError(`Headers: invalid name ${JSON.stringify(s)}`); return s.toLowerCase(); };
  const checkValue = (v) => { const s = normalizeValue(v); if (/[\0\r\n]/.test(s) || /[^\x00-\xff]/.test(s)) throw new TypeError(`Headers: invalid value ${JSON.stringify(s)}`); return s; };
  const guards = new WeakMap();
  class Headers {
    #list = [];
    constructor(init = undefined) {
      if (init === undefined || init === null) return;
      if (typeof init !== "object") throw new TypeError("Headers: a record or a sequence of pairs is needed");
      if (typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          const p = [...pair];
          if (p.length !== 2) throw new TypeError("Headers: each pair needs a name and a value");
          this.append(p[0], p[1]);
        }
      } else {
        for (const k of Reflect.ownKeys(init)) {
          const d = Reflect.getOwnPropertyDescriptor(init, k);
          if (d && d.enumerable && typeof k === "string") this.append(k, init[k]);
        }
      }
    }
    #writable() { if (guards.get(this) === "immutable") throw new TypeError("Headers: these headers are immutable"); }
    append(name, value) { const n = checkName(name), v = checkValue(value); this.#writable(); this.#list.push([n, v]); }
    set(name, value) {
      const n = checkName(name), v = checkValue(value); this.#writable();
      const i = this.#list.findIndex(([k]) => k === n);
      if (i < 0) this.#list.push([n, v]);
      else { this.#list[i] = [n, v]; this.#list = this.#list.filter(([k], j) => j <= i || k !== n); }
    }
    delete(name) { const n = checkName(name); this.#writable(); this.#list = this.#list.filter(([k]) => k !== n); }
    get(name) {
      const n = checkName(name);
      const values = this.#list.filter(([k]) => k === n).map(([, v]) => v);
      return values.length ? values.join(", ") : null;
    }
    getSetCookie() { return this.#list.filter(([k]) => k === "set-cookie").map(([, v]) => v); }
    has(name) { const n = checkName(name); return this.#list.some(([k]) => k === n); }
    #sorted() {
      const names = [...new Set(this.#list.map(([k]) => k))].sort();
      const out = [];
      for (const n of names) {
        if (n === "set-cookie") for (const v of this.getSetCookie()) out.push([n, v]);
        else out.push([n, this.get(n)]);
      }
      return out;
    }
    forEach(callback, thisArg) { for (const [k, v] of this.#sorted()) callback.call(thisArg, v, k, this); }
    keys() { return iterate(() => this.#sorted(), "keys"); }
    values() { return iterate(() => this.#sorted(), "values"); }
    entries() { return iterate(() => this.#sorted(), "entries"); }
    [Symbol.iterator]() { return this.entries(); }
    get [Symbol.toStringTag]() { return "Headers"; }
  }
  define("Headers", Headers);

  // A body as the Fetch Standard extracts it: `[bytes, type it implies, stream]`; a stream
  // keeps its bytes to itself.
  const extract = (body) => {
    if (body instanceof Blob) return [blobBytes.get(body), body.type || null, null];
    if (isBufferSource(body)) return [copy(body), null, null];
    if (body instanceof URLSearchParams) return [encode(body.toString()), "application/x-www-form-urlencoded;charset=UTF-8", null];
    if (body instanceof FormData) return [...multipart(body), null];
    if (streamsLoaded() && body instanceof ReadableStream) {
      if (body.locked || disturbed(body)) throw new TypeError("a body stream that is locked or has been read cannot be a body");
      return [null, null, body];
    }
    return [encode(String(body)), "text/plain;charset=UTF-8", null];
  };
  // Whether a stream has been read from (the Streams Standard's [[disturbed]], which the pinned
  // web-streams-polyfill keeps as `_disturbed`).
  const disturbed = (stream) => stream._disturbed === true;
  const mimeOf = (headers) => (headers.get("content-type") || "").split(";")[0].trim().toLowerCase();
  // The body methods (Fetch's Body mixin) over a holder's body: `#bytes` until a stream is
  // made or given, then `#stream`.
  const Body = (Base) => class extends Base {
    #bytes = null; #stream = null; #used = false;
    static _body(self, bytes, stream = null) { self.#bytes = bytes; self.#stream = stream; }
    // The body's bytes or stream for another holder (a clone tees the stream).
    static _share(self) {
      if (self.#stream === null) return [self.#bytes, null];
      const [mine, theirs] = self.#stream.tee();
      self.#stream = mine;
      return [null, theirs];
    }
    // The body moved to another holder (`new Request(request)`): this one counts as read.
    static _take(self) {
      if (self.#stream === null) {
        const bytes = self.#bytes;
        if (bytes !== null) self.#used = true;
        return [bytes, null];
      }
      return [null, self.#stream.pipeThrough(new TransformStream())];
    }
    // The whole body for the transport: its bytes, or its stream read to the end.
    static _whole(self) { return self.#stream === null ? self.#bytes : readAll(self.#stream); }
    static _hasBody(self) { return self.#bytes !== null || self.#stream !== null; }
    // Whether the body can be cloned: neither read nor locked.
    static _clonable(self) { return !self.bodyUsed && !(self.#stream !== null && self.#stream.locked); }
    get body() {
      if (this.#stream === null && this.#bytes !== null) {
        this.#stream = bytesStream(this.#used ? new Uint8Array(0) : this.#bytes);
        if (this.#used) this.#stream.getReader().read();
        this.#bytes = null;
      }
      return this.#stream;
    }
    get bodyUsed() { return this.#stream === null ? this.#used : disturbed(this.#stream); }
    #consume() {
      if (this.bodyUsed) return Promise.reject(new TypeError("the body has been read already"));
      if (this.#stream !== null) {
        if (this.#stream.locked) return Promise.reject(new TypeError("the body stream is locked"));
        return readAll(this.#stream);
      }
      if (this.#bytes !== null) this.#used = true;
      return Promise.resolve(this.#bytes === null ? new Uint8Array(0) : this.#bytes.slice());
    }
    arrayBuffer() { return this.#consume().then((b) => b.buffer); }
    bytes() { return this.#consume(); }
    text() { return this.#consume().then(decode); }
    json() { return this.text().then(JSON.parse); }
    blob() { return this.#consume().then((b) => new Blob([b], { type: mimeOf(this.headers) })); }
    formData() {
      return this.#consume().then((b) => {
        const mime = mimeOf(this.headers);
        if (mime === "application/x-www-form-urlencoded") {
          const form = new FormData();
          // The urlencoded parser decodes without removing a byte order mark.
          for (const [k, v] of new URLSearchParams(decodeUtf8(b, false))) form.append(k, v);
          return form;
        }
        if (mime === "multipart/form-data") return parseMultipart(b, this.headers.get("content-type"));
        throw new TypeError(`formData: the body's type ${JSON.stringify(mime)} is not a form`);
      });
    }
  };

  // The base of relative URLs: `location.href` where the agent sets a `location` (as Deno's
  // `--location` does), else none (a relative URL is an error).
  const baseURL = () => {
    const l = globalThis.location;
    return l && typeof l.href === "string" ? l.href : undefined;
  };
  const METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];
  class RequestBase {}
  const RequestBody = Body(RequestBase);
  const setRequestBody = RequestBody._body, takeRequestBody = RequestBody._take,
        shareRequestBody = RequestBody._share, wholeRequestBody = RequestBody._whole,
        requestHasBody = RequestBody._hasBody, clonable = RequestBody._clonable;
  class Request extends RequestBody {
    #url; #method; #headers; #signal; #redirect;
    constructor(input, init = {}) {
      super();
      if (arguments.length === 0) throw new TypeError("Request: 1 argument required");
      init = init || {};
      const from = input instanceof Request ? input : null;
      let url;
      try { url = new URL(from ? from.url : String(input), baseURL()); } catch (_) {
        throw new TypeError(`Request: ${JSON.stringify(String(input))} is not an absolute URL${baseURL() ? ` nor one relative to ${baseURL()}` : ""}`);
      }
      if (url.username || url.password) throw new TypeError("Request: a URL with credentials cannot be fetched");
      this.#url = url.href.replace(/#.*$/, "");
      let method = init.method !== undefined ? String(init.method) : from ? from.method : "GET";
      if (!TOKEN.test(method)) throw new TypeError(`Request: invalid method ${JSON.stringify(method)}`);
      const upper = method.toUpperCase();
      if (["CONNECT", "TRACE", "TRACK"].includes(upper)) throw new TypeError(`Request: the method ${upper} is forbidden`);
      this.#method = METHODS.includes(upper) ? upper : method;
      this.#headers = new Headers(init.headers !== undefined ? init.headers : from ? from.headers : undefined);
      this.#signal = init.signal !== undefined && init.signal !== null ? init.signal : from ? from.signal : new AbortController().signal;
      this.#redirect = init.redirect || (from ? from.redirect : "follow");
      if (from && from.bodyUsed && (init.body === undefined || init.body === null)) {
        throw new TypeError("Request: the given request's body has been read already");
      }
      let bytes = null, stream = null;
      if (init.body !== undefined && init.body !== null) {
        const [b, type, s] = extract(init.body);
        bytes = b; stream = s;
        if (type && !this.#headers.has("content-type")) this.#headers.set("content-type", type);
      } else if (from && requestHasBody(from)) {
        [bytes, stream] = takeRequestBody(from);
      }
      if ((bytes !== null || stream !== null) && (this.#method === "GET" || this.#method === "HEAD")) throw new TypeError(`Request: a ${this.#method} request cannot have a body`);
      if (init.duplex !== undefined && String(init.duplex) !== "half") {
        throw new TypeError(`Request: duplex ${JSON.stringify(String(init.duplex))} is not "half", the only one there is`);
      }
      if (stream !== null && init.body !== undefined && init.duplex !== "half") {
        throw new TypeError("Request: a ReadableStream body needs `duplex: \"half\"` in the init");
      }
      setRequestBody(this, bytes, stream);
    }
    get url() { return this.#url; }
    get method() { return this.#method; }
    get headers() { return this.#headers; }
    get signal() { return this.#signal; }
    get redirect() { return this.#redirect; }
    get destination() { return ""; }
    get referrer() { return "about:client"; }
    get mode() { return "cors"; }
    get credentials() { return "same-origin"; }
    get cache() { return "default"; }
    get integrity() { return ""; }
    get keepalive() { return false; }
    get duplex() { return "half"; }
    clone() {
      if (!clonable(this)) throw new TypeError("Request.clone: the body has been read already or is locked");
      const copy = new Request(this.#url, { method: this.#method, headers: this.#headers, signal: this.#signal, redirect: this.#redirect });
      const [bytes, stream] = shareRequestBody(this);
      setRequestBody(copy, bytes, stream);
      return copy;
    }
    get [Symbol.toStringTag]() { return "Request"; }
  }
  define("Request", Request);

  class ResponseBase {}
  const ResponseBody = Body(ResponseBase);
  const setResponseBody = ResponseBody._body, shareResponseBody = ResponseBody._share,
        responseClonable = ResponseBody._clonable;
  // A response the runtime makes (from the network, a clone, Response.error()): its parts as
  // they are, without the constructor's checks.
  let internal = null;
  class Response extends ResponseBody {
    #status; #statusText; #headers; #type; #url;
    constructor(body = null, init = {}) {
      super();
      if (internal) {
        const made = internal;
        internal = null;
        this.#status = made.status; this.#statusText = made.statusText; this.#type = made.type; this.#url = made.url;
        this.#headers = new Headers(made.headers);
        if (made.type !== "default") guards.set(this.#headers, "immutable");
        setResponseBody(this, made.bytes, made.stream || null);
        return;
      }
      init = init || {};
      const status = init.status === undefined ? 200 : Number(init.status);
      if (!Number.isInteger(status) || status < 200 || status > 599) {
        throw new RangeError(`Response: the status ${init.status} is outside 200–599`);
      }
      const statusText = init.statusText === undefined ? "" : String(init.statusText);
      if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(statusText)) throw new TypeError("Response: invalid statusText");
      this.#status = status;
      this.#statusText = statusText;
      this.#headers = new Headers(init.headers);
      this.#type = "default";
      this.#url = "";
      let bytes = null, stream = null;
      if (body !== null && body !== undefined) {
        if ([101, 103, 204, 205, 304].includes(status)) throw new TypeError(`Response: a ${status} response cannot have a body`);
        const [b, type, s] = extract(body);
        bytes = b; stream = s;
        if (type && !this.#headers.has("content-type")) this.#headers.set("content-type", type);
      }
      setResponseBody(this, bytes, stream);
    }
    static error() { return answered(0, "", [], null, "", "error"); }
    static redirect(url, status = 302) {
      if (![301, 302, 303, 307, 308].includes(status)) throw new RangeError(`Response.redirect: ${status} is not a redirect status`);
      const r = new Response(null, { status, headers: { location: new URL(String(url), baseURL()).href } });
      return r;
    }
    static json(data, init = {}) {
      const text = JSON.stringify(data);
      if (text === undefined) throw new TypeError("Response.json: the value cannot be JSON");
      const headers = new Headers(init && init.headers);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
      return new Response(text, { ...init, headers });
    }
    get type() { return this.#type; }
    get url() { return this.#url; }
    get redirected() { return false; }
    get status() { return this.#status; }
    get ok() { return this.#status >= 200 && this.#status < 300; }
    get statusText() { return this.#statusText; }
    get headers() { return this.#headers; }
    clone() {
      if (!responseClonable(this)) throw new TypeError("Response.clone: the body has been read already or is locked");
      const [bytes, stream] = shareResponseBody(this);
      return answered(this.#status, this.#statusText, [...this.#headers], bytes, this.#url, this.#type, stream);
    }
    get [Symbol.toStringTag]() { return "Response"; }
  }
  // A response from the network (or a clone): any status, the URL it came from.
  const answered = (status, statusText, headers, bytes, url, type, stream = null) => {
    internal = { status, statusText, headers, bytes, url, type, stream };
    try { return new Response(); } finally { internal = null; }
  };
  define("Response", Response);

  define("fetch", async function fetch(input, init = undefined) {
    const request = new Request(input, init);
    request.signal.throwIfAborted();
    if (!/^https?:$/.test(new URL(request.url).protocol)) throw new TypeError(`fetch ${request.url}: only http(s) URLs can be fetched`);
    const flat = [];
    request.headers.forEach((v, k) => flat.push(k, v));
    const bytes = await wholeRequestBody(request);
    request.signal.throwIfAborted();
    const [status, headers, body] = transport(request.url, request.method, flat, bytes);
    const pairs = [];
    for (let i = 0; i < headers.length; i += 2) pairs.push([headers[i], headers[i + 1]]);
    return answered(status, "", pairs, request.method === "HEAD" ? null : body, request.url, "basic");
  });
})();
