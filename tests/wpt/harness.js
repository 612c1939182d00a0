// A small stand-in for web-platform-tests' testharness.js, written here: enough of its API
// (test, async_test, promise_test, the assert_* functions the imported files use) to run
// WPT's `.any.js` files inside a JS agent. A file is evaluated as a classic script (indirect
// eval, so its declarations are globals, as WPT's own runner loads it), which registers its
// tests; `run()` then runs them one after another, and each outcome is
// {name, status: "PASS" | "FAIL" | "OPTIONAL", message}. One file per invocation: every
// invocation starts from the set-up's snapshot, so each file gets a fresh global, as in WPT.
//
// It installs its functions as globals (the `.any.js` files call them as globals), plus
// `self` and testharness.js's `GLOBAL` for the files that use them.

let current = "";
const completions = [];

class AssertionError extends Error {
  constructor(message) { super(message); this.name = "AssertionError"; }
}
const show = (v) => {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "bigint") return `${v}n`;
  if (Object.is(v, -0)) return "-0";
  if (typeof v === "symbol") return v.toString();
  if (Array.isArray(v)) return `[${v.map(show).join(", ")}]`;
  try { return String(v); } catch (_) { return Object.prototype.toString.call(v); }
};
const fail = (message, description) => {
  throw new AssertionError(description ? `${description}: ${message}` : message);
};
const same = (a, b) => (typeof a === "number" && typeof b === "number" ? Object.is(a, b) || (a === b && a !== 0) : a === b);

