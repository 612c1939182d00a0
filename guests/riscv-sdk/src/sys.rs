//! The host calls themselves (the ABI of `docs/PROTOCOL.md`, "RISC-V programs"). Prefer the
//! safe functions of the crate's other modules.

#![allow(missing_docs)]

#[polkavm_derive::polkavm_import]
unsafe extern "C" {
    pub fn args_len() -> u32;
    pub fn args_get(buf: *mut u8, len: u32) -> u32;
    pub fn fd_read(fd: u32, buf: *mut u8, len: u32) -> u32;
    pub fn fd_write(fd: u32, buf: *const u8, len: u32) -> u32;
    pub fn proc_exit(code: u32);
    pub fn sbrk(increment: usize) -> usize;
    pub fn sha256(data: *const u8, len: u32, out: *mut u8) -> u32;
    pub fn sha512(data: *const u8, len: u32, out: *mut u8) -> u32;
    pub fn hmac_sha256(key: *const u8, key_len: u32, data: *const u8, data_len: u32, out: *mut u8)
    -> u32;
    pub fn verify_p256_sha256(
        key: *const u8,
        key_len: u32,
        msg: *const u8,
        msg_len: u32,
        sig: *const u8,
        sig_len: u32,
    ) -> u32;
    pub fn recover_secp256k1(digest: *const u8, sig: *const u8, sig_len: u32, out: *mut u8) -> u32;
    pub fn attestation_provider() -> u32;
    pub fn attest(user_data: *const u8, out: *mut u8, out_len: u32) -> u32;
}

/// The key or the signature cannot be read.
pub const ERR_INVALID_KEY: u32 = u32::MAX;
/// The signature cannot be read.
pub const ERR_INVALID_SIGNATURE: u32 = u32::MAX - 1;
/// A buffer has the wrong length.
pub const ERR_INVALID_LENGTH: u32 = u32::MAX - 2;
/// No attestation provider on this host.
pub const ERR_NOT_CONFIGURED: u32 = u32::MAX - 3;
/// The attestation provider failed.
pub const ERR_PROVIDER_FAILED: u32 = u32::MAX - 4;
/// A descriptor other than 0 (read), or 1 and 2 (write).
pub const ERR_BAD_DESCRIPTOR: u32 = u32::MAX - 5;
