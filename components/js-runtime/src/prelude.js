// The runtime's globals, over the natives `__hv_*` (src/globals.rs), which this script captures
// and the runtime then deletes from the global object.
(() => {
  const write = __hv_write, random = __hv_random, encode = __hv_utf8_encode,
        decode = __hv_utf8_decode, transport = __hv_fetch, kv = __hv_kv,
        kvUpdate = __hv_kv_update, configGet = __hv_config;
  const show = (args) => args.map((a) => {
    if (typeof a === "string") return a;
    if (a instanceof Error) return `${a.name}: ${a.message}`;
    try { const j = JSON.stringify(a); return j === undefined ? String(a) : j; } catch (_) { return String(a); }
  }).join(" ");
  globalThis.console = {
    log: (...a) => write(1, show(a)),
    info: (...a) => write(1, show(a)),
    debug: (...a) => write(1, show(a)),
    warn: (...a) => write(2, show(a)),
    error: (...a) => write(2, show(a)),
  };
  globalThis.crypto = {
    getRandomValues(array) {
      if (!ArrayBuffer.isView(array) || array instanceof Float32Array || array instanceof Float64Array) {
        throw new TypeError("getRandomValues: an integer typed array is needed");
      }
      const bytes = random(array.byteLength);
      new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(bytes);
      return array;
    },
  };
  // Fresh randomness in every instance (the engine's own generator would be the snapshot's).
  Math.random = () => {
    const b = random(7);
    let x = 0;
    for (let i = 0; i < 7; i++) x = x * 256 + b[i];
    return (x % 9007199254740992) / 9007199254740992;
  };
  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(text = "") { return new Uint8Array(encode(String(text))); }
  }
  class TextDecoder {
    constructor(label = "utf-8") {
      if (!/^utf-?8$/i.test(label)) throw new RangeError(`TextDecoder: only utf-8, not ${label}`);
    }
    get encoding() { return "utf-8"; }
    decode(bytes) {
      if (bytes === undefined) return "";
      const view = bytes instanceof ArrayBuffer ? new Uint8Array(bytes)
        : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      return decode(view);
    }
  }
  globalThis.TextEncoder = TextEncoder;
  globalThis.TextDecoder = TextDecoder;
  class Headers {
    constructor(init) {
      this._map = new Map();
      if (init instanceof Headers) init.forEach((v, k) => this.set(k, v));
      else if (Array.isArray(init)) init.forEach(([k, v]) => this.append(k, v));
      else if (init) Object.keys(init).forEach((k) => this.set(k, init[k]));
    }
    append(k, v) { const key = String(k).toLowerCase(); const old = this._map.get(key); this._map.set(key, old === undefined ? String(v) : `${old}, ${v}`); }
    set(k, v) { this._map.set(String(k).toLowerCase(), String(v)); }
    get(k) { const v = this._map.get(String(k).toLowerCase()); return v === undefined ? null : v; }
    has(k) { return this._map.has(String(k).toLowerCase()); }
    delete(k) { this._map.delete(String(k).toLowerCase()); }
    forEach(f) { this._map.forEach((v, k) => f(v, k, this)); }
    entries() { return this._map.entries(); }
    [Symbol.iterator]() { return this._map.entries(); }
  }
  class Response {
    constructor(body, init = {}) {
      this._body = body == null ? "" : String(body);
      this.status = init.status === undefined ? 200 : init.status;
      this.statusText = init.statusText || "";
      this.headers = new Headers(init.headers);
      this.url = init.url || "";
      this.redirected = false;
    }
    get ok() { return this.status >= 200 && this.status < 300; }
    async text() { return this._body; }
    async json() { return JSON.parse(this._body); }
  }
  globalThis.Headers = Headers;
  globalThis.Response = Response;
  // fetch over wasi:http: the request leaves the host only as far as the agent's grants allow
  // (a refusal rejects with a TypeError naming the wasi:http error). Redirects are not followed.
  globalThis.fetch = async (input, init = {}) => {
    const url = typeof input === "string" ? input : String(input && input.url || input);
    const method = String(init.method || "GET").toUpperCase();
    const headers = [];
    new Headers(init.headers).forEach((v, k) => headers.push([k, v]));
    const body = init.body === undefined || init.body === null ? null
      : (init.body instanceof Uint8Array ? decode(init.body) : String(init.body));
    const answer = JSON.parse(transport(url, method, JSON.stringify(headers), body));
    return new Response(answer.body, { status: answer.status, headers: answer.headers, url });
  };
  // The agent's own state (wasi:keyvalue; buckets private to the agent, sealed, within the
  // host's quotas) and its owner's configuration (wasi:config). Values are text (UTF-8) or
  // bytes (Uint8Array); a failure throws an Error whose message carries the host's reason
  // (`state_quota_exceeded: …` for a quota).
  const bytes = (v) => (typeof v === "string" ? v : new Uint8Array(v));
  class Bucket {
    constructor(name) { this.name = String(name); }
    getBytes(key) { const v = kv("get", this.name, String(key)); return v === null ? null : new Uint8Array(v); }
    get(key) { const v = kv("get", this.name, String(key)); return v === null ? null : decode(v); }
    getJSON(key) { const v = this.get(key); return v === null ? null : JSON.parse(v); }
    set(key, value) { kv("set", this.name, String(key), bytes(value)); }
    setJSON(key, value) { this.set(key, JSON.stringify(value)); }
    delete(key) { kv("delete", this.name, String(key)); }
    exists(key) { return kv("exists", this.name, String(key)); }
    increment(key, delta = 1) { return kv("incr", this.name, String(key), Number(delta)); }
    keys() { return kv("keys", this.name, ""); }
    update(key, change) {
      return decode(kvUpdate(this.name, String(key), (old) => bytes(change(old === null ? null : decode(old)))));
    }
  }
  globalThis.agentState = { bucket: (name = "default") => new Bucket(name) };
  globalThis.agentConfig = {
    get: (name, fallback = null) => { const v = configGet(String(name)); return v === null ? fallback : v; },
    all: () => Object.fromEntries(configGet()),
  };
  // Deno's `Deno.env`, as Assist TEE's runner fills it: the invocation's `event.env` (strings),
  // read-only here (`set` and `delete` change this invocation's view only). Set by the runtime
  // before each call through the function this script evaluates to.
  let env = new Map();
  globalThis.Deno = {
    env: {
      get: (k) => env.get(String(k)),
      has: (k) => env.has(String(k)),
      set: (k, v) => { env.set(String(k), String(v)); },
      delete: (k) => { env.delete(String(k)); },
      toObject: () => Object.fromEntries(env),
    },
  };
  return (vars) => {
    env = new Map();
    if (vars && typeof vars === "object") Object.keys(vars).forEach((k) => env.set(k, String(vars[k])));
  };
})();
