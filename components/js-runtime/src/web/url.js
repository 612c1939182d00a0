// URL and URLSearchParams (URL Standard), over the `url` crate's parser and setters and
// `application/x-www-form-urlencoded` (src/web.rs).
(() => {
  const parse = __hv_url, set = __hv_url_set, formParse = __hv_form_parse, formSerialize = __hv_form_serialize;
  const define = (name, value) => Object.defineProperty(globalThis, name,
    { value, writable: true, configurable: true, enumerable: false });
  const usv = (v) => String(v).toWellFormed();
  // Iterators are live, as WebIDL's pair iterators are: an index into the list as it is now.
  const iterate = (list, kind) => {
    let i = 0;
    const it = Object.create(IteratorPrototype);
    it.next = () => {
      const pairs = list();
      if (i >= pairs.length) return { value: undefined, done: true };
      const [k, v] = pairs[i++];
      return { value: kind === "keys" ? k : kind === "values" ? v : [k, v], done: false };
    };
    return it;
  };
  const IteratorPrototype = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()));
  // For fetch.js's Headers and FormData (the runtime deletes it once the scripts ran).
  globalThis.__hv_pair_iterator = iterate;

  let internal = false;
  class URLSearchParams {
    #pairs = []; #url = null;
    constructor(init = "") {
      if (internal) return;
      if (init !== null && (typeof init === "object" || typeof init === "function")) {
        if (typeof init[Symbol.iterator] === "function") {
          for (const pair of init) {
            const p = [...pair];
            if (p.length !== 2) throw new TypeError("URLSearchParams: each pair needs a name and a value");
            this.#pairs.push([usv(p[0]), usv(p[1])]);
          }
        } else {
          for (const k of Reflect.ownKeys(init)) {
            const d = Reflect.getOwnPropertyDescriptor(init, k);
            if (d && d.enumerable && typeof k === "string") this.#pairs.push([usv(k), usv(init[k])]);
          }
        }
        return;
      }
      this.#parse(usv(init).replace(/^\?/, ""));
    }
    #parse(text) {
      const flat = formParse(text);
      this.#pairs = [];
      for (let i = 0; i < flat.length; i += 2) this.#pairs.push([flat[i], flat[i + 1]]);
    }
    #update() {
      if (!this.#url) return;
      const query = this.toString();
      linkSearch(this.#url, query === "" ? null : query);
    }
    static _attach(params, url, query) { params.#url = url; params.#parse(query); }
    static _reparse(params, query) { params.#parse(query); }
    get size() { return this.#pairs.length; }
    append(name, value) { this.#pairs.push([usv(name), usv(value)]); this.#update(); }
    delete(name, value) {
      const n = usv(name), v = value === undefined ? undefined : usv(value);
      this.#pairs = this.#pairs.filter(([k, x]) => !(k === n && (v === undefined || x === v)));
      this.#update();
    }
    get(name) { const n = usv(name); const p = this.#pairs.find(([k]) => k === n); return p ? p[1] : null; }
    getAll(name) { const n = usv(name); return this.#pairs.filter(([k]) => k === n).map(([, v]) => v); }
    has(name, value) {
      const n = usv(name), v = value === undefined ? undefined : usv(value);
      return this.#pairs.some(([k, x]) => k === n && (v === undefined || x === v));
    }
    set(name, value) {
      const n = usv(name), v = usv(value);
      const i = this.#pairs.findIndex(([k]) => k === n);
      if (i < 0) this.#pairs.push([n, v]);
      else { this.#pairs[i][1] = v; this.#pairs = this.#pairs.filter(([k], j) => j <= i || k !== n); }
      this.#update();
    }
    sort() {
      // Stable, by code units of the names.
      this.#pairs = this.#pairs.map((p, i) => [p, i]).sort(([a, i], [b, j]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : i - j)).map(([p]) => p);
      this.#update();
    }
    forEach(callback, thisArg) {
      for (let i = 0; i < this.#pairs.length; i++) callback.call(thisArg, this.#pairs[i][1], this.#pairs[i][0], this);
    }
    keys() { return iterate(() => this.#pairs, "keys"); }
    values() { return iterate(() => this.#pairs, "values"); }
    entries() { return iterate(() => this.#pairs, "entries"); }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return formSerialize(this.#pairs.flat()); }
    get [Symbol.toStringTag]() { return "URLSearchParams"; }
  }
  const attach = URLSearchParams._attach, reparse = URLSearchParams._reparse;
  delete URLSearchParams._attach; delete URLSearchParams._reparse;

  let linkSearch;
  class URL {
    #parts; #params;
    constructor(url, base) {
      if (arguments.length === 0) throw new TypeError("URL: 1 argument required");
      const parts = base === undefined ? parse(usv(url)) : parse(usv(url), usv(base));
      if (parts === null) throw new TypeError(`Invalid URL: ${JSON.stringify(String(url))}${base === undefined ? "" : ` against ${JSON.stringify(String(base))}`}`);
      this.#parts = parts;
      internal = true;
      try { this.#params = new URLSearchParams(); } finally { internal = false; }
      attach(this.#params, this, this.#parts[9].replace(/^\?/, ""));
    }
    static canParse(url, base) { return (base === undefined ? parse(usv(url)) : parse(usv(url), usv(base))) !== null; }
    static parse(url, base) { try { return new URL(url, base); } catch (_) { return null; } }
    #set(part, value) {
      this.#parts = set(this.#parts[0], part, usv(value));
      if (part === "href" || part === "search") reparse(this.#params, this.#parts[9].replace(/^\?/, ""));
    }
    // The URL Standard's "update steps" of URLSearchParams: an empty list leaves no `?`.
    static _search(url, query) { url.#parts = set(url.#parts[0], "search", query === null ? "" : query); }
    get href() { return this.#parts[0]; }
    set href(v) { this.#set("href", v); }
    get origin() { return this.#parts[1]; }
    get protocol() { return this.#parts[2]; }
    set protocol(v) { this.#set("protocol", v); }
    get username() { return this.#parts[3]; }
    set username(v) { this.#set("username", v); }
    get password() { return this.#parts[4]; }
    set password(v) { this.#set("password", v); }
    get host() { return this.#parts[5]; }
    set host(v) { this.#set("host", v); }
    get hostname() { return this.#parts[6]; }
    set hostname(v) { this.#set("hostname", v); }
    get port() { return this.#parts[7]; }
    set port(v) { this.#set("port", v); }
    get pathname() { return this.#parts[8]; }
    set pathname(v) { this.#set("pathname", v); }
    get search() { return this.#parts[9]; }
    set search(v) { this.#set("search", v); }
    get hash() { return this.#parts[10]; }
    set hash(v) { this.#set("hash", v); }
    get searchParams() { return this.#params; }
    toString() { return this.#parts[0]; }
    toJSON() { return this.#parts[0]; }
    get [Symbol.toStringTag]() { return "URL"; }
  }
  linkSearch = URL._search; delete URL._search;
  define("URL", URL);
  define("URLSearchParams", URLSearchParams);
})();
