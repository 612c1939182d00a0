//! `crypto.subtle` in JavaScript agents through the native agent routes, beyond
//! tests/e2e/web_platform.rs's digests, HMAC, ECDSA and AES-GCM: key derivation (HKDF and PBKDF2
//! against their RFCs' vectors, ECDH on P-256 against the protocol crate's own from the test's
//! key pair, `deriveKey` into AES-GCM and HMAC keys), `wrapKey` and `unwrapKey`, Ed25519 and
//! X25519 against RFC 8032's and RFC 7748's vectors, AES-CTR, AES-CBC and AES-KW against NIST
//! SP 800-38A's and RFC 3394's, tampering with keys and built-ins, and the errors WebCrypto names.

use hypervisor_protocol::{ClientSecret, EncodedPublicKey};
use serde_json::json;

use crate::harness::{TestServer, deploy_js_main};

const DERIVE: &str = r#"
const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");
const bytes = (h) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));
const text = (t) => new TextEncoder().encode(t);
const failure = (p) => p.then(() => "succeeded", (e) => e.name);
export async function handler(event) {
  const s = crypto.subtle, out = {};
  // RFC 5869, test case 1 (HKDF-SHA256, 42 bytes).
  const ikm = await s.importKey("raw", new Uint8Array(22).fill(0x0b), "HKDF", false, ["deriveBits", "deriveKey"]);
  const hkdf = { name: "HKDF", hash: "SHA-256", salt: bytes("000102030405060708090a0b0c"), info: bytes("f0f1f2f3f4f5f6f7f8f9") };
  out.hkdf = hex(await s.deriveBits(hkdf, ikm, 42 * 8));
  // RFC 6070 (PBKDF2-HMAC-SHA1): "password", "salt", 2 and 4096 iterations, 20 bytes.
  const password = await s.importKey("raw", text("password"), { name: "PBKDF2" }, false, ["deriveBits", "deriveKey"]);
  const pbkdf2 = (iterations) => ({ name: "PBKDF2", hash: "SHA-1", salt: text("salt"), iterations });
  out.pbkdf2 = [hex(await s.deriveBits(pbkdf2(2), password, 160)), hex(await s.deriveBits(pbkdf2(4096), password, 160))];
  // ECDH with the test's key: the shared secret, whole and cut to 12 bits.
  const pair = await s.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
  const peer = await s.importKey("raw", bytes(event.data.peer), { name: "ECDH", namedCurve: "P-256" }, false, []);
  out.ecdhPublic = hex(await s.exportKey("raw", pair.publicKey));
  out.ecdh = hex(await s.deriveBits({ name: "ECDH", public: peer }, pair.privateKey, null));
  out.ecdh12 = hex(await s.deriveBits({ name: "ECDH", public: peer }, pair.privateKey, 12));
  out.usages = [pair.publicKey.usages, pair.privateKey.usages];
  // deriveKey: an AES-GCM key from HKDF is the same bytes deriveBits gives, and encrypts.
  const aes = await s.deriveKey(hkdf, ikm, { name: "AES-GCM", length: 256 }, true, ["encrypt", "decrypt"]);
  out.aesKey = [hex(await s.exportKey("raw", aes)), hex(await s.deriveBits(hkdf, ikm, 256))];
  const iv = new Uint8Array(12);
  out.aesRoundTrip = new TextDecoder().decode(await s.decrypt({ name: "AES-GCM", iv }, aes, await s.encrypt({ name: "AES-GCM", iv }, aes, text("sealed"))));
  // ... and an HMAC key from PBKDF2 (its length defaults to the hash's block, 512 bits).
  const mac = await s.deriveKey(pbkdf2(2), password, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
  out.hmacKey = [mac.algorithm.length, mac.extractable, await s.verify("HMAC", mac, await s.sign("HMAC", mac, text("m")), text("m"))];
  // wrapKey and unwrapKey: an HMAC key wrapped as a JWK under AES-GCM, and unwrapped.
  const wrapper = await s.generateKey({ name: "AES-GCM", length: 256 }, false, ["wrapKey", "unwrapKey"]);
  const shared = await s.importKey("raw", text("a shared secret"), { name: "HMAC", hash: "SHA-256" }, true, ["sign"]);
  const wrapping = { name: "AES-GCM", iv: new Uint8Array(12).fill(7) };
  const wrapped = await s.wrapKey("jwk", shared, wrapper, wrapping);
  const unwrapped = await s.unwrapKey("jwk", wrapped, wrapper, wrapping, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  out.wrap = [
    new TextDecoder().decode(wrapped).includes("kty"),
    hex(await s.sign("HMAC", unwrapped, text("m"))) === hex(await s.sign("HMAC", shared, text("m"))),
    unwrapped.extractable,
    await failure(s.wrapKey("raw", shared, aes, wrapping)),
    await failure(s.unwrapKey("raw", new Uint8Array(32), wrapper, wrapping, "AES-GCM", false, ["encrypt"])),
  ];
  // Errors, as WebCrypto names them.
  const signing = await s.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  const bitsOnly = await s.importKey("raw", text("k"), "HKDF", false, ["deriveBits"]);
  out.errors = {
    hkdfPartialByte: await failure(s.deriveBits(hkdf, ikm, 7)),
    hkdfTooLong: await failure(s.deriveBits(hkdf, ikm, 255 * 32 * 8 + 8)),
    hkdfNoLength: await failure(s.deriveBits(hkdf, ikm)),
    pbkdf2NoIterations: await failure(s.deriveBits(pbkdf2(0), password, 160)),
    extractableKdf: await failure(s.importKey("raw", text("k"), "HKDF", true, ["deriveBits"])),
    kdfAsJwk: await failure(s.importKey("jwk", { kty: "oct", k: "aw" }, "PBKDF2", false, ["deriveBits"])),
    ecdsaPeer: await failure(s.deriveBits({ name: "ECDH", public: signing.publicKey }, pair.privateKey, 256)),
    ecdhTooLong: await failure(s.deriveBits({ name: "ECDH", public: peer }, pair.privateKey, 264)),
    noDeriveKeyUsage: await failure(s.deriveKey(hkdf, bitsOnly, { name: "AES-GCM", length: 128 }, false, ["encrypt"])),
    exportKdf: await failure(s.exportKey("raw", ikm)),
    ecdhOnP384: await failure(s.generateKey({ name: "ECDH", namedCurve: "P-384" }, false, ["deriveBits"])),
    noUsages: await failure(s.importKey("raw", text("k"), "HKDF", false, [])),
    // 2^35 bits is 0 as WebIDL's unsigned long; 2^31 - 8 bits (256 MiB) is more memory than
    // the agent has.
    pbkdf2Wraps: await failure(s.deriveBits(pbkdf2(1), password, 2 ** 35)),
    pbkdf2Huge: await failure(s.deriveBits(pbkdf2(1), password, 2 ** 31 - 8)),
  };
  // 12.5 bits is 12, as WebIDL converts it.
  out.ecdh12Fraction = hex(await s.deriveBits({ name: "ECDH", public: peer }, pair.privateKey, 12.5));
  // An agent that redefines a key's getters or patches the built-ins the key material passes
  // through gets nothing: the key's own slots decide, and the material never meets the patches.
  const secretKey = await s.importKey("raw", text("never leaves"), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  Object.defineProperty(secretKey, "extractable", { value: true });
  Object.defineProperty(secretKey, "usages", { value: ["sign", "verify"] });
  const seen = [];
  const { slice } = ArrayBuffer.prototype, { includes } = Array.prototype;
  ArrayBuffer.prototype.slice = function (...a) { seen.push(new TextDecoder().decode(new Uint8Array(this))); return slice.apply(this, a); };
  Array.prototype.includes = () => true;
  try {
    out.tampered = [
      await failure(s.exportKey("raw", secretKey)),
      await failure(s.sign("HMAC", secretKey, text("m"))),
    ];
    const kek = await s.generateKey({ name: "AES-GCM", length: 128 }, false, ["wrapKey", "unwrapKey"]);
    const exportable = await s.importKey("raw", text("wrapped secret"), { name: "HMAC", hash: "SHA-256" }, true, ["sign"]);
    const w = { name: "AES-GCM", iv: new Uint8Array(12) };
    const wrappedRaw = await s.wrapKey("raw", exportable, kek, w);
    seen.length = 0;
    await s.unwrapKey("raw", wrappedRaw, kek, w, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    await s.deriveKey(hkdf, ikm, { name: "HMAC", hash: "SHA-256", length: 256 }, false, ["sign"]);
    out.seenByPatch = seen.filter((t) => t.includes("wrapped secret")).length;
    // A JWK unwrapped: its base64url text meets no patched String or RegExp method either.
    const secretText = (await s.exportKey("jwk", exportable)).k;
    const wrappedJwk = await s.wrapKey("jwk", exportable, kek, w);
    const { replace } = String.prototype, { test } = RegExp.prototype;
    String.prototype.replace = function (...a) { seen.push(String(this)); return replace.apply(this, a); };
    RegExp.prototype.test = function (t) { seen.push(String(t)); return test.call(this, t); };
    try {
      seen.length = 0;
      await s.unwrapKey("jwk", wrappedJwk, kek, w, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
      out.seenJwkByPatch = seen.filter((t) => t.includes(secretText)).length;
    } finally {
      String.prototype.replace = replace;
      RegExp.prototype.test = test;
    }
  } finally {
    ArrayBuffer.prototype.slice = slice;
    Array.prototype.includes = includes;
  }
  return out;
}
"#;

#[test]
fn key_derivation_through_the_native_agent_routes() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    deploy_js_main(&server, &owner, "derive", DERIVE);
    let mine = ClientSecret::generate().unwrap();
    let r = client
        .invoke(
            "derive",
            json!({"data": {"peer": mine.public_key().to_hex()}}),
        )
        .unwrap();
    assert!(r.ok, "{r:?}");
    let out = r.result_json().unwrap();
    assert_eq!(
        out["hkdf"],
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    );
    assert_eq!(
        out["pbkdf2"],
        json!([
            "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957",
            "4b007901b765489abead49d926f721d065a429c1"
        ])
    );
    // The agent's ECDH secret is the one the protocol crate computes from this side.
    let theirs = EncodedPublicKey::from_hex("agent", out["ecdhPublic"].as_str().unwrap())
        .expect("a P-256 point");
    let shared = hex::encode(*mine.diffie_hellman(&theirs));
    assert_eq!(out["ecdh"], shared.as_str());
    // 12 bits: the first byte and the high nibble of the second.
    let second = u8::from_str_radix(&shared[2..4], 16).unwrap() & 0xf0;
    assert_eq!(out["ecdh12"], format!("{}{second:02x}", &shared[..2]));
    assert_eq!(out["usages"], json!([[], ["deriveBits"]]));
    assert_eq!(out["aesKey"][0], out["aesKey"][1]);
    assert_eq!(out["aesKey"][0].as_str().unwrap().len(), 64);
    assert_eq!(out["aesRoundTrip"], "sealed");
    assert_eq!(out["hmacKey"], json!([512, false, true]));
    // Wrapped, the key's JWK is not readable; unwrapped, it signs as the original; a key
    // without the usage cannot wrap, and bytes that do not authenticate do not unwrap.
    assert_eq!(
        out["wrap"],
        json!([false, true, false, "InvalidAccessError", "OperationError"])
    );
    assert_eq!(
        out["tampered"],
        json!(["InvalidAccessError", "InvalidAccessError"])
    );
    assert_eq!(out["seenByPatch"], 0);
    assert_eq!(out["seenJwkByPatch"], 0);
    assert_eq!(out["ecdh12Fraction"], out["ecdh12"]);
    assert_eq!(
        out["errors"],
        json!({
            "hkdfPartialByte": "OperationError",
            "hkdfTooLong": "OperationError",
            "hkdfNoLength": "OperationError",
            "pbkdf2NoIterations": "OperationError",
            "extractableKdf": "SyntaxError",
            "kdfAsJwk": "NotSupportedError",
            "ecdsaPeer": "InvalidAccessError",
            "ecdhTooLong": "OperationError",
            "noDeriveKeyUsage": "InvalidAccessError",
            "exportKdf": "InvalidAccessError",
            "ecdhOnP384": "NotSupportedError",
            "noUsages": "SyntaxError",
            "pbkdf2Wraps": "OperationError",
            "pbkdf2Huge": "OperationError",
        })
    );
}

const CURVE25519: &str = r#"
const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");
const bytes = (h) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));
const b64u = (h) => btoa(String.fromCharCode(...bytes(h))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const failure = (p) => p.then((v) => v, (e) => e.name);
export async function handler(event) {
  const s = crypto.subtle, out = {}, v = event.data;
  // RFC 8032 §7.1, test 1: the key as a JWK, the empty message's signature.
  const signer = await s.importKey("jwk", { kty: "OKP", crv: "Ed25519", d: b64u(v.edSecret), x: b64u(v.edPublic) }, "Ed25519", true, ["sign"]);
  out.edSignature = hex(await s.sign("Ed25519", signer, new Uint8Array(0)));
  const verifier = await s.importKey("raw", bytes(v.edPublic), { name: "Ed25519" }, true, ["verify"]);
  out.edVerifies = await s.verify("Ed25519", verifier, bytes(out.edSignature), new Uint8Array(0));
  out.edRejects = [
    await s.verify("Ed25519", verifier, bytes(out.edSignature), new Uint8Array(1)),
    await s.verify("Ed25519", verifier, bytes(out.edSignature).slice(1), new Uint8Array(0)),
  ];
  // Keys through PKCS #8 and SPKI and back (RFC 8410's forms), and a generated pair.
  const pkcs8 = await s.exportKey("pkcs8", signer);
  const again = await s.importKey("pkcs8", pkcs8, "Ed25519", true, ["sign"]);
  out.edPkcs8 = [hex(pkcs8), (await s.exportKey("jwk", again)).x === b64u(v.edPublic)];
  out.edSpki = hex(await s.exportKey("spki", verifier));
  const pair = await s.generateKey("Ed25519", false, ["sign", "verify"]);
  const message = new TextEncoder().encode("signed by a generated key");
  out.generated = [pair.privateKey.algorithm.name, pair.publicKey.usages, await s.verify("Ed25519", pair.publicKey, await s.sign("Ed25519", pair.privateKey, message), message)];
  // RFC 7748 §6.1: Alice's private key with Bob's public key.
  const alice = await s.importKey("jwk", { kty: "OKP", crv: "X25519", d: b64u(v.xAlice), x: b64u(v.xAlicePublic) }, "X25519", false, ["deriveBits"]);
  const bob = await s.importKey("raw", bytes(v.xBobPublic), "X25519", true, []);
  out.x25519 = hex(await s.deriveBits({ name: "X25519", public: bob }, alice, 256));
  out.xSpki = hex(await s.exportKey("spki", bob));
  // A peer key of small order gives an all-zero secret: refused.
  const zero = await s.importKey("raw", new Uint8Array(32), "X25519", true, []);
  out.errors = {
    smallOrder: await failure(s.deriveBits({ name: "X25519", public: zero }, alice, 256)),
    edPeerForX: await failure(s.deriveBits({ name: "X25519", public: verifier }, alice, 256)),
    shortKey: await failure(s.importKey("raw", new Uint8Array(31), "Ed25519", true, ["verify"])),
    badJwk: await failure(s.importKey("jwk", { kty: "OKP", crv: "Ed25519", d: b64u(v.xAlice), x: b64u(v.edPublic) }, "Ed25519", false, ["sign"])),
    notSpki: await failure(s.importKey("spki", bytes(out.edSpki.replace("2b6570", "2b656e")), "Ed25519", true, ["verify"])),
    privateRaw: await failure(s.importKey("raw", bytes(v.edSecret), "Ed25519", true, ["sign"])),
  };
  return out;
}
"#;

#[test]
fn ed25519_and_x25519_through_the_native_agent_routes() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    deploy_js_main(&server, &owner, "curves", CURVE25519);
    let vectors = json!({
        // RFC 8032 §7.1, TEST 1.
        "edSecret": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "edPublic": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        // RFC 7748 §6.1.
        "xAlice": "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        "xAlicePublic": "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
        "xBobPublic": "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
    });
    let r = client.invoke("curves", json!({ "data": vectors })).unwrap();
    assert!(r.ok, "{r:?}");
    let out = r.result_json().unwrap();
    assert_eq!(
        out["edSignature"],
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    );
    assert_eq!(out["edVerifies"], true);
    assert_eq!(out["edRejects"], json!([false, false]));
    // RFC 8410's PKCS #8 (§7) and SubjectPublicKeyInfo (§4) around the RFC 8032 key.
    assert_eq!(
        out["edPkcs8"],
        json!([
            "302e020100300506032b657004220420\
             9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            true
        ])
    );
    assert_eq!(
        out["edSpki"],
        "302a300506032b6570032100d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );
    assert_eq!(out["generated"], json!(["Ed25519", ["verify"], true]));
    assert_eq!(
        out["x25519"],
        "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
    );
    assert_eq!(
        out["xSpki"],
        "302a300506032b656e032100de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    );
    assert_eq!(
        out["errors"],
        json!({
            "smallOrder": "OperationError",
            "edPeerForX": "InvalidAccessError",
            "shortKey": "DataError",
            "badJwk": "DataError",
            "notSpki": "DataError",
            "privateRaw": "SyntaxError",
        })
    );
}

const AES_MODES: &str = r#"
const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");
const bytes = (h) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));
const failure = (p) => p.then(() => "succeeded", (e) => e.name);
export async function handler() {
  const s = crypto.subtle, out = {};
  // NIST SP 800-38A F.5.1 (CTR-AES128) with a 64-bit counter, and F.2.1 (CBC-AES128).
  const nist = bytes("2b7e151628aed2a6abf7158809cf4f3c");
  const plain = bytes("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
  const ctrKey = await s.importKey("raw", nist, "AES-CTR", false, ["encrypt", "decrypt"]);
  const counter = bytes("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  const ctr = await s.encrypt({ name: "AES-CTR", counter, length: 64 }, ctrKey, plain);
  out.ctr = [hex(ctr), hex(await s.decrypt({ name: "AES-CTR", counter, length: 64 }, ctrKey, ctr))];
  // An 8-bit counter wraps within its byte: the second block's counter is ...fe00, not ...ff00.
  const zeros = new Uint8Array(32);
  const wrapped = new Uint8Array(await s.encrypt({ name: "AES-CTR", counter, length: 8 }, ctrKey, zeros));
  const second = await s.encrypt({ name: "AES-CTR", counter: bytes("f0f1f2f3f4f5f6f7f8f9fafbfcfdfe00"), length: 8 }, ctrKey, new Uint8Array(16));
  out.ctrWraps = hex(wrapped.slice(16)) === hex(second);
  const cbcKey = await s.importKey("raw", nist, "AES-CBC", true, ["encrypt", "decrypt"]);
  const iv = bytes("000102030405060708090a0b0c0d0e0f");
  const cbc = await s.encrypt({ name: "AES-CBC", iv }, cbcKey, plain.slice(0, 16));
  out.cbc = [hex(cbc).slice(0, 32), cbc.byteLength, new TextDecoder().decode(await s.decrypt({ name: "AES-CBC", iv }, cbcKey, await s.encrypt({ name: "AES-CBC", iv }, cbcKey, new TextEncoder().encode("padded to a block"))))];
  out.cbcJwk = (await s.exportKey("jwk", cbcKey)).alg;
  // RFC 3394 §4.1: a 128-bit key wrapped with a 128-bit KEK, then unwrapped.
  const kek = await s.importKey("raw", bytes("000102030405060708090a0b0c0d0e0f"), "AES-KW", false, ["wrapKey", "unwrapKey"]);
  const data = await s.importKey("raw", bytes("00112233445566778899aabbccddeeff"), "AES-GCM", true, ["encrypt"]);
  const kw = await s.wrapKey("raw", data, kek, "AES-KW");
  const back = await s.unwrapKey("raw", kw, kek, "AES-KW", "AES-GCM", true, ["encrypt"]);
  out.kw = [hex(kw), hex(await s.exportKey("raw", back))];
  const forged = new Uint8Array(kw); forged[0] ^= 1;
  const wrongKey = await s.importKey("raw", new Uint8Array(16).fill(9), "AES-CBC", false, ["decrypt"]);
  out.errors = {
    kwForged: await failure(s.unwrapKey("raw", forged, kek, "AES-KW", "AES-GCM", true, ["encrypt"])),
    kwEncrypts: await failure(s.encrypt("AES-KW", kek, new Uint8Array(16))),
    ctrRepeats: await failure(s.encrypt({ name: "AES-CTR", counter, length: 1 }, ctrKey, new Uint8Array(48))),
    ctrNoLength: await failure(s.encrypt({ name: "AES-CTR", counter }, ctrKey, plain)),
    ctrShortCounter: await failure(s.encrypt({ name: "AES-CTR", counter: new Uint8Array(8), length: 64 }, ctrKey, plain)),
    cbcBadPadding: await failure(s.decrypt({ name: "AES-CBC", iv }, wrongKey, cbc)),
    cbcShortIv: await failure(s.encrypt({ name: "AES-CBC", iv: new Uint8Array(12) }, cbcKey, plain)),
    wrongMode: await failure(s.encrypt({ name: "AES-GCM", iv }, cbcKey, plain)),
  };
  return out;
}
"#;

#[test]
fn aes_ctr_cbc_and_kw_through_the_native_agent_routes() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    deploy_js_main(&server, &owner, "aes-modes", AES_MODES);
    let r = client.invoke("aes-modes", json!({})).unwrap();
    assert!(r.ok, "{r:?}");
    let out = r.result_json().unwrap();
    // NIST SP 800-38A's ciphertexts (F.5.1 blocks 1 and 2; F.2.1 block 1, then PKCS #7's block).
    assert_eq!(
        out["ctr"],
        json!([
            "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff",
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
        ])
    );
    assert_eq!(out["ctrWraps"], true);
    assert_eq!(
        out["cbc"],
        json!(["7649abac8119b246cee98e9b12e9197d", 32, "padded to a block"])
    );
    assert_eq!(out["cbcJwk"], "A128CBC");
    // RFC 3394 §4.1's wrapped key.
    assert_eq!(
        out["kw"],
        json!([
            "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5",
            "00112233445566778899aabbccddeeff"
        ])
    );
    assert_eq!(
        out["errors"],
        json!({
            "kwForged": "OperationError",
            "kwEncrypts": "NotSupportedError",
            "ctrRepeats": "OperationError",
            "ctrNoLength": "OperationError",
            "ctrShortCounter": "OperationError",
            "cbcBadPadding": "OperationError",
            "cbcShortIv": "OperationError",
            "wrongMode": "InvalidAccessError",
        })
    );
}
