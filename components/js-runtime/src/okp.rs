//! The primitives under `crypto.subtle`'s Ed25519 and X25519 (Web Cryptography API, "secure
//! curves"; src/web/crypto.js): signatures through `ed25519-dalek` and key agreement through
//! `x25519-dalek`, and the RFC 8410 DER forms of their keys (SubjectPublicKeyInfo and PKCS #8),
//! which for these curves are fixed prefixes before the 32 key bytes. Errors follow
//! src/subtle.rs: a `TypeError` whose message starts with the DOMException name to use.

use boa_engine::object::builtins::JsArray;
use boa_engine::{Context, JsResult, JsValue};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use super::subtle::{bytes, error, text};
use super::web::bytes_arg;

/// SubjectPublicKeyInfo up to the key's 32 bytes (RFC 8410 §4): SEQUENCE, AlgorithmIdentifier
/// with the curve's OID (1.3.101.110 X25519, 1.3.101.112 Ed25519), BIT STRING.
const SPKI_X25519: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
];
const SPKI_ED25519: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// PKCS #8 (version 0) up to the private key's 32 bytes (RFC 8410 §7): the OCTET STRING that
/// wraps the CurvePrivateKey OCTET STRING.
const PKCS8_X25519: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
];
const PKCS8_ED25519: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn key32(data: &[u8], what: &str) -> JsResult<[u8; 32]> {
    <[u8; 32]>::try_from(data).map_err(|_| error("DataError", format!("{what} is 32 bytes")))
}

fn curve_arg(args: &[JsValue], context: &mut Context) -> JsResult<Curve> {
    match text(args, 0, context)?.as_str() {
        "Ed25519" => Ok(Curve::Ed25519),
        "X25519" => Ok(Curve::X25519),
        other => Err(error("NotSupportedError", format!("no curve {other:?}"))),
    }
}

#[derive(Clone, Copy)]
enum Curve {
    Ed25519,
    X25519,
}

impl Curve {
    fn public_of(self, private: &[u8; 32]) -> [u8; 32] {
        match self {
            Curve::Ed25519 => SigningKey::from_bytes(private).verifying_key().to_bytes(),
            Curve::X25519 => {
                x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*private))
                    .to_bytes()
            }
        }
    }

    fn prefixes(self) -> (&'static [u8], &'static [u8]) {
        match self {
            Curve::Ed25519 => (&SPKI_ED25519, &PKCS8_ED25519),
            Curve::X25519 => (&SPKI_X25519, &PKCS8_X25519),
        }
    }
}

/// `__hv_okp_generate(curve)`: a new key pair, `[private, public]`, from the host's randomness.
pub fn generate(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let curve = curve_arg(args, context)?;
    let random = Zeroizing::new(wasip2::random::random::get_random_bytes(32));
    let private = Zeroizing::new(key32(&random, "a private key")?);
    let public = curve.public_of(&private);
    let pair = [
        bytes(private.to_vec(), context)?,
        bytes(public.to_vec(), context)?,
    ];
    Ok(JsArray::from_iter(pair, context).into())
}

/// `__hv_okp_public(curve, private)`: the public key of a private one.
pub fn public(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let curve = curve_arg(args, context)?;
    let private = Zeroizing::new(key32(&bytes_arg(args, 1, context)?, "a private key")?);
    bytes(curve.public_of(&private).to_vec(), context)
}

/// `__hv_okp_der(curve, "spki" | "pkcs8", key)`: a key's DER form.
pub fn der(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let curve = curve_arg(args, context)?;
    let (spki, pkcs8) = curve.prefixes();
    let prefix = if text(args, 1, context)? == "spki" {
        spki
    } else {
        pkcs8
    };
    let key = key32(&bytes_arg(args, 2, context)?, "a key")?;
    bytes([prefix, &key[..]].concat(), context)
}

/// `__hv_okp_from_der(curve, "spki" | "pkcs8", der)`: the 32 key bytes of a DER form; anything
/// but that exact form is a `DataError`.
pub fn from_der(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let curve = curve_arg(args, context)?;
    let (spki, pkcs8) = curve.prefixes();
    let format = text(args, 1, context)?;
    let prefix = if format == "spki" { spki } else { pkcs8 };
    let der = bytes_arg(args, 2, context)?;
    match der.strip_prefix(prefix) {
        Some(key) if key.len() == 32 => bytes(key.to_vec(), context),
        _ => Err(error(
            "DataError",
            format!("not an RFC 8410 {format} key of this curve"),
        )),
    }
}

/// `__hv_ed_sign(private, data)`: the Ed25519 signature (64 bytes) of `data`.
pub fn ed_sign(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    use ed25519_dalek::Signer;
    let private = Zeroizing::new(key32(&bytes_arg(args, 0, context)?, "a private key")?);
    let data = bytes_arg(args, 1, context)?;
    bytes(
        SigningKey::from_bytes(&private).sign(&data).to_vec(),
        context,
    )
}

/// `__hv_ed_verify(public, data, signature)`: whether the signature verifies. As the Web
/// Cryptography API says, a public key or an `R` of small order, or a non-canonical `S`, does
/// not (`verify_strict`); nor does a signature of another length.
pub fn ed_verify(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let public = key32(&bytes_arg(args, 0, context)?, "a public key")?;
    let data = bytes_arg(args, 1, context)?;
    let signature = bytes_arg(args, 2, context)?;
    let Ok(signature) = <[u8; 64]>::try_from(signature.as_slice()) else {
        return Ok(false.into());
    };
    let Ok(key) = VerifyingKey::from_bytes(&public) else {
        return Ok(false.into());
    };
    let signature = Signature::from_bytes(&signature);
    Ok(key.verify_strict(&data, &signature).is_ok().into())
}

/// `__hv_x25519(private, public)`: the X25519 shared secret; one that is all zeros (a peer key
/// of small order) is an `OperationError`, as the Web Cryptography API says.
pub fn x25519(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let private = Zeroizing::new(key32(&bytes_arg(args, 0, context)?, "a private key")?);
    let peer = key32(&bytes_arg(args, 1, context)?, "a public key")?;
    let secret = x25519_dalek::StaticSecret::from(*private);
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(peer));
    if !shared.was_contributory() {
        return Err(error(
            "OperationError",
            "X25519: the peer's key is of small order (an all-zero secret)",
        ));
    }
    bytes(shared.as_bytes().to_vec(), context)
}
