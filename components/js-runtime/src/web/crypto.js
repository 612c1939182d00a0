// crypto (Web Cryptography API): getRandomValues, randomUUID, and crypto.subtle with digest
// (SHA-1, SHA-256, SHA-384, SHA-512), HMAC, ECDSA and ECDH on P-256, Ed25519, X25519, AES-GCM,
// AES-CTR, AES-CBC, AES-KW, HKDF, PBKDF2, and RSA public keys (RSASSA-PKCS1-v1_5 and RSA-PSS
// verify, RSA-OAEP encrypts; src/rsa_public.rs says why private keys are refused):
// generateKey, importKey and exportKey (raw, jwk, pkcs8, spki as each algorithm allows), sign,
// verify, encrypt, decrypt, deriveBits, deriveKey, wrapKey, unwrapKey. The primitives are RustCrypto's
// (src/subtle.rs, src/aes.rs, src/derive.rs, src/okp.rs); a key's material stays in this closure, out of agents' reach
// unless the key is extractable.
(() => {
  const random = __hv_random, digestOf = __hv_digest, hmacOf = __hv_hmac, ctEq = __hv_ct_eq,
        ecGenerate = __hv_ec_generate, ecPublic = __hv_ec_public, ecPoint = __hv_ec_point,
        ecSign = __hv_ec_sign, ecVerify = __hv_ec_verify, ecDer = __hv_ec_der,
        ecFromDer = __hv_ec_from_der, aesGcm = __hv_aes_gcm, hkdfOf = __hv_hkdf,
        pbkdf2Of = __hv_pbkdf2, ecdhOf = __hv_ecdh, aesCtr = __hv_aes_ctr, aesCbc = __hv_aes_cbc,
        aesKw = __hv_aes_kw, okpGenerate = __hv_okp_generate,
        okpPublic = __hv_okp_public, okpDer = __hv_okp_der, okpFromDer = __hv_okp_from_der,
        edSign = __hv_ed_sign, edVerify = __hv_ed_verify, x25519Of = __hv_x25519,
        rsaFromSpki = __hv_rsa_from_spki, rsaFromJwk = __hv_rsa_from_jwk, rsaJwk = __hv_rsa_jwk,
        rsaVerify = __hv_rsa_verify, rsaEncrypt = __hv_rsa_encrypt;
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
  // The built-ins that key material passes through, captured before any agent code runs: an
  // agent that patches ArrayBuffer.prototype.slice, Array.prototype.includes or WeakMap's
  // methods sees none of it, and cannot widen a key's usages.
  const apply = Reflect.apply, weakGet = WeakMap.prototype.get, weakSet = WeakMap.prototype.set,
        arrayIncludes = Array.prototype.includes, sliceBuffer = ArrayBuffer.prototype.slice,
        typedSlice = Object.getPrototypeOf(Uint8Array.prototype).slice,
        typedGetter = (name) => Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), name).get,
        bufferOf = typedGetter("buffer"), offsetOf = typedGetter("byteOffset"), lengthOf = typedGetter("byteLength"),
        decodeUtf8 = __hv_utf8_decode, parseJson = JSON.parse;
  const has = (list, item) => apply(arrayIncludes, list, [item]);
  const bytesOf = __hv_buffer_copy;
  const buffer = (u8) => {
    const offset = apply(offsetOf, u8, []);
    return apply(sliceBuffer, apply(bufferOf, u8, []), [offset, offset + apply(lengthOf, u8, [])]);
  };
  // Bytes made here (natives' answers) that importKey may take as they are, without the copy
  // through the agent-visible prototypes that an agent's BufferSource gets.
  const own = new WeakSet(), weakHas = WeakSet.prototype.has, weakAdd = WeakSet.prototype.add;
  const trusted = (u8) => { apply(weakAdd, own, [u8]); return u8; };
  const keyBytes = (data, what) => (apply(weakHas, own, [data]) ? data : bytesOf(data, what));

  const integerArrays = ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array",
    "Int32Array", "Uint32Array", "BigInt64Array", "BigUint64Array"];

  // base64url without padding (JWK), by natives: key material meets no patchable built-in.
  const b64uEncode = __hv_b64u, b64uDecode = __hv_unb64u;
  const b64u = (u8) => b64uEncode(u8);
  const unb64u = (s, what) => {
    if (typeof s !== "string") throw fail("DataError", `JWK ${what} is not base64url`);
    return native(() => b64uDecode(s, what));
  };

  const HASHES = ["SHA-1", "SHA-256", "SHA-384", "SHA-512"];
  const AES = ["AES-GCM", "AES-CTR", "AES-CBC", "AES-KW"];
  const RSA = ["RSASSA-PKCS1-v1_5", "RSA-PSS", "RSA-OAEP"];
  // JWK's `alg` of an RSA key, by algorithm and hash.
  const rsaAlg = (name, hash) => {
    const bits = hash.slice(4);
    if (name === "RSA-OAEP") return hash === "SHA-1" ? "RSA-OAEP" : `RSA-OAEP-${bits}`;
    return `${name === "RSA-PSS" ? "PS" : "RS"}${hash === "SHA-1" ? "1" : bits}`;
  };
  const NO_RSA_PRIVATE = "RSA private keys are not available in this runtime: the RSA library's private-key operations are not constant-time (RUSTSEC-2023-0071), which would expose the key to timing; RSA public keys verify and encrypt";
  const canonical = (name, list) => list.find((n) => n.toLowerCase() === String(name).toLowerCase());
  const normalize = (algorithm, operation) => {
    const a = typeof algorithm === "string" ? { name: algorithm } : algorithm;
    if (!a || typeof a !== "object" || a.name === undefined) throw new TypeError(`${operation}: the algorithm needs a name`);
    const name = canonical(a.name, ["HMAC", ...AES, "ECDSA", "ECDH", "Ed25519", "X25519", "HKDF", "PBKDF2", ...RSA, ...HASHES]);
    if (!name) throw fail("NotSupportedError", `${operation}: the algorithm ${JSON.stringify(String(a.name))} is not available in this runtime (HMAC, AES-GCM, AES-CTR, AES-CBC, AES-KW, ECDSA and ECDH on P-256, Ed25519, X25519, HKDF, PBKDF2, RSA public keys, SHA-1/256/384/512 are)`);
    return { ...a, name };
  };
  const hashOf = (hash, operation) => {
    const h = normalize(hash, operation);
    if (!has(HASHES, h.name)) throw fail("NotSupportedError", `${operation}: ${h.name} is not a hash`);
    return h.name;
  };

  // Each key's internal slots (type, extractable, algorithm, usages) and material, which every
  // operation reads; the getters below only show them (an agent that redefines them on a key
  // changes nothing).
  const material = new WeakMap();
  const slots = (key, what) => {
    const record = apply(weakGet, material, [key]);
    if (!record) throw new TypeError(`${what}: a CryptoKey is needed`);
    return record;
  };
  let minting = false;
  class CryptoKey {
    #type; #extractable; #algorithm; #usages;
    constructor(type, extractable, algorithm, usages, key) {
      if (!minting) throw new TypeError("Illegal constructor");
      this.#type = type; this.#extractable = extractable; this.#algorithm = Object.freeze(algorithm);
      this.#usages = Object.freeze([...usages]);
      apply(weakSet, material, [this, Object.freeze({ type, extractable, algorithm: this.#algorithm, usages: this.#usages, key })]);
    }
    get type() { return this.#type; }
    get extractable() { return this.#extractable; }
    get algorithm() { return this.#algorithm; }
    get usages() { return this.#usages; }
    get [Symbol.toStringTag]() { return "CryptoKey"; }
  }
  const mint = (...args) => { minting = true; try { return new CryptoKey(...args); } finally { minting = false; } };
  define("CryptoKey", CryptoKey);

  const DERIVE = ["deriveKey", "deriveBits"];
  const CIPHER = ["encrypt", "decrypt", "wrapKey", "unwrapKey"];
  const allowed = { HMAC: ["sign", "verify"], "AES-GCM": CIPHER, "AES-CTR": CIPHER, "AES-CBC": CIPHER,
    "AES-KW": ["wrapKey", "unwrapKey"],
    ECDSA: { private: ["sign"], public: ["verify"] }, ECDH: { private: DERIVE, public: [] },
    Ed25519: { private: ["sign"], public: ["verify"] }, X25519: { private: DERIVE, public: [] },
    HKDF: DERIVE, PBKDF2: DERIVE,
    "RSASSA-PKCS1-v1_5": { private: ["sign"], public: ["verify"] }, "RSA-PSS": { private: ["sign"], public: ["verify"] },
    "RSA-OAEP": { private: ["decrypt", "unwrapKey"], public: ["encrypt", "wrapKey"] } };
  const checkUsages = (usages, permitted, what) => {
    for (const u of usages) if (!has(permitted, u)) throw fail("SyntaxError", `${what} cannot be used to ${u}`);
  };
  const use = (key, name, usage) => {
    const record = slots(key, usage);
    if (record.algorithm.name !== name) throw fail("InvalidAccessError", `the key is for ${record.algorithm.name}, not ${name}`);
    if (!has(record.usages, usage)) throw fail("InvalidAccessError", `the key's usages do not include ${usage}`);
    return record.key;
  };
  const curve = (a) => {
    if (a.namedCurve !== "P-256") throw fail("NotSupportedError", `${a.name} on ${a.namedCurve} is not available in this runtime (P-256 is)`);
  };
  const aesLength = (n) => {
    if (n !== 128 && n !== 256) throw fail(n === 192 ? "NotSupportedError" : "DataError", `AES: a ${n}-bit key (128 and 256 are available)`);
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
      if (has(AES, a.name)) {
        aesLength(a.length);
        checkUsages(usages, allowed[a.name], `an ${a.name} key`);
        if (!usages.length) throw fail("SyntaxError", "generateKey: no usages");
        return mint("secret", !!extractable, { name: a.name, length: a.length }, usages, random(a.length / 8));
      }
      if (a.name === "ECDSA" || a.name === "ECDH") {
        curve(a);
        const { private: forPrivate, public: forPublic } = allowed[a.name];
        checkUsages(usages, [...forPrivate, ...forPublic], `an ${a.name} key pair`);
        const [d, point] = native(() => ecGenerate());
        const algorithm = { name: a.name, namedCurve: "P-256" };
        const privateUsages = usages.filter((u) => has(forPrivate, u));
        if (!privateUsages.length) throw fail("SyntaxError", `generateKey: the private key needs the usage ${forPrivate.join(" or ")}`);
        return {
          publicKey: mint("public", true, algorithm, usages.filter((u) => has(forPublic, u)), point),
          privateKey: mint("private", !!extractable, algorithm, privateUsages, d),
        };
      }
      if (a.name === "Ed25519" || a.name === "X25519") {
        const { private: forPrivate, public: forPublic } = allowed[a.name];
        checkUsages(usages, [...forPrivate, ...forPublic], `an ${a.name} key pair`);
        const privateUsages = usages.filter((u) => has(forPrivate, u));
        if (!privateUsages.length) throw fail("SyntaxError", `generateKey: the private key needs the usage ${forPrivate.join(" or ")}`);
        const [d, x] = native(() => okpGenerate(a.name));
        return {
          publicKey: mint("public", true, { name: a.name }, usages.filter((u) => has(forPublic, u)), x),
          privateKey: mint("private", !!extractable, { name: a.name }, privateUsages, d),
        };
      }
      if (has(RSA, a.name)) throw fail("NotSupportedError", `generateKey: ${NO_RSA_PRIVATE}`);
      throw fail("NotSupportedError", `generateKey: ${a.name} keys are not generated`);
    },
    // A secret or private key with no usages is refused (WebCrypto's importKey, deriveKey and
    // unwrapKey all end here).
    importKey(format, keyData, algorithm, extractable, usages) {
      const key = importKey(format, keyData, algorithm, extractable, usages);
      const { type } = slots(key, "importKey");
      if ((type === "secret" || type === "private") && !usages.length) throw fail("SyntaxError", `importKey: a ${type} key needs at least one usage`);
      return key;
    },
  };
  function importKey(format, keyData, algorithm, extractable, usages) {
      const a = normalize(algorithm, "importKey");
      const jwk = format === "jwk" ? keyData : null;
      if (format === "jwk" && (!jwk || typeof jwk !== "object")) throw new TypeError("importKey: a JWK object is needed");
      if (jwk && jwk.ext === false && extractable) throw fail("DataError", "importKey: the JWK is not extractable");
      if (a.name === "HMAC") {
        checkUsages(usages, allowed.HMAC, "an HMAC key");
        const hash = hashOf(a.hash, "importKey");
        let raw;
        if (format === "raw") raw = keyBytes(keyData, "importKey");
        else if (jwk) { if (jwk.kty !== "oct") throw fail("DataError", "importKey: an oct JWK is needed"); raw = unb64u(jwk.k, "k"); }
        else throw fail("NotSupportedError", `importKey: HMAC keys are not imported as ${format}`);
        if (!raw.length) throw fail("DataError", "importKey: an empty HMAC key");
        return mint("secret", !!extractable, { name: "HMAC", hash: { name: hash }, length: raw.length * 8 }, usages, raw);
      }
      if (has(AES, a.name)) {
        checkUsages(usages, allowed[a.name], `an ${a.name} key`);
        let raw;
        if (format === "raw") raw = keyBytes(keyData, "importKey");
        else if (jwk) { if (jwk.kty !== "oct") throw fail("DataError", "importKey: an oct JWK is needed"); raw = unb64u(jwk.k, "k"); }
        else throw fail("NotSupportedError", `importKey: AES keys are not imported as ${format}`);
        aesLength(raw.length * 8);
        return mint("secret", !!extractable, { name: a.name, length: raw.length * 8 }, usages, raw);
      }
      if (a.name === "HKDF" || a.name === "PBKDF2") {
        if (format !== "raw") throw fail("NotSupportedError", `importKey: ${a.name} keys are imported as raw only`);
        if (extractable) throw fail("SyntaxError", `importKey: ${a.name} keys cannot be extractable`);
        checkUsages(usages, allowed[a.name], `an ${a.name} key`);
        return mint("secret", false, { name: a.name }, usages, keyBytes(keyData, "importKey"));
      }
      if (a.name === "ECDSA" || a.name === "ECDH") {
        curve(a);
        const algorithm = { name: a.name, namedCurve: "P-256" };
        const asPublic = (point) => { checkUsages(usages, allowed[a.name].public, `an ${a.name} public key`); return mint("public", true, algorithm, usages, point); };
        const asPrivate = (d) => {
          checkUsages(usages, allowed[a.name].private, `an ${a.name} private key`);
          if (!usages.length) throw fail("SyntaxError", `importKey: a private key needs the usage ${allowed[a.name].private.join(" or ")}`);
          return mint("private", !!extractable, algorithm, usages, d);
        };
        if (format === "raw") return asPublic(native(() => ecPoint(keyBytes(keyData, "importKey"))));
        if (format === "spki") return asPublic(native(() => ecFromDer("spki", keyBytes(keyData, "importKey"))));
        if (format === "pkcs8") return asPrivate(native(() => ecFromDer("pkcs8", keyBytes(keyData, "importKey"))));
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
        throw fail("NotSupportedError", `importKey: ${a.name} keys are not imported as ${format}`);
      }
      if (a.name === "Ed25519" || a.name === "X25519") {
        const algorithm = { name: a.name };
        const asPublic = (x) => {
          checkUsages(usages, allowed[a.name].public, `an ${a.name} public key`);
          if (x.length !== 32) throw fail("DataError", `importKey: an ${a.name} public key is 32 bytes`);
          return mint("public", true, algorithm, usages, x);
        };
        const asPrivate = (d) => {
          checkUsages(usages, allowed[a.name].private, `an ${a.name} private key`);
          if (!usages.length) throw fail("SyntaxError", `importKey: a private key needs the usage ${allowed[a.name].private.join(" or ")}`);
          return mint("private", !!extractable, algorithm, usages, d);
        };
        if (format === "raw") return asPublic(keyBytes(keyData, "importKey"));
        if (format === "spki") return asPublic(native(() => okpFromDer(a.name, "spki", keyBytes(keyData, "importKey"))));
        if (format === "pkcs8") return asPrivate(native(() => okpFromDer(a.name, "pkcs8", keyBytes(keyData, "importKey"))));
        if (jwk) {
          if (jwk.kty !== "OKP" || jwk.crv !== a.name) throw fail("DataError", `importKey: an OKP ${a.name} JWK is needed`);
          const x = unb64u(jwk.x, "x");
          if (jwk.d === undefined) return asPublic(x);
          const d = unb64u(jwk.d, "d");
          if (d.length !== 32) throw fail("DataError", `importKey: JWK d of ${a.name} is 32 bytes`);
          if (!ctEq(native(() => okpPublic(a.name, d)), x)) throw fail("DataError", "importKey: JWK d does not match x");
          return asPrivate(d);
        }
        throw fail("NotSupportedError", `importKey: ${a.name} keys are not imported as ${format}`);
      }
      if (has(RSA, a.name)) {
        const hash = hashOf(a.hash, "importKey");
        if (format === "pkcs8" || (jwk && jwk.d !== undefined)) throw fail("NotSupportedError", `importKey: ${NO_RSA_PRIVATE}`);
        let described;
        if (format === "spki") described = native(() => rsaFromSpki(keyBytes(keyData, "importKey")));
        else if (jwk) {
          if (jwk.kty !== "RSA") throw fail("DataError", "importKey: an RSA JWK is needed");
          if (jwk.alg !== undefined && jwk.alg !== rsaAlg(a.name, hash)) throw fail("DataError", `importKey: the JWK's alg ${jwk.alg} is not ${rsaAlg(a.name, hash)}`);
          described = native(() => rsaFromJwk(unb64u(jwk.n, "n"), unb64u(jwk.e, "e")));
        } else throw fail("NotSupportedError", `importKey: RSA public keys are imported as spki or jwk`);
        checkUsages(usages, allowed[a.name].public, `an ${a.name} public key`);
        const [spki, modulusLength, publicExponent] = described;
        return mint("public", true, { name: a.name, modulusLength, publicExponent, hash: { name: hash } }, usages, spki);
      }
      throw fail("NotSupportedError", `importKey: ${a.name} keys are not imported`);
  }
  Object.assign(ops, {
    exportKey(format, key) {
      const record = slots(key, "exportKey");
      if (!record.extractable) throw fail("InvalidAccessError", "exportKey: the key is not extractable");
      const { key: k, type, algorithm, usages } = record;
      const name = algorithm.name;
      const okp = name === "Ed25519" || name === "X25519";
      if (has(RSA, name)) {
        if (format === "spki") return buffer(Uint8Array.from(k));
        if (format === "jwk") {
          const [n, e] = native(() => rsaJwk(k));
          return { kty: "RSA", n: b64u(n), e: b64u(e), alg: rsaAlg(name, algorithm.hash.name), key_ops: [...usages], ext: true };
        }
        throw fail("NotSupportedError", `exportKey: an RSA public key is exported as spki or jwk`);
      }
      if (format === "raw" && type !== "private") return buffer(Uint8Array.from(k));
      if (format === "spki" && type === "public") return buffer(native(() => okp ? okpDer(name, "spki", k) : ecDer("spki", k)));
      if (format === "pkcs8" && type === "private") return buffer(native(() => okp ? okpDer(name, "pkcs8", k) : ecDer("pkcs8", k)));
      if (format === "jwk") {
        const common = { key_ops: [...usages], ext: true };
        if (name === "HMAC") return { kty: "oct", k: b64u(k), alg: `HS${algorithm.hash.name.slice(4)}`, ...common };
        if (has(AES, name)) return { kty: "oct", k: b64u(k), alg: `A${algorithm.length}${name.slice(4)}`, ...common };
        if (okp) {
          const x = type === "private" ? native(() => okpPublic(name, k)) : k;
          const jwk = { kty: "OKP", crv: name, x: b64u(x), ...common };
          if (type === "private") jwk.d = b64u(k);
          return jwk;
        }
        const point = type === "private" ? native(() => ecPublic(k)) : k;
        const jwk = { kty: "EC", crv: "P-256", x: b64u(point.slice(1, 33)), y: b64u(point.slice(33, 65)), ...common };
        if (type === "private") jwk.d = b64u(k);
        return jwk;
      }
      throw fail("NotSupportedError", `exportKey: a ${type} ${name} key is not exported as ${format}`);
    },
    sign(algorithm, key, data) {
      const a = normalize(algorithm, "sign");
      const k = use(key, a.name, "sign");
      if (a.name === "HMAC") return buffer(native(() => hmacOf(slots(key, "sign").algorithm.hash.name, k, bytesOf(data, "sign"))));
      if (a.name === "ECDSA") return buffer(native(() => ecSign(k, hashOf(a.hash, "sign"), bytesOf(data, "sign"))));
      if (a.name === "Ed25519") return buffer(native(() => edSign(k, bytesOf(data, "sign"))));
      throw fail("NotSupportedError", `sign: ${a.name} does not sign`);
    },
    verify(algorithm, key, signature, data) {
      const a = normalize(algorithm, "verify");
      const k = use(key, a.name, "verify");
      const sig = bytesOf(signature, "verify");
      if (a.name === "HMAC") return ctEq(native(() => hmacOf(slots(key, "verify").algorithm.hash.name, k, bytesOf(data, "verify"))), sig);
      if (a.name === "ECDSA") return native(() => ecVerify(k, hashOf(a.hash, "verify"), bytesOf(data, "verify"), sig));
      if (a.name === "Ed25519") return native(() => edVerify(k, bytesOf(data, "verify"), sig));
      if (a.name === "RSASSA-PKCS1-v1_5" || a.name === "RSA-PSS") {
        // RSA-PSS's saltLength: WebIDL's [EnforceRange] unsigned long, required.
        const salt = a.name === "RSA-PSS" ? Number(a.saltLength) : 0;
        if (!(salt >= 0 && salt <= 0xffffffff && salt % 1 === 0)) throw new TypeError("verify: RSA-PSS needs a saltLength (bytes)");
        return native(() => rsaVerify(a.name, slots(key, "verify").algorithm.hash.name, k, bytesOf(data, "verify"), sig, salt));
      }
      throw fail("NotSupportedError", `verify: ${a.name} does not verify`);
    },
    deriveBits(algorithm, baseKey, length = null) {
      const a = normalize(algorithm, "deriveBits");
      const k = use(baseKey, a.name, "deriveBits");
      // WebIDL's `unsigned long?` (a BigInt throws; NaN is 0; modulo 2^32).
      const bits = length === null ? null : (+length) >>> 0;
      return buffer(derive(a, baseKey, k, bits, "deriveBits"));
    },
    deriveKey(algorithm, baseKey, derivedKeyType, extractable, usages) {
      const a = normalize(algorithm, "deriveKey");
      const target = normalize(derivedKeyType, "deriveKey");
      const k = use(baseKey, a.name, "deriveKey");
      const bits = derive(a, baseKey, k, keyLength(target), "deriveKey");
      return ops.importKey("raw", bits, target, extractable, usages);
    },
    // wrapKey and unwrapKey: exportKey then encrypt, and decrypt then importKey, with the
    // wrapping key's own usage (AES-GCM is the one wrapping algorithm here).
    wrapKey(format, key, wrappingKey, wrapAlgorithm) {
      const exported = ops.exportKey(format, key);
      const data = format === "jwk" ? new TextEncoder().encode(JSON.stringify(exported)) : exported;
      if (normalize(wrapAlgorithm, "wrapKey").name === "RSA-OAEP") return oaep(wrapAlgorithm, wrappingKey, data, "wrapKey");
      return gcm(true, wrapAlgorithm, wrappingKey, data, "wrapKey");
    },
    unwrapKey(format, wrappedKey, unwrappingKey, unwrapAlgorithm, unwrappedKeyAlgorithm, extractable, usages) {
      const opened = trusted(gcm(false, unwrapAlgorithm, unwrappingKey, wrappedKey, "unwrapKey"));
      let keyData = opened;
      if (format === "jwk") {
        const text = decodeUtf8(opened, true);
        try { keyData = parseJson(text); } catch (_) { keyData = null; }
        if (text === null || keyData === null || typeof keyData !== "object") throw fail("DataError", "unwrapKey: the unwrapped bytes are not a JWK");
      }
      return ops.importKey(format, keyData, unwrappedKeyAlgorithm, extractable, usages);
    },
    encrypt(algorithm, key, data) {
      if (normalize(algorithm, "encrypt").name === "RSA-OAEP") return oaep(algorithm, key, data, "encrypt");
      return gcm(true, algorithm, key, data);
    },
    decrypt(algorithm, key, data) { return gcm(false, algorithm, key, data); },
  });
  // The bits a derivation gives (deriveBits' `length`; null is the whole secret for ECDH):
  // ECDH's shared secret, cut to `length` bits; HKDF's and PBKDF2's output of `length` bits,
  // which must be whole bytes.
  const derive = (a, key, k, length, operation) => {
    if (a.name === "ECDH" || a.name === "X25519") {
      const peer = apply(weakGet, material, [a.public]);
      if (!peer) throw new TypeError(`${operation}: ${a.name} needs the peer's public key as \`public\``);
      if (peer.type !== "public") throw fail("InvalidAccessError", `${operation}: ${a.name} needs the peer's public key as \`public\``);
      if (peer.algorithm.name !== a.name) throw fail("InvalidAccessError", `${operation}: the peer's key is for ${peer.algorithm.name}, not ${a.name}`);
      if (slots(key, operation).type !== "private") throw fail("InvalidAccessError", `${operation}: ${a.name} derives from a private key`);
      const secret = native(() => a.name === "ECDH" ? ecdhOf(k, peer.key) : x25519Of(k, peer.key));
      if (length === null) return trusted(secret);
      const bits = Number(length);
      if (!(bits >= 0) || bits > secret.length * 8) throw fail("OperationError", `${operation}: ${a.name} gives at most 256 bits`);
      const out = trusted(apply(typedSlice, secret, [0, Math.ceil(bits / 8)]));
      if (bits % 8) out[out.length - 1] &= 0xff << (8 - (bits % 8));
      return out;
    }
    if (a.name !== "HKDF" && a.name !== "PBKDF2") throw fail("NotSupportedError", `${operation}: ${a.name} does not derive`);
    const bits = length === null ? NaN : Number(length);
    if (!(bits >= 0) || bits % 8) throw fail("OperationError", `${operation}: ${a.name} derives whole bytes (a length that is a multiple of 8)`);
    const hash = hashOf(a.hash, operation);
    const salt = bytesOf(a.salt, `${operation} (salt)`);
    if (a.name === "HKDF") return trusted(native(() => hkdfOf(hash, k, salt, bytesOf(a.info, `${operation} (info)`), bits / 8)));
    if (bits === 0) throw fail("OperationError", `${operation}: PBKDF2 derives at least one byte`);
    const iterations = Number(a.iterations);
    if (!(iterations >= 1 && iterations <= 0xffffffff)) throw fail("OperationError", `${operation}: PBKDF2 needs 1 to 4294967295 iterations`);
    return trusted(native(() => pbkdf2Of(hash, k, salt, iterations, bits / 8)));
  };
  // The length in bits of the key deriveKey makes (WebCrypto's "get key length").
  const keyLength = (target) => {
    if (has(AES, target.name)) {
      if (target.length !== 128 && target.length !== 256) throw fail(target.length === 192 ? "NotSupportedError" : "OperationError", `deriveKey: an ${target.name} key of ${target.length} bits (128 and 256 are available)`);
      return target.length;
    }
    if (target.name === "HMAC") {
      if (target.length === undefined) return blockBits[hashOf(target.hash, "deriveKey")];
      const bits = Number(target.length);
      if (!(bits > 0)) throw fail("OperationError", "deriveKey: an HMAC key of no bits");
      return bits;
    }
    throw fail("NotSupportedError", `deriveKey: ${target.name} keys are not derived (AES and HMAC keys are)`);
  };
  // RSA-OAEP's encryption to a public key (`label`: UTF-8 bytes, which the library takes as a
  // string; another label is refused).
  const oaep = (algorithm, key, data, usage) => {
    const a = normalize(algorithm, usage);
    const k = use(key, "RSA-OAEP", usage);
    let label;
    if (a.label !== undefined) {
      label = decodeUtf8(bytesOf(a.label, `${usage} (label)`), true);
      if (label === null) throw fail("NotSupportedError", `${usage}: an RSA-OAEP label that is not UTF-8 is not available in this runtime`);
      if (label === "") label = undefined;
    }
    return buffer(native(() => rsaEncrypt(slots(key, usage).algorithm.hash.name, k, bytesOf(data, usage), label)));
  };
  // The AES modes for encrypt and decrypt, or (`usage`) for wrapKey and unwrapKey (AES-KW only
  // wraps).
  const gcm = (encrypt, algorithm, key, data, usage = encrypt ? "encrypt" : "decrypt") => {
    const operation = encrypt ? "encrypt" : "decrypt";
    const a = normalize(algorithm, usage);
    const wrapping = usage === "wrapKey" || usage === "unwrapKey";
    if (!has(AES, a.name) || (a.name === "AES-KW" && !wrapping)) throw fail("NotSupportedError", `${usage}: ${a.name} does not ${operation}`);
    const k = use(key, a.name, usage);
    const input = bytesOf(data, usage);
    let out;
    if (a.name === "AES-GCM") {
      if (a.tagLength !== undefined && a.tagLength !== 128) throw fail("NotSupportedError", `${usage}: only a 128-bit tag is available in this runtime`);
      const iv = bytesOf(a.iv, `${usage} (iv)`);
      const aad = a.additionalData === undefined ? new Uint8Array(0) : bytesOf(a.additionalData, `${usage} (additionalData)`);
      out = native(() => aesGcm(encrypt, k, iv, input, aad));
      if (out === null) throw fail("OperationError", `${usage}: the data does not authenticate under this key and iv`);
    } else if (a.name === "AES-CTR") {
      const counter = bytesOf(a.counter, `${usage} (counter)`);
      // The counter's length in bits, 1 to 128 (anything else the native refuses).
      const bits = +a.length;
      out = native(() => aesCtr(k, counter, bits >= 1 && bits <= 128 && bits % 1 === 0 ? bits : 0, input));
    } else if (a.name === "AES-CBC") {
      out = native(() => aesCbc(encrypt, k, bytesOf(a.iv, `${usage} (iv)`), input));
    } else {
      out = native(() => aesKw(encrypt, k, input));
    }
    // unwrapKey keeps the bytes (a key) away from the agent-visible prototypes.
    return usage === "unwrapKey" ? out : buffer(out);
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
