//! RSA public keys in `crypto.subtle` through the native agent routes: RSASSA-PKCS1-v1_5 and
//! RSA-PSS signatures made by OpenSSL 3.0 (`openssl dgst -sha256 [-sigopt rsa_padding_mode:pss
//! -sigopt rsa_pss_saltlen:32] -sign`, a 2048-bit key made by `openssl genpkey`) verified by the
//! agent, RSA-OAEP ciphertext made by the agent opened here, JWK and SPKI round trips, and the
//! refusals: private keys (the library's private-key operations are not constant-time), keys
//! under 1024 bits, a JWK whose `alg` names another algorithm.

use base64::Engine as _;
use hypervisor_protocol::ClientSecret;
use serde_json::json;

use crate::harness::{TestServer, deploy_js_main};

/// The message OpenSSL signed.
const MESSAGE: &str = "header.payload of a token";

/// The key's SubjectPublicKeyInfo (DER, base64).
const SPKI: &[&str] = &[
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAnCBZegN4pbBz+6fxTWlwrvblXC/YMdOBS8PF+uOkFwPAOtlN",
    "N4Tqb8ocBRkiFRyr2cpPLJQgIZdRmf2ODO6e/cC11Eru5rhNaGtnXEezSSerpA6i2CiskH2P4FBbqyWUPPtRerfEEpMv",
    "Vl7K0Wflc9KgPHM7RB5N3esDw4DyPAaj71ECxtDv1/wbEXHoew/ylmGYDg21Pq0THj2amEPZo8NOIZHJcnAzNVDJR7bE",
    "F3xmByxIRrxX7ohzpuh/40P6o/YAoRM0ll3wKBpXz39voPT8U7d2do3+jZZWXd+Rn1NMDNgRB7lrYNsDImAVBoSAA+Xw",
    "vrA+zcXrNOZtR0zJCwIDAQAB",
];
/// Its private key (PKCS #8, base64), to open what the agent encrypts.
const PKCS8: &[&str] = &[
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCcIFl6A3ilsHP7p/FNaXCu9uVcL9gx04FLw8X646QX",
    "A8A62U03hOpvyhwFGSIVHKvZyk8slCAhl1GZ/Y4M7p79wLXUSu7muE1oa2dcR7NJJ6ukDqLYKKyQfY/gUFurJZQ8+1F6",
    "t8QSky9WXsrRZ+Vz0qA8cztEHk3d6wPDgPI8BqPvUQLG0O/X/BsRceh7D/KWYZgODbU+rRMePZqYQ9mjw04hkclycDM1",
    "UMlHtsQXfGYHLEhGvFfuiHOm6H/jQ/qj9gChEzSWXfAoGlfPf2+g9PxTt3Z2jf6NllZd35GfU0wM2BEHuWtg2wMiYBUG",
    "hIAD5fC+sD7Nxes05m1HTMkLAgMBAAECggEAAhwHyXfBig+TyZsvzfl2Pc71M2UsGSQ/83ueMbEgtvTkhIcKHY1ss3z6",
    "GvGHfdyIz+UFY9dOhdWrExcTc8ZHnKsdadRnXPOxjA8jcuI/IGZqUcmm1p/aEQu5RXEgg/P6iEZnB+7ytcOKWLLoL6Ml",
    "PQbkBl0SOG3mZHC3+MzFuRzicKzRee8PkrjCBx6x+yHgwx6QwSAAYB8w/lQYqdaxDtH6oxKvNWsD0BOeyQU9o8Ng4Mdw",
    "Qx7nrBvhdj4Choa/LMrXdkqxsWTBkCkGPyLsfQSREXaADp96bzSxl5+YollAES58IW7WKhia21Eam7awerzcrMkiJtU6",
    "3uieJCDASQKBgQDWiDipvgg584hkL2GRrDRGHrI4c2q/bO1lhwl0AvHMsupXvod7XunGtOhLvtYsU/7zgGFs7PK9E4kT",
    "QiB5d8pheE5LQJbqh0dVs23PCe0GTq/t2PExmNrxrK0TBxBaFoj/U5YjX7sYVHrhtG/WEir9287kG+66qFH7cqT3WyO6",
    "gwKBgQC6TgNYGBiALqfTQBojr9IE7v1Srxa+2rELiwkTqneE6i/+nHqKLg7QNyPeV93x0VyX63P4PmtF2vt0BF+58Rsl",
    "87WDCNemZth1eZA6quzdRKqBraL+JRjxN1DR61p9XlNbxtSOtbw8hJBsnl/cbGK0MT4aeFA0zCeOAI+A+16Q2QKBgB7p",
    "Q9jZY9AN0hI1bYaS3HlaBO3zW2c3p8EgQvFvVy3afb+k2VqiY2bZPDtlxPBgLfUiA2exgIxT20VmGs3Fv+hpcEaRiO1E",
    "Drg/gUv6rydggSLxRleSIcH+0nVSaD3Cz3ySq6hvK8MmsQoCeLbMqVsop9fgWnaUuDNV4oUtoalHAoGAVAmApKop0xg4",
    "h6fwooxalfMfvb5Q6kJHfkd3DrHkO8ZPY/A9rjrcX7ufqFnGOaAQvk5s/1tYlCgVKN4YOA20C0iFZdgFPoBBv6vYDT6w",
    "nZatutUSIsWlHJmxER+yr75up4VmuADuKfY6F2TRJOKXG2Ti+JmwxEAaz4kdMjcxDvECgYEAiysCBhJfAEvFC/497W9P",
    "J5bz8hXQ8B2TzbZ0a1mfqOKKxhVeqEkXJgpZJGa5aWPEM/Mf3u2x/q1QDX9fGVqLc/hfgaQYXJJPYchKOvGWmgajRGQy",
    "rzblN7Y+g19SPRNOu2BfCOBeNgMGl2b9dm7u8Xae3cuFgs/FHGVURbJE4gc=",
];
/// `openssl dgst -sha256 -sign` (RSASSA-PKCS1-v1_5) of [`MESSAGE`].
const PKCS1_SIGNATURE: &[&str] = &[
    "EUdouOaYl+3Vgsy2xHKArrHvLNy2aVvNi1ceLSB6ibKtX0SO1lP6NcPGZ3JGCYwAeVUHNL/5o4TgeocVJvSOdHYRAfo+",
    "1Q5oPRAnJhCUXpIGdFOYzhtIxmnntwUJQhYjObmoOz6rNs+k6TemB827FX5eKTc8RW1sndr3rXMOeUzpBH1EqMdeNKvB",
    "jMPiMyeQZpv2O1JKZTrhA6sf0mskHFcsz1c4f/TMqi1fRFyBZdYP1BuvSdFTDicRJTHTweqWHS9hOvozyfz6SwvfNF+j",
    "KGesCmRqqpuyb+AiFlyc2yHXXJHljMXUoSH6L/O8TQpAdK+GkQ9sbTQKJ5eRT9U93A==",
];
/// The same with RSA-PSS, a 32-byte salt.
const PSS_SIGNATURE: &[&str] = &[
    "luzkwkMqcAZfGHUkHMJ6dWCDHQyYLEhE6lujGZ+Nczs+BNbpnRJOrNH1NFIpmnxXyixV9NiwyNgwMbOXcRwgGF0laPBC",
    "4YDnx6GbrjT8hHoSx4ftOoUfNP4wrdplGbwPPP4pMKlRBdY7/KC014jEH1NzyZ9rbUrdNufu99xhwxBkpFEJNbXcS2Bp",
    "5psF5ifH8oh1zN74e9ya7lov2BUkirs3IxfsRaRID6MC1LZk68vLJG5vwGY0kNEzaqkC9HEhSXHho6TUHQhq9y4cdJqr",
    "wKAd0bKHp5CqVMziWRoacItuNjrKvSEsW93gt4xrG3J24KyDWkyoFerK0QGYg1eWsA==",
];
/// A 512-bit key's SubjectPublicKeyInfo (too small).
const SMALL_SPKI: &[&str] = &[
    "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAPkDOqBoRhtG3bnqIZOUo1ekYn9W7IYcdOoS2JyVWnuiUeRJYGSNfnRI2d0K",
    "Xc6P/TOSo4eLOGw/P734rgOOgZkCAwEAAQ==",
];

