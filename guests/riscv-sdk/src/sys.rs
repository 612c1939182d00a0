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

pub use hypervisor_riscv_abi::{
    ERR_BAD_DESCRIPTOR, ERR_INVALID_KEY, ERR_INVALID_LENGTH, ERR_INVALID_SIGNATURE,
    ERR_NOT_CONFIGURED, ERR_PROVIDER_FAILED,
};