const api = {
  assert_true: (v, d) => { if (v !== true) fail(`expected true got ${show(v)}`, d); },
  assert_false: (v, d) => { if (v !== false) fail(`expected false got ${show(v)}`, d); },
  assert_equals: (a, e, d) => { if (!same(a, e)) fail(`expected ${show(e)} but got ${show(a)}`, d); },
  assert_not_equals: (a, e, d) => { if (same(a, e)) fail(`got disallowed value ${show(a)}`, d); },
  assert_in_array: (a, list, d) => { if (!list.includes(a)) fail(`value ${show(a)} not in array ${show(list)}`, d); },
  assert_array_equals: (a, e, d) => {
    if (a === null || typeof a !== "object" || typeof a.length !== "number") fail(`value is ${show(a)}, expected array`, d);
    if (a.length !== e.length) fail(`lengths differ, expected array ${show(e)} length ${e.length}, got ${show(a)} length ${a.length}`, d);
    for (let i = 0; i < e.length; i++) if (!same(a[i], e[i])) fail(`expected ${show(e)} got ${show(a)} (index ${i})`, d);
  },
  assert_typed_array_equals: (a, e, d) => {
    if (!ArrayBuffer.isView(a) || Object.getPrototypeOf(a) !== Object.getPrototypeOf(e)) fail(`expected a ${e && e.constructor && e.constructor.name} but got ${show(a)}`, d);
    if (a.length !== e.length) fail(`lengths differ, expected ${e.length} got ${a.length}`, d);
    for (let i = 0; i < e.length; i++) if (!same(a[i], e[i])) fail(`expected ${show(e[i])} got ${show(a[i])} (index ${i})`, d);
  },
  assert_object_equals: (a, e, d) => {
    const walk = (x, y, path) => {
      if (typeof y !== "object" || y === null) { if (!same(x, y)) fail(`property ${path} expected ${show(y)} got ${show(x)}`, d); return; }
      for (const k of Object.keys(y)) walk(x[k], y[k], `${path}.${k}`);
      for (const k of Object.keys(x)) if (!(k in y)) fail(`unexpected property ${path}.${k}`, d);
    };
    walk(a, e, "");
  },
  assert_greater_than: (a, b, d) => { if (!(a > b)) fail(`expected a number greater than ${b} but got ${show(a)}`, d); },
  assert_greater_than_equal: (a, b, d) => { if (!(a >= b)) fail(`expected a number ≥ ${b} but got ${show(a)}`, d); },
  assert_less_than: (a, b, d) => { if (!(a < b)) fail(`expected a number less than ${b} but got ${show(a)}`, d); },
  assert_less_than_equal: (a, b, d) => { if (!(a <= b)) fail(`expected a number ≤ ${b} but got ${show(a)}`, d); },
  assert_approx_equals: (a, e, eps, d) => { if (!(Math.abs(a - e) <= eps)) fail(`expected ${e} ± ${eps} but got ${show(a)}`, d); },
  assert_own_property: (o, p, d) => { if (!Object.prototype.hasOwnProperty.call(o, p)) fail(`expected property ${show(p)} missing`, d); },
  assert_not_own_property: (o, p, d) => { if (Object.prototype.hasOwnProperty.call(o, p)) fail(`unexpected property ${show(p)} found`, d); },
  assert_inherits: (o, p, d) => {
    if (Object.prototype.hasOwnProperty.call(o, p) || !(p in o)) fail(`property ${show(p)} is not inherited`, d);
  },
  assert_class_string: (o, name, d) => {
    const actual = Object.prototype.toString.call(o);
    if (actual !== `[object ${name}]`) fail(`expected [object ${name}] but got ${actual}`, d);
  },
  assert_regexp_match: (s, re, d) => { if (!re.test(s)) fail(`expected ${show(s)} to match ${re}`, d); },
  assert_unreached: (d) => fail("reached unreachable code", d),
  assert_throws_js: (Type, f, d) => {
    try { f(); } catch (e) {
      if (!(e instanceof Type) || e.constructor !== Type) fail(`expected ${Type.name} but got ${e && e.name}: ${e && e.message}`, d);
      return;
    }
    fail(`expected ${Type.name} to be thrown`, d);
  },
  assert_throws_dom: (name, f, d) => {
    const byCode = { 5: "InvalidCharacterError", 9: "NotSupportedError", 11: "InvalidStateError", 12: "SyntaxError", 20: "AbortError", 22: "QuotaExceededError", 23: "TimeoutError", 25: "DataCloneError" };
    const want = typeof name === "number" ? byCode[name] : name === "INVALID_CHARACTER_ERR" ? "InvalidCharacterError" : name;
    try { f(); } catch (e) {
      if (!(e instanceof DOMException) || e.name !== want) fail(`expected DOMException ${want} but got ${e && e.name}: ${e && e.message}`, d);
      return;
    }
    fail(`expected DOMException ${want} to be thrown`, d);
  },
  // testharness.js's older form, which some imported files still use: a DOMException's name
  // or legacy code, or an object whose `name` is the error's.
  assert_throws: (code, f, d) => {
    if (code !== null && typeof code === "object" && !(code instanceof DOMException)) {
      try { f(); } catch (e) {
        if (!e || e.name !== code.name) fail(`expected ${code.name} but got ${e && e.name}: ${e && e.message}`, d);
        return;
      }
      fail(`expected ${code.name} to be thrown`, d);
    }
    return api.assert_throws_dom(code instanceof DOMException ? code.name : code, f, d);
  },
  assert_throws_exactly: (value, f, d) => {
    try { f(); } catch (e) { if (!same(e, value)) fail(`expected ${show(value)} thrown but got ${show(e)}`, d); return; }
    fail(`expected ${show(value)} to be thrown`, d);
  },
  assert_implements: (v, d) => { if (!v) throw Object.assign(new AssertionError(d || "not implemented"), { optional: true }); },
  assert_implements_optional: (v, d) => { if (!v) throw Object.assign(new AssertionError(d || "optional feature"), { optional: true }); },
  promise_rejects_js: (t, Type, promise, d) => promise.then(
    () => fail(`expected a rejection with ${Type.name}`, d),
    (e) => { if (!(e instanceof Type) || e.constructor !== Type) fail(`expected ${Type.name} but got ${e && e.name}: ${e && e.message}`, d); }),
  promise_rejects_dom: (t, name, promise, d) => promise.then(
    () => fail(`expected a rejection with DOMException ${name}`, d),
    (e) => { if (!(e instanceof DOMException) || e.name !== name) fail(`expected DOMException ${name} but got ${e && e.name}: ${e && e.message}`, d); }),
  promise_rejects_exactly: (t, value, promise, d) => promise.then(
    () => fail(`expected a rejection with ${show(value)}`, d),
    (e) => { if (!same(e, value)) fail(`expected ${show(value)} but got ${show(e)}`, d); }),
  // testharness.js's older form, which some of the copies still call: `expected` an error
  // object (its name is compared) or a DOMException name.
  promise_rejects: (t, expected, promise, d) => promise.then(
    () => fail(`expected a rejection with ${typeof expected === "string" ? expected : expected.name}`, d),
    (e) => {
      const name = typeof expected === "string" ? expected : expected.name;
      if (!e || e.name !== name) fail(`expected ${name} but got ${e && e.name}: ${e && e.message}`, d);
    }),
  step_timeout: (f, ms, ...args) => setTimeout(f, ms, ...args),
  // Called once every test has run (run() below).
  add_completion_callback: (f) => { completions.push(f); },
  format_value: show,
  subsetTest: (f, ...args) => f(...args),
};

