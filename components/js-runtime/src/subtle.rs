//! The primitives under `crypto.subtle` (src/web/crypto.js builds the Web Cryptography API over
//! them): SHA-1/SHA-2 digests, HMAC, ECDSA on P-256 and AES-GCM, from RustCrypto's crates.
//! Keys arrive and leave as bytes; the JavaScript side keeps them inside `CryptoKey` objects
//! whose material agents' code cannot read unless the key is extractable. Each native throws a
//! `TypeError` whose message starts with the DOMException name the JavaScript side should use
//! (`DataError: …`, `NotSupportedError: …`, `OperationError: …`).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce};
use boa_engine::object::builtins::{JsArray, JsUint8Array};
use boa_engine::{Context, JsArgs, JsError, JsNativeError, JsResult, JsValue};
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use p256::{PublicKey, SecretKey};
use sha2::Digest;

use super::web::bytes_arg;

pub(crate) fn error(kind: &str, message: impl std::fmt::Display) -> JsError {
    JsNativeError::typ()
        .with_message(format!("{kind}: {message}"))
        .into()
}

pub(crate) fn text(args: &[JsValue], i: usize, context: &mut Context) -> JsResult<String> {
    Ok(args
        .get_or_undefined(i)
        .to_string(context)?
        .to_std_string_escaped())
}

pub(crate) fn bytes(data: Vec<u8>, context: &mut Context) -> JsResult<JsValue> {
    Ok(JsUint8Array::from_iter(data, context)?.into())
}

/// The digest of `data` with the named hash.
pub(crate) fn digest(name: &str, data: &[u8]) -> JsResult<Vec<u8>> {
    Ok(match name {
        "SHA-1" => sha1::Sha1::digest(data).to_vec(),
        "SHA-256" => sha2::Sha256::digest(data).to_vec(),
        "SHA-384" => sha2::Sha384::digest(data).to_vec(),
        "SHA-512" => sha2::Sha512::digest(data).to_vec(),
        other => return Err(error("NotSupportedError", format!("no hash {other:?}"))),
    })
}

/// `__hv_digest(hash, data)`.
pub fn digest_native(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let name = text(args, 0, context)?;
    let data = bytes_arg(args, 1, context)?;
    bytes(digest(&name, &data)?, context)
}

fn hmac_of<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> JsResult<Vec<u8>> {
    let mut mac = <M as Mac>::new_from_slice(key)
        .map_err(|e| error("DataError", format!("HMAC key: {e}")))?;
    mac.update(data);
    Ok(mac.finalize().into_bytes().to_vec())
}

/// `__hv_hmac(hash, key, data)`: the HMAC of `data`.
pub fn hmac(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let hash = text(args, 0, context)?;
    let key = bytes_arg(args, 1, context)?;
    let data = bytes_arg(args, 2, context)?;
    let tag = match hash.as_str() {
        "SHA-1" => hmac_of::<Hmac<sha1::Sha1>>(&key, &data)?,
        "SHA-256" => hmac_of::<Hmac<sha2::Sha256>>(&key, &data)?,
        "SHA-384" => hmac_of::<Hmac<sha2::Sha384>>(&key, &data)?,
        "SHA-512" => hmac_of::<Hmac<sha2::Sha512>>(&key, &data)?,
        other => return Err(error("NotSupportedError", format!("no hash {other:?}"))),
    };
    bytes(tag, context)
}

/// `__hv_ct_eq(a, b)`: whether two byte strings are equal, in time independent of their contents.
pub fn ct_eq(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    use subtle::ConstantTimeEq;
    let a = bytes_arg(args, 0, context)?;
    let b = bytes_arg(args, 1, context)?;
    Ok(JsValue::from(a.len() == b.len() && bool::from(a.ct_eq(&b))))
}

pub(crate) fn secret(d: &[u8]) -> JsResult<SecretKey> {
    SecretKey::from_slice(d).map_err(|_| error("DataError", "not a P-256 private key"))
}

pub(crate) fn public(point: &[u8]) -> JsResult<PublicKey> {
    PublicKey::from_sec1_bytes(point).map_err(|_| error("DataError", "not a P-256 public point"))
}

fn uncompressed(key: &PublicKey) -> Vec<u8> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    key.to_encoded_point(false).as_bytes().to_vec()
}

/// `__hv_ec_generate()`: a new P-256 key pair, `[d, uncompressed point]`, from the host's
/// randomness.
pub fn ec_generate(_: &JsValue, _: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let key = loop {
        let d = wasip2::random::random::get_random_bytes(32);
        if let Ok(key) = SecretKey::from_slice(&d) {
            break key;
        }
    };
    let d = key.to_bytes().to_vec();
    let point = uncompressed(&key.public_key());
    let pair = [bytes(d, context)?, bytes(point, context)?];
    Ok(JsArray::from_iter(pair, context).into())
}

/// `__hv_ec_public(d)`: the uncompressed public point of a private key.
pub fn ec_public(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let key = secret(&bytes_arg(args, 0, context)?)?;
    bytes(uncompressed(&key.public_key()), context)
}

/// `__hv_ec_point(point)`: a SEC1 point (compressed or not) checked and uncompressed.
pub fn ec_point(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let key = public(&bytes_arg(args, 0, context)?)?;
    bytes(uncompressed(&key), context)
}

