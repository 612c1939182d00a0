//! The primitives under `crypto.subtle`'s `deriveBits` and `deriveKey` (src/web/crypto.js):
//! HKDF (RFC 5869) and PBKDF2 (RFC 8018) over HMAC with SHA-1 or SHA-2, and ECDH on P-256,
//! from RustCrypto's `hkdf`, `pbkdf2` and `p256` crates. Errors follow src/subtle.rs: a
//! `TypeError` whose message starts with the DOMException name to use.

use boa_engine::{Context, JsArgs, JsResult, JsValue};

use super::subtle::{bytes, error, public, secret, text};
use super::web::bytes_arg;

fn length_arg(args: &[JsValue], i: usize, context: &mut Context) -> JsResult<usize> {
    Ok(args.get_or_undefined(i).to_u32(context)? as usize)
}

/// `__hv_hkdf(hash, key, salt, info, length)`: `length` bytes of HKDF. More than 255 times the
/// hash's size is an `OperationError`, as RFC 5869 bounds it.
pub fn hkdf(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let hash = text(args, 0, context)?;
    let key = bytes_arg(args, 1, context)?;
    let salt = bytes_arg(args, 2, context)?;
    let info = bytes_arg(args, 3, context)?;
    let length = length_arg(args, 4, context)?;
    let block = match hash.as_str() {
        "SHA-1" => 20,
        "SHA-256" => 32,
        "SHA-384" => 48,
        _ => 64,
    };
    if length > 255 * block {
        return Err(error(
            "OperationError",
            format!("HKDF with {hash} derives at most {} bytes", 255 * block),
        ));
    }
    let mut out = vec![0u8; length];
    let expanded = match hash.as_str() {
        "SHA-1" => hkdf::Hkdf::<sha1::Sha1>::new(Some(&salt), &key).expand(&info, &mut out),
        "SHA-256" => hkdf::Hkdf::<sha2::Sha256>::new(Some(&salt), &key).expand(&info, &mut out),
        "SHA-384" => hkdf::Hkdf::<sha2::Sha384>::new(Some(&salt), &key).expand(&info, &mut out),
        "SHA-512" => hkdf::Hkdf::<sha2::Sha512>::new(Some(&salt), &key).expand(&info, &mut out),
        other => return Err(error("NotSupportedError", format!("no hash {other:?}"))),
    };
    expanded.map_err(|_| {
        error(
            "OperationError",
            format!("HKDF with {hash} derives at most 255 blocks of the hash"),
        )
    })?;
    bytes(out, context)
}

/// `__hv_pbkdf2(hash, password, salt, iterations, length)`: `length` bytes of PBKDF2-HMAC. The
/// iterations run inside the invocation, so its time and fuel limits bound them.
pub fn pbkdf2(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    use pbkdf2::pbkdf2_hmac;
    let hash = text(args, 0, context)?;
    let password = bytes_arg(args, 1, context)?;
    let salt = bytes_arg(args, 2, context)?;
    let rounds = args.get_or_undefined(3).to_u32(context)?;
    if rounds == 0 {
        return Err(error(
            "OperationError",
            "PBKDF2 needs at least one iteration",
        ));
    }
    // The agent names the length: memory it cannot have is an error, not the instance's end.
    let length = length_arg(args, 4, context)?;
    let mut out = Vec::new();
    out.try_reserve_exact(length).map_err(|_| {
        error(
            "OperationError",
            format!("PBKDF2: no memory for {length} bytes of output"),
        )
    })?;
    out.resize(length, 0);
    match hash.as_str() {
        "SHA-1" => pbkdf2_hmac::<sha1::Sha1>(&password, &salt, rounds, &mut out),
        "SHA-256" => pbkdf2_hmac::<sha2::Sha256>(&password, &salt, rounds, &mut out),
        "SHA-384" => pbkdf2_hmac::<sha2::Sha384>(&password, &salt, rounds, &mut out),
        "SHA-512" => pbkdf2_hmac::<sha2::Sha512>(&password, &salt, rounds, &mut out),
        other => return Err(error("NotSupportedError", format!("no hash {other:?}"))),
    }
    bytes(out, context)
}

/// `__hv_ecdh(d, point)`: the P-256 shared secret (the x-coordinate, 32 bytes) of a private
/// scalar and a peer's public point.
pub fn ecdh(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let d = secret(&bytes_arg(args, 0, context)?)?;
    let peer = public(&bytes_arg(args, 1, context)?)?;
    let shared = p256::ecdh::diffie_hellman(d.to_nonzero_scalar(), peer.as_affine());
    bytes(shared.raw_secret_bytes().to_vec(), context)
}