const RSA: &str = r#"
const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const b64 = (b) => btoa(String.fromCharCode(...new Uint8Array(b)));
const text = (t) => new TextEncoder().encode(t);
const failure = (p) => p.then(() => "succeeded", (e) => [e.name, e.message]);
export async function handler(event) {
  const s = crypto.subtle, d = event.data, out = {};
  const msg = text(d.message), pkcs1 = unb64(d.pkcs1), pss = unb64(d.pss);
  const rs256 = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  const key = await s.importKey("spki", unb64(d.spki), rs256, true, ["verify"]);
  out.algorithm = { ...key.algorithm, publicExponent: [...key.algorithm.publicExponent] };
  out.type = [key.type, key.extractable, key.usages];
  out.pkcs1 = await s.verify("RSASSA-PKCS1-v1_5", key, pkcs1, msg);
  const tampered = pkcs1.slice(); tampered[10] ^= 1;
  out.pkcs1Tampered = await s.verify("RSASSA-PKCS1-v1_5", key, tampered, msg);
  out.pkcs1OtherMessage = await s.verify("RSASSA-PKCS1-v1_5", key, pkcs1, text("another message"));
  out.pssAsPkcs1 = await s.verify("RSASSA-PKCS1-v1_5", key, pss, msg);
  const jwk = await s.exportKey("jwk", key);
  out.jwk = { kty: jwk.kty, alg: jwk.alg, e: jwk.e, n: jwk.n.length, ext: jwk.ext, key_ops: jwk.key_ops };
  out.spkiRoundTrip = b64(await s.exportKey("spki", key)) === d.spki;
  const ps256 = await s.importKey("jwk", { kty: "RSA", n: jwk.n, e: jwk.e, alg: "PS256" }, { name: "RSA-PSS", hash: "SHA-256" }, false, ["verify"]);
  out.pss = await s.verify({ name: "RSA-PSS", saltLength: 32 }, ps256, pss, msg);
  out.pssOtherSalt = await s.verify({ name: "RSA-PSS", saltLength: 20 }, ps256, pss, msg);
  out.pssNoSalt = await failure(s.verify({ name: "RSA-PSS" }, ps256, pss, msg));
  out.wrongAlg = await failure(s.importKey("jwk", jwk, { name: "RSA-PSS", hash: "SHA-256" }, false, ["verify"]));
  out.wrongKeyAlgorithm = await failure(s.verify("RSA-PSS", key, pss, msg));
  const oaep = await s.importKey("spki", unb64(d.spki), { name: "RSA-OAEP", hash: "SHA-256" }, false, ["encrypt", "wrapKey"]);
  const sealed = [await s.encrypt({ name: "RSA-OAEP" }, oaep, text("for the key's owner")), await s.encrypt({ name: "RSA-OAEP" }, oaep, text("for the key's owner"))];
  out.sealed = sealed.map(b64);
  const aes = await s.importKey("raw", new Uint8Array(16).fill(7), "AES-GCM", true, ["encrypt"]);
  out.wrapped = b64(await s.wrapKey("raw", aes, oaep, { name: "RSA-OAEP" }));
  out.signUsage = await failure(s.importKey("spki", unb64(d.spki), rs256, false, ["sign"]));
  out.pkcs8 = await failure(s.importKey("pkcs8", new Uint8Array(8), rs256, false, ["sign"]));
  out.privateJwk = await failure(s.importKey("jwk", { ...jwk, d: "AQAB" }, rs256, false, ["sign"]));
  out.generate = await failure(s.generateKey({ ...rs256, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }, true, ["sign", "verify"]));
  out.small = await failure(s.importKey("spki", unb64(d.small), rs256, false, ["verify"]));
  out.garbage = await failure(s.importKey("spki", new Uint8Array([48, 3, 2, 1, 0]), rs256, false, ["verify"]));
  return out;
}
"#;

