// JSON.parse accepting lone surrogate escapes (`"\ud800"`), as ECMA-262 requires: the engine's
// parser refuses them, so when it fails on one, the text is parsed again with each lone
// surrogate escape replaced by a marker that cannot occur in it, and the markers are turned
// back into the code units in the result (strings and keys), before any reviver runs.
(() => {
  const parse = JSON.parse, random = __hv_random;
  const hex = (n) => n.toString(16).padStart(4, "0");
  const revive = (holder, key, reviver) => {
    const value = holder[key];
    if (value !== null && typeof value === "object") {
      for (const k of Array.isArray(value) ? value.keys() : Object.keys(value)) {
        const v = revive(value, String(k), reviver);
        if (v === undefined) delete value[k];
        else Object.defineProperty(value, k, { value: v, writable: true, enumerable: true, configurable: true });
      }
    }
    return reviver.call(holder, key, value);
  };
  function lenient(text, reviver) {
    const source = String(text);
    let marker;
    do { marker = `\ufdd0${[...random(8)].map((b) => b.toString(16).padStart(2, "0")).join("")}:`; } while (source.includes(marker));
    const escapes = [...source.matchAll(/\\(u[0-9a-fA-F]{4}|[^u])/g)];
    let out = "", at = 0, lone = false;
    for (let i = 0; i < escapes.length; i++) {
      const m = escapes[i];
      if (m[1][0] !== "u") continue;
      const unit = parseInt(m[1].slice(1), 16);
      if (unit >= 0xd800 && unit <= 0xdbff) {
        const next = escapes[i + 1];
        const low = next && next.index === m.index + 6 && next[1][0] === "u" ? parseInt(next[1].slice(1), 16) : -1;
        if (low >= 0xdc00 && low <= 0xdfff) { i++; continue; }
      } else if (!(unit >= 0xdc00 && unit <= 0xdfff)) continue;
      out += source.slice(at, m.index) + marker + hex(unit);
      at = m.index + 6;
      lone = true;
    }
    if (!lone) return null;
    const pattern = new RegExp(`${marker}([0-9a-f]{4})`, "g");
    const restore = (s) => s.replace(pattern, (_, h) => String.fromCharCode(parseInt(h, 16)));
    const walk = (v) => {
      if (typeof v === "string") return restore(v);
      if (v === null || typeof v !== "object") return v;
      if (Array.isArray(v)) return v.map(walk);
      const o = {};
      for (const k of Object.keys(v)) Object.defineProperty(o, restore(k), { value: walk(v[k]), writable: true, enumerable: true, configurable: true });
      return o;
    };
    const value = walk(parse(out + source.slice(at)));
    return { value: typeof reviver === "function" ? revive({ "": value }, "", reviver) : value };
  }
  const fixed = {
    parse(text, reviver) {
      try {
        return parse(text, reviver);
      } catch (e) {
        if (!(e instanceof SyntaxError)) throw e;
        const retried = lenient(text, reviver);
        if (retried === null) throw e;
        return retried.value;
      }
    },
  }.parse;
  Object.defineProperty(JSON, "parse", { value: fixed, writable: true, enumerable: false, configurable: true });
})();