/// `__hv_ec_sign(d, hash, data)`: the ECDSA signature (`r || s`, 64 bytes) of `data`'s digest.
pub fn ec_sign(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let key = SigningKey::from(secret(&bytes_arg(args, 0, context)?)?);
    let hash = text(args, 1, context)?;
    let prehash = digest(&hash, &bytes_arg(args, 2, context)?)?;
    let signature: Signature = key
        .sign_prehash(&prehash)
        .map_err(|e| error("OperationError", e))?;
    bytes(signature.to_bytes().to_vec(), context)
}

/// `__hv_ec_verify(point, hash, data, signature)`: whether `signature` (`r || s`) is valid.
pub fn ec_verify(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let key = VerifyingKey::from(public(&bytes_arg(args, 0, context)?)?);
    let hash = text(args, 1, context)?;
    let prehash = digest(&hash, &bytes_arg(args, 2, context)?)?;
    let Ok(signature) = Signature::from_slice(&bytes_arg(args, 3, context)?) else {
        return Ok(JsValue::from(false));
    };
    Ok(JsValue::from(
        key.verify_prehash(&prehash, &signature).is_ok(),
    ))
}

/// `__hv_ec_der(kind, key)`: `pkcs8` of a private key's `d`, `spki` of a public point.
pub fn ec_der(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let kind = text(args, 0, context)?;
    let key = bytes_arg(args, 1, context)?;
    let der = match kind.as_str() {
        "pkcs8" => secret(&key)?
            .to_pkcs8_der()
            .map_err(|e| error("OperationError", e))?
            .as_bytes()
            .to_vec(),
        "spki" => public(&key)?
            .to_public_key_der()
            .map_err(|e| error("OperationError", e))?
            .into_vec(),
        other => return Err(error("NotSupportedError", format!("no format {other:?}"))),
    };
    bytes(der, context)
}

/// `__hv_ec_from_der(kind, der)`: `d` of a `pkcs8` private key, the uncompressed point of an
/// `spki` public key (both P-256).
pub fn ec_from_der(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let kind = text(args, 0, context)?;
    let der = bytes_arg(args, 1, context)?;
    let key = match kind.as_str() {
        "pkcs8" => SecretKey::from_pkcs8_der(&der)
            .map_err(|e| error("DataError", format!("not a P-256 PKCS #8 key: {e}")))?
            .to_bytes()
            .to_vec(),
        "spki" => uncompressed(
            &PublicKey::from_public_key_der(&der)
                .map_err(|e| error("DataError", format!("not a P-256 SPKI key: {e}")))?,
        ),
        other => return Err(error("NotSupportedError", format!("no format {other:?}"))),
    };
    bytes(key, context)
}

/// `__hv_aes_gcm(encrypt, key, iv, data, additional)`: AES-GCM with a 128-bit tag appended to
/// the ciphertext, as WebCrypto has it; a decryption that does not authenticate answers null.
pub fn aes_gcm(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let encrypt = args.get_or_undefined(0).to_boolean();
    let key = bytes_arg(args, 1, context)?;
    let iv = bytes_arg(args, 2, context)?;
    let data = bytes_arg(args, 3, context)?;
    let aad = bytes_arg(args, 4, context)?;
    let Ok(iv) = <[u8; 12]>::try_from(iv.as_slice()) else {
        return Err(error(
            "NotSupportedError",
            "AES-GCM: only a 96-bit (12-byte) iv is available in this runtime",
        ));
    };
    let nonce = &Nonce::from(iv);
    let payload = Payload {
        msg: &data,
        aad: &aad,
    };
    let out = match (key.len(), encrypt) {
        (16, true) => Aes128Gcm::new_from_slice(&key).map(|c| c.encrypt(nonce, payload)),
        (16, false) => Aes128Gcm::new_from_slice(&key).map(|c| c.decrypt(nonce, payload)),
        (32, true) => Aes256Gcm::new_from_slice(&key).map(|c| c.encrypt(nonce, payload)),
        (32, false) => Aes256Gcm::new_from_slice(&key).map(|c| c.decrypt(nonce, payload)),
        (n, _) => {
            return Err(error(
                "NotSupportedError",
                format!("AES-GCM: a {}-bit key (128 and 256 are available)", n * 8),
            ));
        }
    }
    .map_err(|e| error("DataError", e))?;
    match out {
        Ok(bytes_out) => bytes(bytes_out, context),
        Err(_) if !encrypt => Ok(JsValue::null()),
        Err(e) => Err(error("OperationError", e)),
    }
}

/// `__hv_b64u(bytes)`: base64url without padding (a JWK's key fields), made here so that key
/// material meets no built-in an agent can patch.
pub fn b64u_encode(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    use base64::Engine as _;
    let data = bytes_arg(args, 0, context)?;
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data);
    Ok(boa_engine::JsString::from(text.as_str()).into())
}

/// `__hv_unb64u(text, what)`: the bytes of base64url without padding; anything else is a
/// `DataError` naming the field.
pub fn b64u_decode(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    use base64::Engine as _;
    let encoded = text(args, 0, context)?;
    let what = text(args, 1, context)?;
    let data = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded.as_bytes())
        .map_err(|_| error("DataError", format!("JWK {what} is not base64url")))?;
    bytes(data, context)
}