fn joined(lines: &[&str]) -> String {
    lines.concat()
}

#[test]
fn rsa_public_keys_verify_and_encrypt_through_the_native_agent_routes() {
    use rsa::pkcs8::DecodePrivateKey;
    let b64 = base64::engine::general_purpose::STANDARD;
    let server = TestServer::start();
    let owner = ClientSecret::generate().unwrap();
    deploy_js_main(&server, &owner, "rsa", RSA);
    let event = json!({"data": {
        "message": MESSAGE,
        "spki": joined(SPKI),
        "pkcs1": joined(PKCS1_SIGNATURE),
        "pss": joined(PSS_SIGNATURE),
        "small": joined(SMALL_SPKI),
    }});
    let r = server.client().invoke("rsa", event).unwrap();
    assert!(r.ok, "{r:?}");
    let out = r.result_json().unwrap();
    assert_eq!(
        out["algorithm"],
        json!({"name": "RSASSA-PKCS1-v1_5", "modulusLength": 2048, "publicExponent": [1, 0, 1], "hash": {"name": "SHA-256"}})
    );
    assert_eq!(out["type"], json!(["public", true, ["verify"]]));
    assert_eq!(out["pkcs1"], true);
    assert_eq!(out["pkcs1Tampered"], false);
    assert_eq!(out["pkcs1OtherMessage"], false);
    assert_eq!(out["pssAsPkcs1"], false);
    // n of 2048 bits: 256 bytes, 342 base64url characters.
    assert_eq!(
        out["jwk"],
        json!({"kty": "RSA", "alg": "RS256", "e": "AQAB", "n": 342, "ext": true, "key_ops": ["verify"]})
    );
    assert_eq!(out["spkiRoundTrip"], true);
    assert_eq!(out["pss"], true);
    assert_eq!(out["pssOtherSalt"], false);
    assert_eq!(out["pssNoSalt"][0], "TypeError");
    assert_eq!(out["wrongAlg"][0], "DataError", "{}", out["wrongAlg"]);
    assert_eq!(out["wrongKeyAlgorithm"][0], "InvalidAccessError");
    // The agent's RSA-OAEP ciphertexts open with the private key here, and differ (random seeds).
    let private = rsa::RsaPrivateKey::from_pkcs8_der(&b64.decode(joined(PKCS8)).unwrap()).unwrap();
    let open = |b: &serde_json::Value| {
        let sealed = b64.decode(b.as_str().unwrap()).unwrap();
        private
            .decrypt(rsa::Oaep::new::<rsa::sha2::Sha256>(), &sealed)
            .unwrap()
    };
    assert_eq!(open(&out["sealed"][0]), b"for the key's owner");
    assert_eq!(open(&out["sealed"][1]), b"for the key's owner");
    assert_ne!(out["sealed"][0], out["sealed"][1]);
    assert_eq!(open(&out["wrapped"]), [7u8; 16]);
    assert_eq!(out["signUsage"][0], "SyntaxError");
    for refused in ["pkcs8", "privateJwk", "generate"] {
        assert_eq!(
            out[refused][0], "NotSupportedError",
            "{refused}: {}",
            out[refused]
        );
        assert!(
            out[refused][1]
                .as_str()
                .unwrap()
                .contains("not constant-time"),
            "{refused}: {}",
            out[refused]
        );
    }
    assert_eq!(out["small"][0], "DataError");
    assert!(
        out["small"][1].as_str().unwrap().contains("512-bit"),
        "{}",
        out["small"]
    );
    assert_eq!(out["garbage"][0], "DataError");
}