// A test object as testharness.js gives one to test bodies.
class Test {
  constructor(name) { this.name = name; this.cleanups = []; this.state = null; this.waiters = []; }
  // The first outcome counts: null for done, else the error.
  finish(e) {
    if (this.state) return;
    this.state = { error: e };
    for (const w of this.waiters) w();
  }
  settled() { return new Promise((resolve) => (this.state ? resolve() : this.waiters.push(resolve))); }
  step(f, thisArg, ...args) {
    try { return f.apply(thisArg === undefined ? this : thisArg, args); } catch (e) { this.finish(e); throw e; }
  }
  step_func(f, thisArg) {
    return (...args) => { try { return f.apply(thisArg === undefined ? this : thisArg, args); } catch (e) { this.finish(e); } };
  }
  step_func_done(f, thisArg) {
    return (...args) => {
      try { if (f) f.apply(thisArg === undefined ? this : thisArg, args); this.finish(null); } catch (e) { this.finish(e); }
    };
  }
  unreached_func(d) { return this.step_func(() => api.assert_unreached(d)); }
  step_timeout(f, ms, ...args) { return setTimeout(this.step_func(f), ms, ...args); }
  add_cleanup(f) { this.cleanups.push(f); }
  done() { this.finish(null); }
}

// As testharness.js: `test` and `async_test` bodies run when they are called (while the file
// is evaluated); `promise_test` bodies run later, one after another.
const outcomes = [];
const pending = [];
const promised = [];
const failed = (e) => (e && e.optional
  ? { status: "OPTIONAL", message: e.message }
  : { status: "FAIL", message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
const named = (name) => `${current}: ${name || "(unnamed)"}`;
api.test = (body, name) => {
  const t = new Test(named(name));
  let outcome;
  try {
    body.call(t, t);
    outcome = t.state && t.state.error ? failed(t.state.error) : { status: "PASS" };
  } catch (e) { outcome = failed(e); }
  for (const f of t.cleanups) { try { f(); } catch (_) { /* ignored, as testharness.js does */ } }
  outcomes.push({ name: t.name, ...outcome });
};
api.async_test = (body, name) => {
  if (typeof body !== "function") { name = body; body = null; }
  const t = new Test(named(name));
  const slot = { name: t.name, status: "PENDING" };
  outcomes.push(slot);
  pending.push([t, slot]);
  if (body) { try { body.call(t, t); } catch (e) { t.finish(e); } }
  return t;
};
api.promise_test = (body, name) => {
  const slot = { name: named(name), status: "PENDING" };
  outcomes.push(slot);
  promised.push([body, slot]);
};
let single = null;
// `setup({single_test: true})`: the file is one test, over when it calls `done()`.
let allowUncaught = false;
api.setup = (options) => {
  if (!options || typeof options !== "object") return;
  if (options.allow_uncaught_exception) allowUncaught = true;
  if (options.single_test) single = api.async_test("(single test)");
};
api.done = () => { if (single) single.done(); };
api.generate_tests = (f, cases) => {
  for (const [name, ...args] of cases) api.test(() => f(...args), name);
};
// An exception nothing caught fails the single test, or counts as a failure of its own.
addEventListener("error", (event) => {
  event.preventDefault();
  if (single && !single.state) single.finish(event.error);
  else if (!allowUncaught) outcomes.push({ name: named("(uncaught exception)"), ...failed(event.error) });
});

const TIMEOUT_MS = 5000;
const timeout = () => new Promise((_, reject) => setTimeout(() => reject(new AssertionError("timed out")), TIMEOUT_MS));

/// Evaluates `source` (the file `name`) as a classic script, which registers its tests (and
/// runs those that run at once).
export function load(name, source) {
  current = name;
  (0, eval)(source);
}

/// Records a file that could not be evaluated as one failure.
export function refused(name, e) {
  const { status, message } = failed(e);
  return [{ name: `${name}: (the file)`, status, message: message.toWellFormed() }];
}

/// Runs the promise tests in order, waits for the asynchronous ones, and answers every outcome
/// in the order the tests were declared.
export async function run() {
  for (const [body, slot] of promised) {
    const t = new Test(slot.name);
    try {
      await Promise.race([Promise.resolve().then(() => body.call(t, t)), timeout()]);
      Object.assign(slot, t.state && t.state.error ? failed(t.state.error) : { status: "PASS" });
    } catch (e) { Object.assign(slot, failed(e)); }
    for (const f of t.cleanups) { try { await f(); } catch (_) { /* ignored */ } }
  }
  for (const [t, slot] of pending) {
    try {
      await Promise.race([t.settled(), timeout()]);
      Object.assign(slot, t.state.error ? failed(t.state.error) : { status: "PASS" });
    } catch (e) { Object.assign(slot, failed(e)); }
    for (const f of t.cleanups) { try { await f(); } catch (_) { /* ignored */ } }
  }
  for (const f of completions) { try { f(); } catch (_) { /* ignored, as testharness.js does */ } }
  // Names and messages well-formed (some tests' names hold lone surrogates, which many JSON
  // readers refuse).
  return outcomes.map(({ name, status, message }) => (message === undefined
    ? { name: name.toWellFormed(), status }
    : { name: name.toWellFormed(), status, message: String(message).toWellFormed() }));
}

Object.assign(globalThis, api);
if (typeof globalThis.self === "undefined") globalThis.self = globalThis;
globalThis.GLOBAL = { isWindow: () => false, isWorker: () => false, isShadowRealm: () => false };
