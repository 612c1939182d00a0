//! The primitives under `crypto.subtle`'s AES-CTR, AES-CBC and AES-KW (src/web/crypto.js; AES-GCM
//! is in src/subtle.rs): RustCrypto's `aes` block cipher, CBC with PKCS #7 padding through the
//! `cbc` crate, and RFC 3394 key wrap through `aes-kw`. CTR is written here over the block
//! cipher, because the Web Cryptography API counts only the counter block's rightmost `length`
//! bits (wrapping within them), which the `ctr` crate's fixed 32/64/128-bit flavours do not
//! cover. Errors follow src/subtle.rs: a `TypeError` whose message starts with the
//! DOMException name to use.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes128, Aes256};
use boa_engine::{Context, JsArgs, JsResult, JsValue};

use super::subtle::{bytes, error};
use super::web::bytes_arg;

fn bad_key(bits: usize) -> boa_engine::JsError {
    error(
        if bits == 192 {
            "NotSupportedError"
        } else {
            "DataError"
        },
        format!("AES: a {bits}-bit key (128 and 256 are available)"),
    )
}

/// The counter blocks' keystream XORed into `data`: block `i`'s counter is `counter` with its
/// rightmost `length` bits increased by `i`, modulo 2^`length`.
fn ctr(encrypt: impl Fn(&mut aes::Block), counter: u128, length: u32, data: &mut [u8]) {
    let mask = if length == 128 {
        u128::MAX
    } else {
        (1u128 << length) - 1
    };
    for (i, chunk) in data.chunks_mut(16).enumerate() {
        let low = (counter & mask).wrapping_add(i as u128) & mask;
        let mut block = aes::Block::from(((counter & !mask) | low).to_be_bytes());
        encrypt(&mut block);
        for (byte, key) in chunk.iter_mut().zip(block.iter()) {
            *byte ^= key;
        }
    }
}

/// `__hv_aes_ctr(key, counter, length, data)`: AES-CTR, the same both ways. A message long
/// enough to bring a counter value back is an `OperationError` (its keystream would repeat).
pub fn aes_ctr(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let key = bytes_arg(args, 0, context)?;
    let counter = bytes_arg(args, 1, context)?;
    let length = args.get_or_undefined(2).to_u32(context)?;
    let mut data = bytes_arg(args, 3, context)?;
    let Ok(counter) = <[u8; 16]>::try_from(counter.as_slice()) else {
        return Err(error("OperationError", "AES-CTR: the counter is 16 bytes"));
    };
    if length == 0 || length > 128 {
        return Err(error(
            "OperationError",
            "AES-CTR: the counter's length is 1 to 128 bits",
        ));
    }
    let blocks = data.len().div_ceil(16) as u128;
    if length < 128 && blocks > (1u128 << length) {
        return Err(error(
            "OperationError",
            format!("AES-CTR: {blocks} blocks would repeat a {length}-bit counter"),
        ));
    }
    let counter = u128::from_be_bytes(counter);
    match key.len() {
        16 => {
            let cipher = Aes128::new_from_slice(&key).map_err(|e| error("DataError", e))?;
            ctr(|b| cipher.encrypt_block(b), counter, length, &mut data);
        }
        32 => {
            let cipher = Aes256::new_from_slice(&key).map_err(|e| error("DataError", e))?;
            ctr(|b| cipher.encrypt_block(b), counter, length, &mut data);
        }
        n => return Err(bad_key(n * 8)),
    }
    bytes(data, context)
}

/// `__hv_aes_cbc(encrypt, key, iv, data)`: AES-CBC with PKCS #7 padding; a decryption whose
/// padding is wrong (the wrong key, or altered data) is an `OperationError`.
pub fn aes_cbc(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    use cbc::cipher::block_padding::Pkcs7;
    use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
    let encrypt = args.get_or_undefined(0).to_boolean();
    let key = bytes_arg(args, 1, context)?;
    let iv = bytes_arg(args, 2, context)?;
    let data = bytes_arg(args, 3, context)?;
    if iv.len() != 16 {
        return Err(error("OperationError", "AES-CBC: the iv is 16 bytes"));
    }
    let bad_data = || {
        error(
            "OperationError",
            "AES-CBC: the data does not decrypt under this key and iv (bad padding)",
        )
    };
    let out = match (key.len(), encrypt) {
        (16, true) => cbc::Encryptor::<Aes128>::new_from_slices(&key, &iv)
            .map(|c| Ok(c.encrypt_padded_vec_mut::<Pkcs7>(&data))),
        (16, false) => cbc::Decryptor::<Aes128>::new_from_slices(&key, &iv).map(|c| {
            c.decrypt_padded_vec_mut::<Pkcs7>(&data)
                .map_err(|_| bad_data())
        }),
        (32, true) => cbc::Encryptor::<Aes256>::new_from_slices(&key, &iv)
            .map(|c| Ok(c.encrypt_padded_vec_mut::<Pkcs7>(&data))),
        (32, false) => cbc::Decryptor::<Aes256>::new_from_slices(&key, &iv).map(|c| {
            c.decrypt_padded_vec_mut::<Pkcs7>(&data)
                .map_err(|_| bad_data())
        }),
        (n, _) => return Err(bad_key(n * 8)),
    }
    .map_err(|e| error("DataError", e))??;
    bytes(out, context)
}

/// `__hv_aes_kw(wrap, key, data)`: RFC 3394 key wrap. Data that is not a whole number of 8-byte
/// blocks (at least two) cannot be wrapped, and wrapped data that does not check out under the
/// key is an `OperationError`.
pub fn aes_kw(_: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let wrap = args.get_or_undefined(0).to_boolean();
    let key = bytes_arg(args, 1, context)?;
    let data = bytes_arg(args, 2, context)?;
    let what = if wrap { "wrap" } else { "unwrap" };
    let done = match key.len() {
        16 => {
            let kek = aes_kw::KekAes128::new(key.as_slice().into());
            if wrap {
                kek.wrap_vec(&data)
            } else {
                kek.unwrap_vec(&data)
            }
        }
        32 => {
            let kek = aes_kw::KekAes256::new(key.as_slice().into());
            if wrap {
                kek.wrap_vec(&data)
            } else {
                kek.unwrap_vec(&data)
            }
        }
        n => return Err(bad_key(n * 8)),
    };
    let out = done.map_err(|e| {
        error(
            "OperationError",
            format!("AES-KW cannot {what} this data: {e}"),
        )
    })?;
    bytes(out, context)
}
