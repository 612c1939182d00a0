// URLPattern (URL Pattern Standard), over the `urlpattern` crate's pattern parser and input
// processing (src/pattern.rs). The crate compiles a pattern into one regular expression per URL
// component; they run here, on the engine's own RegExp.
(() => {
  const parse = __hv_urlpattern_parse, matchInput = __hv_urlpattern_input;
  const exec = RegExp.prototype.exec, parseJson = JSON.parse, stringify = JSON.stringify,
        defineProperty = Object.defineProperty;
  const COMPONENTS = ["protocol", "username", "password", "hostname", "port", "pathname", "search", "hash"];
  // URLPatternInit's members in the order WebIDL reads a dictionary (lexicographic).
  const MEMBERS = ["baseURL", "hash", "hostname", "password", "pathname", "port", "protocol", "search", "username"];
  // WebIDL's USVString (a symbol throws, lone surrogates are replaced).
  const usv = (v) => `${v}`.toWellFormed();
  const isObject = (v) => v !== null && (typeof v === "object" || typeof v === "function");

  // `(USVString or URLPatternInit)`: [what src/pattern.rs reads, whether it is an init, the
  // converted value (what a result's `inputs` holds)].
  const toInput = (value) => {
    if (value === undefined || value === null || isObject(value)) {
      const init = {};
      if (value != null) {
        for (const member of MEMBERS) {
          const v = value[member];
          if (v !== undefined) init[member] = usv(v);
        }
      }
      return [stringify(init), true, init];
    }
    const text = usv(value);
    return [text, false, text];
  };

  // URLPatternOptions: `ignoreCase` only.
  const toIgnoreCase = (options) => {
    if (options == null) return false;
    if (!isObject(options)) throw new TypeError("URLPattern: the options must be an object");
    return !!options.ignoreCase;
  };

  class URLPattern {
    #pattern; #regexps;
    constructor(input = undefined, baseURL = undefined, options = undefined) {
      // WebIDL's overload resolution: (input, baseURL, options) when there are three arguments
      // or the second is neither undefined, null nor an object; (input, options) otherwise.
      let base, opts;
      const withBase = arguments.length >= 3 || (arguments.length === 2 && baseURL !== undefined && !(baseURL === null || isObject(baseURL)));
      const [text, isInit] = toInput(input);
      if (withBase) {
        // A USVString, even from undefined ("undefined", which is not a URL).
        base = usv(baseURL);
        opts = options;
      } else {
        opts = baseURL;
      }
      const ignoreCase = toIgnoreCase(opts);
      const pattern = parseJson(parse(text, isInit, base, ignoreCase));
      // The Standard's flags (`v`: set operations in classes, stricter escapes).
      const flags = ignoreCase ? "vi" : "v";
      const regexps = {};
      for (const c of COMPONENTS) {
        try {
          regexps[c] = new RegExp(pattern[c].regexpString, flags);
        } catch (e) {
          throw new TypeError(`URLPattern: the ${c} pattern ${stringify(pattern[c].patternString)} is not a valid regular expression: ${e.message}`);
        }
      }
      this.#pattern = pattern;
      this.#regexps = regexps;
    }
    test(input = undefined, baseURL = undefined) { return this.#match(input, baseURL) !== null; }
    exec(input = undefined, baseURL = undefined) { return this.#match(input, baseURL); }
    #match(input, baseURL) {
      const [text, isInit, converted] = toInput(input);
      const base = baseURL === undefined ? undefined : usv(baseURL);
      const parts = matchInput(text, isInit, base);
      if (parts === null) return null;
      const result = { inputs: base === undefined ? [converted] : [converted, base] };
      for (let i = 0; i < COMPONENTS.length; i++) {
        const c = COMPONENTS[i];
        const found = exec.call(this.#regexps[c], parts[i]);
        if (found === null) return null;
        const names = this.#pattern[c].groupNameList;
        const groups = {};
        // Data properties, as a record's are (a group named "__proto__" included).
        for (let j = 1; j < found.length; j++) {
          defineProperty(groups, names[j - 1], { value: found[j], writable: true, enumerable: true, configurable: true });
        }
        result[c] = { input: parts[i], groups };
      }
      return result;
    }
    get protocol() { return this.#pattern.protocol.patternString; }
    get username() { return this.#pattern.username.patternString; }
    get password() { return this.#pattern.password.patternString; }
    get hostname() { return this.#pattern.hostname.patternString; }
    get port() { return this.#pattern.port.patternString; }
    get pathname() { return this.#pattern.pathname.patternString; }
    get search() { return this.#pattern.search.patternString; }
    get hash() { return this.#pattern.hash.patternString; }
    get hasRegExpGroups() { return this.#pattern.hasRegexpGroups; }
    get [Symbol.toStringTag]() { return "URLPattern"; }
  }
  Object.defineProperty(globalThis, "URLPattern",
    { value: URLPattern, writable: true, configurable: true, enumerable: false });
})();
