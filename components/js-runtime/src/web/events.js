// DOMException, Event, CustomEvent, EventTarget, AbortController, AbortSignal, queueMicrotask,
// reportError and performance (WinterTC's Minimum Common API; DOM and WebIDL standards).
(() => {
  const now = __hv_now, write = __hv_write;
  const define = (name, value) => Object.defineProperty(globalThis, name,
    { value, writable: true, configurable: true, enumerable: false });

  // WebIDL's DOMException: a constructor whose prototype inherits from Error.prototype (the
  // constructor itself from Function.prototype), `name`, `message` and `code` getters, the
  // legacy code constants, and Error.prototype's toString.
  const names = {
    IndexSizeError: 1, HierarchyRequestError: 3, WrongDocumentError: 4, InvalidCharacterError: 5,
    NoModificationAllowedError: 7, NotFoundError: 8, NotSupportedError: 9, InUseAttributeError: 10,
    InvalidStateError: 11, SyntaxError: 12, InvalidModificationError: 13, NamespaceError: 14,
    InvalidAccessError: 15, TypeMismatchError: 17, SecurityError: 18, NetworkError: 19,
    AbortError: 20, URLMismatchError: 21, QuotaExceededError: 22, TimeoutError: 23,
    InvalidNodeTypeError: 24, DataCloneError: 25,
  };
  const constants = ["INDEX_SIZE_ERR", "DOMSTRING_SIZE_ERR", "HIERARCHY_REQUEST_ERR", "WRONG_DOCUMENT_ERR",
    "INVALID_CHARACTER_ERR", "NO_DATA_ALLOWED_ERR", "NO_MODIFICATION_ALLOWED_ERR", "NOT_FOUND_ERR",
    "NOT_SUPPORTED_ERR", "INUSE_ATTRIBUTE_ERR", "INVALID_STATE_ERR", "SYNTAX_ERR", "INVALID_MODIFICATION_ERR",
    "NAMESPACE_ERR", "INVALID_ACCESS_ERR", "VALIDATION_ERR", "TYPE_MISMATCH_ERR", "SECURITY_ERR",
    "NETWORK_ERR", "ABORT_ERR", "URL_MISMATCH_ERR", "QUOTA_EXCEEDED_ERR", "TIMEOUT_ERR",
    "INVALID_NODE_TYPE_ERR", "DATA_CLONE_ERR"];
  const state = new WeakMap();
  const brand = (e, what) => {
    const s = state.get(e);
    if (!s) throw new TypeError(`DOMException.prototype.${what} called on an object that is not a DOMException`);
    return s;
  };
  function DOMException(message = undefined, name = undefined) {
    if (!new.target) throw new TypeError("DOMException: use new");
    const e = Reflect.construct(Error, [], new.target);
    state.set(e, {
      message: message === undefined ? "" : String(message),
      name: name === undefined ? "Error" : String(name),
    });
    return e;
  }
  const proto = Object.create(Error.prototype, {
    constructor: { value: DOMException, writable: true, configurable: true },
    name: { get() { return brand(this, "name").name; }, enumerable: true, configurable: true },
    message: { get() { return brand(this, "message").message; }, enumerable: true, configurable: true },
    code: { get() { return names[brand(this, "code").name] || 0; }, enumerable: true, configurable: true },
    [Symbol.toStringTag]: { value: "DOMException", configurable: true },
  });
  Object.defineProperty(DOMException, "prototype", { value: proto, writable: false });
  constants.forEach((constant, i) => {
    Object.defineProperty(DOMException, constant, { value: i + 1, enumerable: true });
    Object.defineProperty(proto, constant, { value: i + 1, enumerable: true });
  });
  define("DOMException", DOMException);

  const NONE = 0, AT_TARGET = 2;
  // The dispatch steps' access to an event's internal state (set once, below; not reachable
  // from agents' code).
  let internals, trustedGetter;
  class Event {
    #type; #bubbles; #cancelable; #composed; #canceled = false; #stop = false; #stopNow = false;
    #target = null; #current = null; #phase = NONE; #passive = false; #dispatching = false;
    #trusted = false; #time = now();
    constructor(type, init = {}) {
      if (arguments.length === 0) throw new TypeError("Event: the type is required");
      this.#type = String(type);
      this.#bubbles = !!(init && init.bubbles);
      this.#cancelable = !!(init && init.cancelable);
      this.#composed = !!(init && init.composed);
      // [LegacyUnforgeable]: an own accessor, the same getter on every event.
      Object.defineProperty(this, "isTrusted", { get: trustedGetter, enumerable: true, configurable: false });
    }
    initEvent(type, bubbles = false, cancelable = false) {
      if (this.#dispatching) return;
      this.#type = String(type); this.#bubbles = !!bubbles; this.#cancelable = !!cancelable;
      this.#canceled = false; this.#stop = false; this.#stopNow = false; this.#target = null;
    }
    get type() { return this.#type; }
    get bubbles() { return this.#bubbles; }
    get cancelable() { return this.#cancelable; }
    get composed() { return this.#composed; }
    get defaultPrevented() { return this.#canceled; }
    get returnValue() { return !this.#canceled; }
    set returnValue(v) { if (!v) this.preventDefault(); }
    get target() { return this.#target; }
    get srcElement() { return this.#target; }
    get currentTarget() { return this.#current; }
    get eventPhase() { return this.#phase; }
    get timeStamp() { return this.#time; }
    get cancelBubble() { return this.#stop; }
    set cancelBubble(v) { if (v) this.#stop = true; }
    composedPath() { return this.#dispatching && this.#target ? [this.#target] : []; }
    preventDefault() { if (this.#cancelable && !this.#passive) this.#canceled = true; }
    stopPropagation() { this.#stop = true; }
    stopImmediatePropagation() { this.#stop = true; this.#stopNow = true; }
    static {
      trustedGetter = { get isTrusted() { return this.#trusted; } };
      trustedGetter = Object.getOwnPropertyDescriptor(trustedGetter, "isTrusted").get;
      internals = {
        begin(e, target) {
          if (e.#dispatching) throw new DOMException("the event is being dispatched already", "InvalidStateError");
          e.#dispatching = true; e.#target = target; e.#current = target; e.#phase = AT_TARGET;
        },
        end(e) { e.#dispatching = false; e.#current = null; e.#phase = NONE; e.#stop = false; e.#stopNow = false; },
        stopped(e) { return e.#stop; },
        stoppedNow(e) { return e.#stopNow; },
        passive(e, p) { e.#passive = p; },
        trusted(e) { e.#trusted = true; return e; },
      };
    }
  }
  for (const [k, v] of Object.entries({ NONE: 0, CAPTURING_PHASE: 1, AT_TARGET: 2, BUBBLING_PHASE: 3 })) {
    Object.defineProperty(Event, k, { value: v, enumerable: true });
    Object.defineProperty(Event.prototype, k, { value: v, enumerable: true });
  }
  class CustomEvent extends Event {
    #detail;
    constructor(type, init = {}) { super(type, init); this.#detail = init && init.detail !== undefined ? init.detail : null; }
    get detail() { return this.#detail; }
  }
  class ErrorEvent extends Event {
    #init;
    constructor(type, init = {}) { super(type, init); this.#init = init || {}; }
    get message() { return this.#init.message === undefined ? "" : String(this.#init.message); }
    get filename() { return this.#init.filename === undefined ? "" : String(this.#init.filename); }
    get lineno() { return this.#init.lineno >>> 0; }
    get colno() { return this.#init.colno >>> 0; }
    get error() { return this.#init.error; }
  }
  class PromiseRejectionEvent extends Event {
    #init;
    constructor(type, init) { super(type, init); this.#init = init || {}; }
    get promise() { return this.#init.promise; }
    get reason() { return this.#init.reason; }
  }
  define("Event", Event);
  define("CustomEvent", CustomEvent);
  define("ErrorEvent", ErrorEvent);
  define("PromiseRejectionEvent", PromiseRejectionEvent);

  const flatten = (options) => (typeof options === "boolean" ? { capture: options } : (options || {}));
  const describe = (e) => {
    try {
      return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    } catch (_) { return Object.prototype.toString.call(e); }
  };
  // HTML's "report an exception": an `error` event on the global object; unless a listener
  // cancels it, the exception goes to standard error as `Uncaught …`.
  let globalTarget = null;
  const report = (e) => {
    const event = internals.trusted(new ErrorEvent("error", { cancelable: true, error: e, message: describe(e) }));
    if (globalTarget === null || globalTarget.dispatchEvent(event)) write(2, `Uncaught ${describe(e)}`);
  };
  class EventTarget {
    #listeners = new Map();
    addEventListener(type, callback, options) {
      if (callback === null || callback === undefined) return;
      const o = flatten(options);
      const capture = !!o.capture;
      if (o.signal && o.signal.aborted) return;
      const list = this.#listeners.get(String(type)) || [];
      if (list.some((l) => l.callback === callback && l.capture === capture)) return;
      const entry = { callback, capture, once: !!o.once, passive: !!o.passive, removed: false };
      list.push(entry);
      this.#listeners.set(String(type), list);
      if (o.signal) o.signal.addEventListener("abort", () => this.removeEventListener(type, callback, { capture }));
    }
    removeEventListener(type, callback, options) {
      const capture = !!flatten(options).capture;
      const list = this.#listeners.get(String(type));
      if (!list) return;
      const i = list.findIndex((l) => l.callback === callback && l.capture === capture);
      if (i >= 0) { list[i].removed = true; list.splice(i, 1); }
    }
    dispatchEvent(event) {
      if (!(event instanceof Event)) throw new TypeError("dispatchEvent: an Event is needed");
      internals.begin(event, this);
      try {
        if (internals.stopped(event)) return !event.defaultPrevented;
        for (const l of (this.#listeners.get(event.type) || []).slice()) {
          if (l.removed) continue;
          if (l.once) this.removeEventListener(event.type, l.callback, { capture: l.capture });
          internals.passive(event, l.passive);
          try {
            if (typeof l.callback === "function") l.callback.call(this, event);
            else if (l.callback && typeof l.callback.handleEvent === "function") l.callback.handleEvent(event);
          } catch (e) {
            if (event.type === "error" && this === globalTarget) write(2, `Uncaught ${describe(e)}`);
            else report(e);
          }
          internals.passive(event, false);
          if (internals.stoppedNow(event)) break;
        }
      } finally { internals.end(event); }
      return !event.defaultPrevented;
    }
  }
  define("EventTarget", EventTarget);
  // An event handler attribute (`onabort`): a listener added when first set, calling whatever
  // the attribute holds then (HTML's event handler processing).
  const handlerAttribute = (Class, name) => {
    const slot = new WeakMap();
    Object.defineProperty(Class.prototype, `on${name}`, {
      get() { const s = slot.get(this); return s ? s.value : null; },
      set(f) {
        let s = slot.get(this);
        if (!s) {
          s = { value: null };
          slot.set(this, s);
          this.addEventListener(name, function (e) {
            if (typeof s.value === "function" && s.value.call(this, e) === false) e.preventDefault();
          });
        }
        s.value = typeof f === "function" || (f !== null && typeof f === "object") ? f : null;
      },
      enumerable: true, configurable: true,
    });
  };

  // AbortSignal: `abort`, `timeout` (a TimeoutError DOMException after the delay) and `any`.
  let signalling = false;
  let signals;
  class AbortSignal extends EventTarget {
    #aborted = false; #reason = undefined; #dependents = new Set(); #sources = new Set(); #dependent = false;
    constructor() {
      if (!signalling) throw new TypeError("Illegal constructor: use new AbortController().signal");
      super();
    }
    get aborted() { return this.#aborted; }
    get reason() { return this.#reason; }
    throwIfAborted() { if (this.#aborted) throw this.#reason; }
    static abort(reason) { const s = make(); signals.settle(s, reason); return s; }
    static timeout(ms) {
      const delay = Number(ms);
      if (!Number.isFinite(delay) || delay < 0) throw new TypeError("AbortSignal.timeout: a delay in ms ≥ 0 is needed");
      const s = make();
      setTimeout(() => signals.abort(s, new DOMException("signal timed out", "TimeoutError")), delay);
      return s;
    }
    static any(list) {
      const s = make();
      const sources = [...list];
      for (const source of sources) {
        if (!(source instanceof AbortSignal)) throw new TypeError("AbortSignal.any: AbortSignals are needed");
        if (source.aborted) { signals.settle(s, source.reason); return s; }
      }
      s.#dependent = true;
      for (const source of sources) {
        // A dependent signal follows the signals its sources follow (DOM's "create a dependent
        // abort signal"), so chains stay one level deep.
        const roots = source.#dependent ? [...source.#sources] : [source];
        for (const root of roots) { s.#sources.add(root); root.#dependents.add(s); }
      }
      return s;
    }
    static {
      signals = {
        // Marks the signal aborted, without an event (an already aborted signal).
        settle(signal, reason) {
          signal.#aborted = true;
          signal.#reason = reason === undefined ? new DOMException("signal is aborted without reason", "AbortError") : reason;
        },
        // DOM's "signal abort": the signal and its dependents are marked first, then the events
        // fire, the signal's own before its dependents'.
        abort(signal, reason) {
          if (signal.#aborted) return;
          signals.settle(signal, reason);
          const dependents = [];
          for (const d of signal.#dependents) {
            if (!d.#aborted) { signals.settle(d, signal.#reason); dependents.push(d); }
          }
          signal.dispatchEvent(internals.trusted(new Event("abort")));
          for (const d of dependents) d.dispatchEvent(internals.trusted(new Event("abort")));
        },
      };
    }
  }
  handlerAttribute(AbortSignal, "abort");
  const make = () => { signalling = true; try { return new AbortSignal(); } finally { signalling = false; } };
  class AbortController {
    #signal = make();
    get signal() { return this.#signal; }
    abort(reason) { signals.abort(this.#signal, reason); }
  }
  define("AbortSignal", AbortSignal);
  define("AbortController", AbortController);

  // The global object as an EventTarget (`addEventListener("error", …)` sees exceptions nothing
  // caught, reportError's among them).
  globalTarget = new EventTarget();
  for (const method of ["addEventListener", "removeEventListener", "dispatchEvent"]) {
    const f = { [method](...args) { return globalTarget[method](...args); } }[method];
    define(method, f);
  }
  define("reportError", function reportError(e) {
    if (arguments.length === 0) throw new TypeError("reportError: 1 argument required");
    report(e);
  });
  define("queueMicrotask", function queueMicrotask(callback) {
    if (typeof callback !== "function") throw new TypeError("queueMicrotask: a function is needed");
    Promise.resolve().then(() => { try { callback(); } catch (e) { report(e); } });
  });
  // For the runtime: an exception a timer's callback threw.
  globalThis.__hv_report = report;

  // performance: ms since the time origin (the invocation's start), timeOrigin in Unix ms.
  let origin = Date.now();
  class Performance extends EventTarget {
    now() { return now(); }
    get timeOrigin() { return origin; }
    toJSON() { return { timeOrigin: origin }; }
  }
  define("Performance", Performance);
  define("performance", new Performance());
  globalThis.__hv_reset_origin = () => { origin = Date.now(); };
})();
