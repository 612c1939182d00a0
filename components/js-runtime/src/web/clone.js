// structuredClone (HTML's structured serialisation, in one step): primitives, wrapper objects,
// Date, RegExp, ArrayBuffer (resizable too) and its views, Map, Set, Error types, Blob, File,
// DOMException, arrays and plain objects,
// with shared references and cycles kept; anything else (functions, symbols, WeakMap,
// Promise, class instances' private state) is a DataCloneError. `transfer` moves
// ArrayBuffers (the originals are detached).
(() => {
  const define = (name, value) => Object.defineProperty(globalThis, name,
    { value, writable: true, configurable: true, enumerable: false });
  // The interfaces as they were at set-up (an agent deleting a global does not break cloning).
  const BlobClass = Blob, FileClass = File, DOMExceptionClass = DOMException;
  const cannot = (what) => new DOMException(`${what} could not be cloned`, "DataCloneError");
  const tag = (v) => Object.prototype.toString.call(v).slice(8, -1);
  const errors = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };
  const views = { Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
    Float32Array, Float64Array, BigInt64Array, BigUint64Array, DataView };
  if (typeof Float16Array !== "undefined") views.Float16Array = Float16Array;

  function clone(value, memory) {
    if (typeof value === "symbol") throw cannot("Symbol()");
    if (typeof value === "function") throw cannot(`function ${value.name || "(anonymous)"}`);
    if (value === null || typeof value !== "object") return value;
    if (memory.has(value)) return memory.get(value);
    const remember = (copy) => { memory.set(value, copy); return copy; };
    const t = tag(value);
    switch (t) {
      case "Boolean": return remember(Object(Boolean.prototype.valueOf.call(value)));
      case "Number": return remember(Object(Number.prototype.valueOf.call(value)));
      case "String": return remember(Object(String.prototype.valueOf.call(value)));
      case "BigInt": return remember(Object(BigInt.prototype.valueOf.call(value)));
      case "Date": return remember(new Date(Date.prototype.getTime.call(value)));
      // From the object itself, so that its original source text is kept as it was written.
      case "RegExp": return remember(new RegExp(value, value.flags));
      case "ArrayBuffer": {
        if (!value.resizable) return remember(value.slice(0));
        const copy = new ArrayBuffer(value.byteLength, { maxByteLength: value.maxByteLength });
        new Uint8Array(copy).set(new Uint8Array(value));
        return remember(copy);
      }
      case "File": return remember(new FileClass([value], value.name, { type: value.type, lastModified: value.lastModified }));
      case "Blob": return remember(new BlobClass([value], { type: value.type }));
      case "Map": {
        const copy = remember(new Map());
        for (const [k, v] of value) copy.set(clone(k, memory), clone(v, memory));
        return copy;
      }
      case "Set": {
        const copy = remember(new Set());
        for (const v of value) copy.add(clone(v, memory));
        return copy;
      }
      case "Array": {
        const copy = remember(new Array(value.length));
        for (const k of Object.keys(value)) copy[k] = clone(value[k], memory);
        return copy;
      }
      case "Error": {
        const Kind = errors[value.name] || Error;
        const copy = remember(Object.create(Kind.prototype));
        if (Object.hasOwn(value, "message")) {
          Object.defineProperty(copy, "message", { value: String(value.message), writable: true, configurable: true });
        }
        if (Object.hasOwn(value, "cause")) {
          Object.defineProperty(copy, "cause", { value: clone(value.cause, memory), writable: true, configurable: true });
        }
        if (typeof value.stack === "string") {
          Object.defineProperty(copy, "stack", { value: value.stack, writable: true, configurable: true });
        }
        return copy;
      }
      case "Object": {
        if (ArrayBuffer.isView(value)) break;
        if (value instanceof DOMExceptionClass) {
          return remember(new DOMExceptionClass(value.message, value.name));
        }
        // A class instance too: its own enumerable properties, as a plain object (HTML's rule).
        const copy = remember({});
        for (const k of Object.keys(value)) copy[k] = clone(value[k], memory);
        return copy;
      }
      default: break;
    }
    if (ArrayBuffer.isView(value) && views[t]) {
      const buffer = clone(value.buffer, memory);
      const View = views[t];
      const length = t === "DataView" ? value.byteLength : value.length;
      return remember(new View(buffer, value.byteOffset, length));
    }
    throw cannot(t === "Object" ? "#<Object>" : `#<${t}>`);
  }

  define("structuredClone", function structuredClone(value, options = {}) {
    if (arguments.length === 0) throw new TypeError("structuredClone: 1 argument required");
    const transfer = (options && options.transfer) || [];
    const memory = new Map();
    const moved = [];
    for (const buffer of transfer) {
      if (tag(buffer) !== "ArrayBuffer") throw cannot("a value that is not an ArrayBuffer (in transfer)");
      if (moved.includes(buffer)) throw cannot("an ArrayBuffer listed twice in transfer");
      moved.push(buffer);
    }
    // A transferred buffer's copy takes its contents; the original is detached.
    for (const buffer of moved) memory.set(buffer, typeof buffer.transfer === "function" ? buffer.transfer() : buffer.slice(0));
    return clone(value, memory);
  });
})();
