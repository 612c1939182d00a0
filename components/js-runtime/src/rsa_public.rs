//! The primitives under `crypto.subtle`'s RSA algorithms (RSASSA-PKCS1-v1_5, RSA-PSS and
//! RSA-OAEP; src/web/crypto.js), through RustCrypto's `rsa`: public keys only, imported as
//! SubjectPublicKeyInfo or JWK, to verify signatures (JWTs signed RS256 or PS256, webhooks)
//! and to encrypt to a key.
//!
//! Private keys are refused (generateKey, PKCS #8, a JWK with `d`): the crate's private-key
//! operations are not constant-time (RUSTSEC-2023-0071, the "Marvin" timing attack), and an
//! agent's RSA private key would be exposed to anyone who can time its signatures or
//! decryptions. Errors follow src/subtle.rs: a `TypeError` whose message starts with the
//! DOMException name to use.

use boa_engine::object::builtins::JsArray;
use boa_engine::{Context, JsResult, JsValue};
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Oaep, Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::Digest;

use super::subtle::{bytes, digest as hashed, error, text};
use super::web::bytes_arg;

/// The smallest modulus taken: 1024 bits (what JWKs from identity providers use at the least;
/// smaller keys are broken).
const MIN_BITS: usize = 1024;

fn key_of(der: &[u8]) -> JsResult<RsaPublicKey> {
    let key = RsaPublicKey::from_public_key_der(der)
        .map_err(|e| error("DataError", format!("not an RSA SubjectPublicKeyInfo: {e}")))?;
    large_enough(key)
}

/// `key`, if its modulus has at least [`MIN_BITS`].
fn large_enough(key: RsaPublicKey) -> JsResult<RsaPublicKey> {
    if key.n().bits() < MIN_BITS {
        return Err(error(
            "DataError",
            format!(
                "a {}-bit RSA key (at least {MIN_BITS} bits are taken)",
                key.n().bits()
            ),
        ));
    }
    Ok(key)
}

/// `[spki, modulusLength, publicExponent]` of `key`.
fn described(key: &RsaPublicKey, context: &mut Context) -> JsResult<JsValue> {
    let der = key
        .to_public_key_der()
        .map_err(|e| error("DataError", e.to_string()))?;
    let values = [
        bytes(der.as_bytes().to_vec(), context)?,
        JsValue::from(u32::try_from(key.n().bits()).unwrap_or(u32::MAX)),
        bytes(key.e().to_bytes_be(), context)?,
    ];
    Ok(JsArray::from_iter(values, context).into())
}

/// `__hv_rsa_from_spki(der)`: `[spki, modulusLength, publicExponent]`.
pub fn from_spki(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let der = bytes_arg(args, 0, context)?;
    let key = key_of(&der)?;
    described(&key, context)
}

/// `__hv_rsa_from_jwk(n, e)` (the JWK's members, decoded): `[spki, modulusLength,
/// publicExponent]`.
pub fn from_jwk(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let (n, e) = (bytes_arg(args, 0, context)?, bytes_arg(args, 1, context)?);
    let key = RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from_bytes_be(&e))
        .map_err(|e| error("DataError", format!("not an RSA public key: {e}")))?;
    described(&large_enough(key)?, context)
}

/// `__hv_rsa_jwk(spki)`: `[n, e]`, big-endian bytes.
pub fn jwk(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let key = key_of(&bytes_arg(args, 0, context)?)?;
    let values = [
        bytes(key.n().to_bytes_be(), context)?,
        bytes(key.e().to_bytes_be(), context)?,
    ];
    Ok(JsArray::from_iter(values, context).into())
}

macro_rules! by_hash {
    ($hash:expr, $make:ident $(, $arg:expr)*) => {
        match $hash {
            "SHA-1" => $make::<sha1::Sha1>($($arg),*),
            "SHA-256" => $make::<sha2::Sha256>($($arg),*),
            "SHA-384" => $make::<sha2::Sha384>($($arg),*),
            "SHA-512" => $make::<sha2::Sha512>($($arg),*),
            other => return Err(error("NotSupportedError", format!("no hash {other:?}"))),
        }
    };
}

fn pkcs1<D: Digest + rsa::pkcs8::AssociatedOid>() -> Pkcs1v15Sign {
    Pkcs1v15Sign::new::<D>()
}

fn pss<D: 'static + Digest + rsa::signature::digest::DynDigest + Send + Sync>(salt: usize) -> Pss {
    Pss::new_with_salt::<D>(salt)
}

fn oaep<D: 'static + Digest + rsa::signature::digest::DynDigest + Send + Sync>(
    label: Option<String>,
) -> Oaep {
    match label {
        Some(label) => Oaep::new_with_label::<D, _>(label),
        None => Oaep::new::<D>(),
    }
}

/// `__hv_rsa_verify(scheme, hash, spki, data, signature, saltLength)`: whether `signature` is
/// `scheme`'s ("RSASSA-PKCS1-v1_5" or "RSA-PSS") over `data`.
pub fn verify(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let scheme = text(args, 0, context)?;
    let hash = text(args, 1, context)?;
    let key = key_of(&bytes_arg(args, 2, context)?)?;
    let digest = hashed(&hash, &bytes_arg(args, 3, context)?)?;
    let signature = bytes_arg(args, 4, context)?;
    let verified = if scheme == "RSA-PSS" {
        let salt = usize::try_from(args.get(5).map_or(Ok(0), |v| v.to_u32(context))?)
            .unwrap_or(usize::MAX);
        key.verify(by_hash!(hash.as_str(), pss, salt), &digest, &signature)
    } else {
        key.verify(by_hash!(hash.as_str(), pkcs1), &digest, &signature)
    };
    Ok(JsValue::from(verified.is_ok()))
}

/// Randomness for OAEP's seed, from WASI (as `crypto.getRandomValues`).
struct WasiRandom;

impl rand_core::RngCore for WasiRandom {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let random = wasip2::random::random::get_random_bytes(dest.len() as u64);
        dest.copy_from_slice(&random[..dest.len()]);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for WasiRandom {}

/// `__hv_rsa_encrypt(hash, spki, data, label)`: RSA-OAEP's ciphertext of `data` (`label`: a
/// string, or undefined for none).
pub fn encrypt(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let hash = text(args, 0, context)?;
    let key = key_of(&bytes_arg(args, 1, context)?)?;
    let data = bytes_arg(args, 2, context)?;
    let label = match args.get(3) {
        Some(v) if !v.is_undefined() => Some(v.to_string(context)?.to_std_string_escaped()),
        _ => None,
    };
    let sealed = key
        .encrypt(&mut WasiRandom, by_hash!(hash.as_str(), oaep, label), &data)
        .map_err(|e| error("OperationError", format!("RSA-OAEP: {e}")))?;
    bytes(sealed, context)
}
