//! `crypto.subtle`'s key derivation in JavaScript agents through the native agent routes: HKDF
//! and PBKDF2 against their RFCs' vectors, ECDH on P-256 against the protocol crate's own
//! (the test's key pair with the agent's), `deriveKey` into AES-GCM and HMAC keys, `wrapKey`
//! and `unwrapKey`, and the errors WebCrypto names.

use std::collections::BTreeMap;

use hypervisor_client::agents::Deployment;
use hypervisor_protocol::agents::JsSource;
use hypervisor_protocol::{ClientSecret, EncodedPublicKey};
use serde_json::json;

use crate::harness::TestServer;

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
  };
  return out;
}
"#;

#[test]
fn key_derivation_through_the_native_agent_routes() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    client
        .deploy_js(
            &owner,
            &Deployment {
                name: "derive",
                description: "crypto.subtle key derivation",
                ..Deployment::default()
            },
            &JsSource {
                main: "main.js".into(),
                modules: BTreeMap::from([("main.js".to_string(), DERIVE.to_string())]),
            },
        )
        .expect("deploy");
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
        })
    );
}
