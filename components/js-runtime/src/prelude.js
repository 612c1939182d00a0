// The runtime's globals, over the natives `__hv_*` (src/globals.rs), which this script captures
// and the runtime then deletes from the global object.
(() => {
  const write = __hv_write, random = __hv_random, decodeUtf8 = __hv_utf8_decode, kv = __hv_kv,
        kvUpdate = __hv_kv_update, configGet = __hv_config;
  const decode = (bytes) => decodeUtf8(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes), false);
  const resetOrigin = __hv_reset_origin;
  // console, with the WHATWG Console Standard's format specifiers (%s %d %i %f %o %O %c %%)
  // and values shown as Node and Deno show them (strings bare at the top level, quoted inside).
  const inspect = (v, depth = 0, seen = new Set()) => {
    if (typeof v === "string") return depth === 0 ? v : JSON.stringify(v);
    if (typeof v === "bigint") return `${v}n`;
    if (typeof v === "symbol" || typeof v === "undefined" || typeof v === "number" || typeof v === "boolean") return String(v);
    if (typeof v === "function") return `[Function: ${v.name || "(anonymous)"}]`;
    if (v === null) return "null";
    if (seen.has(v)) return "[Circular]";
    if (v instanceof Error || v instanceof DOMException) return v.stack && depth === 0 ? String(v.stack).startsWith(v.name) ? v.stack : `${v.name}: ${v.message}\n${v.stack}` : `${v.name}: ${v.message}`;
    if (v instanceof Date) return isNaN(v) ? "Invalid Date" : v.toISOString();
    if (v instanceof RegExp) return String(v);
    if (depth > 2) return Array.isArray(v) ? "[Array]" : "[Object]";
    seen.add(v);
    try {
      const inner = (x) => inspect(x, depth + 1, seen);
      // At most 100 items of a list, as Node and Deno show them.
      const items = (length, show) => {
        const shown = [];
        for (let i = 0; i < Math.min(length, 100); i++) shown.push(show(i));
        if (length > 100) shown.push(`... ${length - 100} more items`);
        return shown.join(", ");
      };
      if (Array.isArray(v)) return v.length ? `[ ${items(v.length, (i) => inner(v[i]))} ]` : "[]";
      if (v instanceof Map) { const e = [...v]; return `Map(${v.size}) {${v.size ? ` ${items(e.length, (i) => `${inner(e[i][0])} => ${inner(e[i][1])}`)} ` : ""}}`; }
      if (v instanceof Set) { const e = [...v]; return `Set(${v.size}) {${v.size ? ` ${items(e.length, (i) => inner(e[i]))} ` : ""}}`; }
      if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return `${v.constructor.name}(${v.length}) [${v.length ? ` ${items(v.length, (i) => inner(v[i]))} ` : ""}]`;
      if (v instanceof URL) return `URL { href: ${JSON.stringify(v.href)} }`;
      const keys = Object.keys(v);
      const name = v.constructor && v.constructor !== Object && v.constructor.name ? `${v.constructor.name} ` : "";
      const key = (k) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k));
      return keys.length ? `${name}{ ${keys.map((k) => `${key(k)}: ${inner(v[k])}`).join(", ")} }` : `${name}{}`;
    } finally { seen.delete(v); }
  };
  const format = (args) => {
    if (!args.length) return "";
    let out = [];
    let rest = args;
    if (typeof args[0] === "string" && args[0].includes("%")) {
      let i = 1;
      const first = args[0].replace(/%([sdifoOjc%])/g, (m, k) => {
        if (k === "%") return "%";
        if (i >= args.length) return m;
        const a = args[i++];
        switch (k) {
          case "s": return typeof a === "string" ? a : inspect(a, 1);
          case "d": case "i": return typeof a === "bigint" ? `${a}n` : typeof a === "symbol" ? "NaN" : String(k === "i" ? Math.trunc(Number(a)) : Number(a));
          case "f": return typeof a === "symbol" ? "NaN" : String(parseFloat(a));
          case "j": try { return JSON.stringify(a); } catch (_) { return "[Circular]"; }
          case "c": return "";
          default: return inspect(a, 1);
        }
      });
      out.push(first);
      rest = args.slice(i);
    } else {
      out.push(inspect(args[0]));
      rest = args.slice(1);
    }
    for (const a of rest) out.push(inspect(a));
    return out.join(" ");
  };
  let indent = "";
  const print = (stream) => (...a) => write(stream, indent ? format(a).replace(/^/gm, indent) : format(a));
  const counts = new Map(), timers = new Map();
  // The Console Standard's labels: converted to strings (a throwing toString throws).
  const labelOf = (label) => (label === undefined ? "default" : String(label));
  const methods = {
    log: print(1), info: print(1), debug: print(1), warn: print(2), error: print(2),
    trace: (...a) => print(2)("Trace:", ...a),
    dir: (v) => write(1, indent + inspect(v, 1)),
    dirxml: print(1),
    table: (data) => write(1, indent + inspect(data, 1)),
    assert: (ok, ...a) => { if (!ok) print(2)("Assertion failed" + (a.length ? ":" : ""), ...a); },
    count: (label) => { label = labelOf(label); const n = (counts.get(label) || 0) + 1; counts.set(label, n); write(1, `${indent}${label}: ${n}`); },
    countReset: (label) => { counts.set(labelOf(label), 0); },
    group: (...a) => { if (a.length) print(1)(...a); indent += "  "; },
    groupCollapsed: (...a) => { if (a.length) print(1)(...a); indent += "  "; },
    groupEnd: () => { indent = indent.slice(2); },
    time: (label) => { timers.set(labelOf(label), performance.now()); },
    timeLog: (label, ...a) => { label = labelOf(label); const t = timers.get(label); if (t !== undefined) print(1)(`${label}: ${(performance.now() - t).toFixed(3)}ms`, ...a); },
    timeEnd: (label) => { label = labelOf(label); const t = timers.get(label); if (t !== undefined) { timers.delete(label); write(1, `${indent}${label}: ${(performance.now() - t).toFixed(3)}ms`); } },
  };
  // A WebIDL namespace object: its [[Prototype]] an empty object over Object.prototype, its
  // operations enumerable, @@toStringTag "console", the global property not enumerable.
  const console = Object.create(Object.create(Object.prototype));
  for (const [name, f] of Object.entries(methods)) {
    Object.defineProperty(console, name, { value: f, writable: true, enumerable: true, configurable: true });
  }
  Object.defineProperty(console, Symbol.toStringTag, { value: "console", configurable: true });
  Object.defineProperty(globalThis, "console", { value: console, writable: true, configurable: true, enumerable: false });
  // self (the global object, as on Window and WorkerGlobalScope) and navigator.userAgent.
  Object.defineProperty(globalThis, "self", {
    get() { return globalThis; }, set(v) { Object.defineProperty(globalThis, "self", { value: v, writable: true, configurable: true }); },
    enumerable: false, configurable: true,
  });
  class Navigator {
    constructor() { if (navigatorMade) throw new TypeError("Illegal constructor"); }
    get userAgent() { return "WASM-Hypervisor"; }
    get [Symbol.toStringTag]() { return "Navigator"; }
  }
  let navigatorMade = false;
  const navigator = new Navigator();
  navigatorMade = true;
  Object.defineProperty(globalThis, "Navigator", { value: Navigator, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(globalThis, "navigator", { value: navigator, writable: true, configurable: true, enumerable: false });
  // Fresh randomness in every instance (the engine's own generator would be the snapshot's).
  Math.random = () => {
    const b = random(7);
    let x = 0;
    for (let i = 0; i < 7; i++) x = x * 256 + b[i];
    return (x % 9007199254740992) / 9007199254740992;
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
    resetOrigin();
    env = new Map();
    if (vars && typeof vars === "object") Object.keys(vars).forEach((k) => env.set(k, String(vars[k])));
  };
})();
