// crypto (Web Cryptography API): getRandomValues, randomUUID, and crypto.subtle with digest
// (SHA-1, SHA-256, SHA-384, SHA-512), HMAC, ECDSA on P-256 and AES-GCM: generateKey,
// importKey and exportKey (raw, jwk, pkcs8, spki as each algorithm allows), sign, verify,
// encrypt, decrypt. The primitives are RustCrypto's (src/subtle.rs); a key's material stays in
// this closure, out of agents' reach unless the key is extractable.
(() => {
  const random = __hv_random, digestOf = __hv_digest, hmacOf = __hv_hmac, ctEq = __hv_ct_eq,
        ecGenerate = __hv_ec_generate, ecPublic = __hv_ec_public, ecPoint = __hv_ec_point,
        ecSign = __hv_ec_sign, ecVerify = __hv_ec_verify, ecDer = __hv_ec_der,
        ecFromDer = __hv_ec_from_der, aesGcm = __hv_aes_gcm;
  const define = (name, value) => Object.defineProperty(globalThis, name,
    { value, writable: true, configurable: true, enumerable: false });
  const fail = (name, message) => new DOMException(message, name);
  // A native's TypeError "Name: message" as that DOMException.
  const native = (f) => {
    try { return f(); } catch (e) {
      const m = /^(\w+Error): (.*)$/s.exec(e && e.message);
      throw m ? fail(m[1], m[2]) : e;
    }
  };
  const bytesOf = __hv_buffer_copy;
  const buffer = (u8) => u8.buffer.slice(u8.byteOffset, u8.byteOffset + u8.byteLength);

  const integerArrays = ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array",
    "Int32Array", "Uint32Array", "BigInt64Array", "BigUint64Array"];

  // base64url without padding (JWK).
  const b64u = (u8) => btoa(String.fromCharCode(...u8)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const unb64u = (s, what) => {
    if (typeof s !== "string" || /[^A-Za-z0-9_-]/.test(s)) throw fail("DataError", `JWK ${what} is not base64url`);
    const text = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(text, (c) => c.charCodeAt(0));
  };

  const HASHES = ["SHA-1", "SHA-256", "SHA-384", "SHA-512"];
  const canonical = (name, list) => list.find((n) => n.toLowerCase() === String(name).toLowerCase());
  const normalize = (algorithm, operation) => {
    const a = typeof algorithm === "string" ? { name: algorithm } : algorithm;
    if (!a || typeof a !== "object" || a.name === undefined) throw new TypeError(`${operation}: the algorithm needs a name`);
    const name = canonical(a.name, ["HMAC", "AES-GCM", "ECDSA", ...HASHES]);
    if (!name) throw fail("NotSupportedError", `${operation}: the algorithm ${JSON.stringify(String(a.name))} is not available in this runtime (HMAC, AES-GCM, ECDSA on P-256, SHA-1/256/384/512 are)`);
    return { ...a, name };
  };
  const hashOf = (hash, operation) => {
    const h = normalize(hash, operation);
    if (!HASHES.includes(h.name)) throw fail("NotSupportedError", `${operation}: ${h.name} is not a hash`);
    return h.name;
  };

  const material = new WeakMap();
  let minting = false;
  class CryptoKey {
    #type; #extractable; #algorithm; #usages;
    constructor(type, extractable, algorithm, usages, key) {
      if (!minting) throw new TypeError("Illegal constructor");
      this.#type = type; this.#extractable = extractable; this.#algorithm = Object.freeze(algorithm);
      this.#usages = Object.freeze([...usages]);
      material.set(this, key);
    }
    get type() { return this.#type; }
    get extractable() { return this.#extractable; }
    get algorithm() { return this.#algorithm; }
    get usages() { return this.#usages; }
    get [Symbol.toStringTag]() { return "CryptoKey"; }
  }
  const mint = (...args) => { minting = true; try { return new CryptoKey(...args); } finally { minting = false; } };
  define("CryptoKey", CryptoKey);

  const allowed = { HMAC: ["sign", "verify"], "AES-GCM": ["encrypt", "decrypt", "wrapKey", "unwrapKey"],
    ECDSA: { private: ["sign"], public: ["verify"] } };
  const checkUsages = (usages, permitted, what) => {
    for (const u of usages) if (!permitted.includes(u)) throw fail("SyntaxError", `${what} cannot be used to ${u}`);
  };
  const use = (key, name, usage) => {
    if (!(key instanceof CryptoKey)) throw new TypeError("a CryptoKey is needed");
    if (key.algorithm.name !== name) throw fail("InvalidAccessError", `the key is for ${key.algorithm.name}, not ${name}`);
    if (!key.usages.includes(usage)) throw fail("InvalidAccessError", `the key's usages do not include ${usage}`);
    return material.get(key);
  };
  const curve = (a) => {
    if (a.namedCurve !== "P-256") throw fail("NotSupportedError", `ECDSA on ${a.namedCurve} is not available in this runtime (P-256 is)`);
  };
  const aesLength = (n) => {
    if (n !== 128 && n !== 256) throw fail(n === 192 ? "NotSupportedError" : "DataError", `AES-GCM: a ${n}-bit key (128 and 256 are available)`);
  };
  const blockBits = { "SHA-1": 512, "SHA-256": 512, "SHA-384": 1024, "SHA-512": 1024 };

  const ops = {
    digest(algorithm, data) {
      const name = hashOf(algorithm, "digest");
      return buffer(native(() => digestOf(name, bytesOf(data, "digest"))));
    },
    generateKey(algorithm, extractable, usages) {
      const a = normalize(algorithm, "generateKey");
      if (a.name === "HMAC") {
        const hash = hashOf(a.hash, "generateKey");
        checkUsages(usages, allowed.HMAC, "an HMAC key");
        if (!usages.length) throw fail("SyntaxError", "generateKey: no usages");
        const bits = a.length === undefined ? blockBits[hash] : Number(a.length);
        if (!(bits > 0) || bits % 8) throw fail("OperationError", "generateKey: an HMAC length in whole bytes is needed");
        return mint("secret", !!extractable, { name: "HMAC", hash: { name: hash }, length: bits }, usages, random(bits / 8));
      }
      if (a.name === "AES-GCM") {
        aesLength(a.length);
        checkUsages(usages, allowed["AES-GCM"], "an AES-GCM key");
        if (!usages.length) throw fail("SyntaxError", "generateKey: no usages");
        return mint("secret", !!extractable, { name: "AES-GCM", length: a.length }, usages, random(a.length / 8));
      }
      if (a.name === "ECDSA") {
        curve(a);
        checkUsages(usages, ["sign", "verify"], "an ECDSA key pair");
        const [d, point] = native(() => ecGenerate());
        const algorithm = { name: "ECDSA", namedCurve: "P-256" };
        const privateUsages = usages.filter((u) => u === "sign");
        if (!privateUsages.length) throw fail("SyntaxError", "generateKey: the private key needs the usage sign");
        return {
          publicKey: mint("public", true, algorithm, usages.filter((u) => u === "verify"), point),
          privateKey: mint("private", !!extractable, algorithm, privateUsages, d),
        };
      }
      throw fail("NotSupportedError", `generateKey: ${a.name} keys are not generated`);
    },
    importKey(format, keyData, algorithm, extractable, usages) {
      const a = normalize(algorithm, "importKey");
      const jwk = format === "jwk" ? keyData : null;
      if (format === "jwk" && (!jwk || typeof jwk !== "object")) throw new TypeError("importKey: a JWK object is needed");
      if (jwk && jwk.ext === false && extractable) throw fail("DataError", "importKey: the JWK is not extractable");
      if (a.name === "HMAC") {
        checkUsages(usages, allowed.HMAC, "an HMAC key");
        const hash = hashOf(a.hash, "importKey");
        let raw;
        if (format === "raw") raw = bytesOf(keyData, "importKey");
        else if (jwk) { if (jwk.kty !== "oct") throw fail("DataError", "importKey: an oct JWK is needed"); raw = unb64u(jwk.k, "k"); }
        else throw fail("NotSupportedError", `importKey: HMAC keys are not imported as ${format}`);
        if (!raw.length) throw fail("DataError", "importKey: an empty HMAC key");
        return mint("secret", !!extractable, { name: "HMAC", hash: { name: hash }, length: raw.length * 8 }, usages, raw);
      }
      if (a.name === "AES-GCM") {
        checkUsages(usages, allowed["AES-GCM"], "an AES-GCM key");
        let raw;
        if (format === "raw") raw = bytesOf(keyData, "importKey");
        else if (jwk) { if (jwk.kty !== "oct") throw fail("DataError", "importKey: an oct JWK is needed"); raw = unb64u(jwk.k, "k"); }
        else throw fail("NotSupportedError", `importKey: AES keys are not imported as ${format}`);
        aesLength(raw.length * 8);
        return mint("secret", !!extractable, { name: "AES-GCM", length: raw.length * 8 }, usages, raw);
      }
      if (a.name === "ECDSA") {
        curve(a);
        const algorithm = { name: "ECDSA", namedCurve: "P-256" };
        const asPublic = (point) => { checkUsages(usages, allowed.ECDSA.public, "an ECDSA public key"); return mint("public", true, algorithm, usages, point); };
        const asPrivate = (d) => {
          checkUsages(usages, allowed.ECDSA.private, "an ECDSA private key");
          if (!usages.length) throw fail("SyntaxError", "importKey: a private key needs the usage sign");
          return mint("private", !!extractable, algorithm, usages, d);
        };
        if (format === "raw") return asPublic(native(() => ecPoint(bytesOf(keyData, "importKey"))));
        if (format === "spki") return asPublic(native(() => ecFromDer("spki", bytesOf(keyData, "importKey"))));
        if (format === "pkcs8") return asPrivate(native(() => ecFromDer("pkcs8", bytesOf(keyData, "importKey"))));
        if (jwk) {
          if (jwk.kty !== "EC" || jwk.crv !== "P-256") throw fail("DataError", "importKey: an EC P-256 JWK is needed");
          const x = unb64u(jwk.x, "x"), y = unb64u(jwk.y, "y");
          if (x.length !== 32 || y.length !== 32) throw fail("DataError", "importKey: JWK x and y are 32 bytes each");
          const point = native(() => ecPoint(Uint8Array.of(4, ...x, ...y)));
          if (jwk.d === undefined) return asPublic(point);
          const d = unb64u(jwk.d, "d");
          const derived = native(() => ecPublic(d));
          if (!ctEq(derived, point)) throw fail("DataError", "importKey: JWK d does not match x and y");
          return asPrivate(d);
        }
        throw fail("NotSupportedError", `importKey: ECDSA keys are not imported as ${format}`);
      }
      throw fail("NotSupportedError", `importKey: ${a.name} keys are not imported`);
    },
    exportKey(format, key) {
      if (!(key instanceof CryptoKey)) throw new TypeError("exportKey: a CryptoKey is needed");
      if (!key.extractable) throw fail("InvalidAccessError", "exportKey: the key is not extractable");
      const k = material.get(key);
      const name = key.algorithm.name;
      if (format === "raw" && key.type !== "private") return buffer(Uint8Array.from(k));
      if (format === "spki" && key.type === "public") return buffer(native(() => ecDer("spki", k)));
      if (format === "pkcs8" && key.type === "private") return buffer(native(() => ecDer("pkcs8", k)));
      if (format === "jwk") {
        const common = { key_ops: [...key.usages], ext: key.extractable };
        if (name === "HMAC") return { kty: "oct", k: b64u(k), alg: `HS${key.algorithm.hash.name.slice(4)}`, ...common };
        if (name === "AES-GCM") return { kty: "oct", k: b64u(k), alg: `A${key.algorithm.length}GCM`, ...common };
        const point = key.type === "private" ? native(() => ecPublic(k)) : k;
        const jwk = { kty: "EC", crv: "P-256", x: b64u(point.slice(1, 33)), y: b64u(point.slice(33, 65)), ...common };
        if (key.type === "private") jwk.d = b64u(k);
        return jwk;
      }
      throw fail("NotSupportedError", `exportKey: a ${key.type} ${name} key is not exported as ${format}`);
    },
    sign(algorithm, key, data) {
      const a = normalize(algorithm, "sign");
      const k = use(key, a.name, "sign");
      if (a.name === "HMAC") return buffer(native(() => hmacOf(key.algorithm.hash.name, k, bytesOf(data, "sign"))));
      if (a.name === "ECDSA") return buffer(native(() => ecSign(k, hashOf(a.hash, "sign"), bytesOf(data, "sign"))));
      throw fail("NotSupportedError", `sign: ${a.name} does not sign`);
    },
    verify(algorithm, key, signature, data) {
      const a = normalize(algorithm, "verify");
      const k = use(key, a.name, "verify");
      const sig = bytesOf(signature, "verify");
      if (a.name === "HMAC") return ctEq(native(() => hmacOf(key.algorithm.hash.name, k, bytesOf(data, "verify"))), sig);
      if (a.name === "ECDSA") return native(() => ecVerify(k, hashOf(a.hash, "verify"), bytesOf(data, "verify"), sig));
      throw fail("NotSupportedError", `verify: ${a.name} does not verify`);
    },
    encrypt(algorithm, key, data) { return gcm(true, algorithm, key, data); },
    decrypt(algorithm, key, data) { return gcm(false, algorithm, key, data); },
  };
  const gcm = (encrypt, algorithm, key, data) => {
    const operation = encrypt ? "encrypt" : "decrypt";
    const a = normalize(algorithm, operation);
    if (a.name !== "AES-GCM") throw fail("NotSupportedError", `${operation}: ${a.name} does not ${operation}`);
    const k = use(key, "AES-GCM", operation);
    if (a.tagLength !== undefined && a.tagLength !== 128) throw fail("NotSupportedError", `${operation}: only a 128-bit tag is available in this runtime`);
    const iv = bytesOf(a.iv, `${operation} (iv)`);
    const aad = a.additionalData === undefined ? new Uint8Array(0) : bytesOf(a.additionalData, `${operation} (additionalData)`);
    const out = native(() => aesGcm(encrypt, k, iv, bytesOf(data, operation), aad));
    if (out === null) throw fail("OperationError", "decrypt: the data does not authenticate under this key and iv");
    return buffer(out);
  };

  // Every SubtleCrypto method answers a promise (its errors as rejections).
  class SubtleCrypto {
    constructor() { if (!minting) throw new TypeError("Illegal constructor"); }
    get [Symbol.toStringTag]() { return "SubtleCrypto"; }
  }
  for (const [name, f] of Object.entries(ops)) {
    Object.defineProperty(SubtleCrypto.prototype, name, {
      value: { [name](...args) { try { return Promise.resolve(f(...args)); } catch (e) { return Promise.reject(e); } } }[name],
      writable: true, configurable: true, enumerable: true,
    });
  }
  class Crypto {
    #subtle;
    constructor() { if (!minting) throw new TypeError("Illegal constructor"); this.#subtle = new SubtleCrypto(); }
    get subtle() { return this.#subtle; }
    getRandomValues(array) {
      if (!ArrayBuffer.isView(array) || !integerArrays.includes(Object.prototype.toString.call(array).slice(8, -1))) {
        throw fail("TypeMismatchError", "getRandomValues: an integer typed array is needed");
      }
      if (array.byteLength > 65536) {
        throw fail("QuotaExceededError", `getRandomValues: ${array.byteLength} bytes asked, at most 65536 at once`);
      }
      new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(random(array.byteLength));
      return array;
    }
    randomUUID() {
      const b = random(16);
      b[6] = (b[6] & 0x0f) | 0x40;
      b[8] = (b[8] & 0x3f) | 0x80;
      const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    }
    get [Symbol.toStringTag]() { return "Crypto"; }
  }
  define("SubtleCrypto", SubtleCrypto);
  define("Crypto", Crypto);
  minting = true;
  try { define("crypto", new Crypto()); } finally { minting = false; }
})();
