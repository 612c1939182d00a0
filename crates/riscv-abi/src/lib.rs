//! The host-call ABI of RISC-V programs (`docs/PROTOCOL.md` §6d): the only functions a program
//! may import (by name, as `polkavm_derive::polkavm_import` declares them), and the one it must
//! export. `no_std` and without dependencies: the host (`crates/riscv`) and the guest SDK
//! (`guests/riscv-sdk`) both build it.
//!
//! A program exports `main() -> u32`; its result is the exit code. Arguments and results
//! travel in registers (PolkaVM's calling convention); a buffer is a guest address and a
//! length. A buffer outside the guest's memory ends the run as a trap, as an out-of-bounds
//! access does.
//!
//! | import | arguments | result |
//! |---|---|---|
//! | `args_len` | — | bytes of the arguments: each one followed by a NUL byte, `argv[0]` first |
//! | `args_get` | `buf, len` | copies the first `len` of those bytes to `buf`; returns how many there are in all |
//! | `fd_read` | `fd, buf, len` | reads standard input (`fd` 0 only) into `buf`; bytes read, 0 at its end |
//! | `fd_write` | `fd, buf, len` | writes to standard output (1) or error (2); returns `len` (bytes past the host's cap are dropped, and the output marked truncated) |
//! | `proc_exit` | `code` | ends the run with exit code `code` (`i32`); does not return |
//! | `sbrk` | `increment` | grows the heap by `increment` bytes; returns the new end of the heap (`increment` 0: the current end), or 0 when the memory limit refuses |
//! | `sha256` | `data, len, out` | writes the 32-byte digest to `out`; returns 0 |
//! | `sha512` | `data, len, out` | writes the 64-byte digest to `out`; returns 0 |
//! | `hmac_sha256` | `key, key_len, data, data_len, out` | writes the 32-byte MAC to `out`; returns 0 |
//! | `verify_p256_sha256` | `key, key_len, msg, msg_len, sig, sig_len` | 1 valid, 0 invalid; an error code when the key or signature cannot be read |
//! | `recover_secp256k1` | `digest, sig, sig_len, out` | writes the 65-byte uncompressed key to `out`; 0, or an error code |
//! | `attestation_provider` | — | 0 none, 1 simulated, 2 TDX, 3 SEV-SNP |
//! | `attest` | `user_data, out, out_len` | a statement over the 64 bytes at `user_data`, as JSON: returns its length, and writes it to `out` when it fits in `out_len`; or an error code |
//!
//! Error codes are the top values of `u32`: [`ERR_INVALID_KEY`], [`ERR_INVALID_SIGNATURE`],
//! [`ERR_INVALID_LENGTH`], [`ERR_NOT_CONFIGURED`], [`ERR_PROVIDER_FAILED`],
//! [`ERR_BAD_DESCRIPTOR`].
//!
//! The crypto and attestation calls are `hypervisor:host/crypto` and
//! `hypervisor:host/attestation` of the WebAssembly guests (`wit/`), with the same meaning; a
//! statement names the SHA-256 of the program's ELF file as its component hash.

#![cfg_attr(not(test), no_std)]

/// A host function a program may import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostCall {
    /// `args_len() -> u32`
    ArgsLen,
    /// `args_get(buf, len) -> u32`
    ArgsGet,
    /// `fd_read(fd, buf, len) -> u32`
    FdRead,
    /// `fd_write(fd, buf, len) -> u32`
    FdWrite,
    /// `proc_exit(code) -> !`
    ProcExit,
    /// `sbrk(increment) -> u32`
    Sbrk,
    /// `sha256(data, len, out) -> u32`
    Sha256,
    /// `sha512(data, len, out) -> u32`
    Sha512,
    /// `hmac_sha256(key, key_len, data, data_len, out) -> u32`
    HmacSha256,
    /// `verify_p256_sha256(key, key_len, msg, msg_len, sig, sig_len) -> u32`
    VerifyP256Sha256,
    /// `recover_secp256k1(digest, sig, sig_len, out) -> u32`
    RecoverSecp256k1,
    /// `attestation_provider() -> u32`
    AttestationProvider,
    /// `attest(user_data, out, out_len) -> u32`
    Attest,
}

impl HostCall {
    /// Every host call, in the order of the table above.
    pub const ALL: [HostCall; 13] = [
        Self::ArgsLen,
        Self::ArgsGet,
        Self::FdRead,
        Self::FdWrite,
        Self::ProcExit,
        Self::Sbrk,
        Self::Sha256,
        Self::Sha512,
        Self::HmacSha256,
        Self::VerifyP256Sha256,
        Self::RecoverSecp256k1,
        Self::AttestationProvider,
        Self::Attest,
    ];

    /// The import's name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ArgsLen => "args_len",
            Self::ArgsGet => "args_get",
            Self::FdRead => "fd_read",
            Self::FdWrite => "fd_write",
            Self::ProcExit => "proc_exit",
            Self::Sbrk => "sbrk",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
            Self::HmacSha256 => "hmac_sha256",
            Self::VerifyP256Sha256 => "verify_p256_sha256",
            Self::RecoverSecp256k1 => "recover_secp256k1",
            Self::AttestationProvider => "attestation_provider",
            Self::Attest => "attest",
        }
    }

    /// The host call an import names, if it is one.
    pub fn by_name(name: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name().as_bytes() == name)
    }
}

/// The export every program has: its entry point, `main() -> u32`.
pub const ENTRY_POINT: &str = "main";

/// The public key or the signature cannot be read (wrong encoding, not on the curve).
pub const ERR_INVALID_KEY: u32 = u32::MAX;
/// The signature cannot be read.
pub const ERR_INVALID_SIGNATURE: u32 = u32::MAX - 1;
/// A buffer has the wrong length (a digest not 32 bytes, user data not 64 bytes).
pub const ERR_INVALID_LENGTH: u32 = u32::MAX - 2;
/// No attestation provider is configured on this host.
pub const ERR_NOT_CONFIGURED: u32 = u32::MAX - 3;
/// The attestation provider failed.
pub const ERR_PROVIDER_FAILED: u32 = u32::MAX - 4;
/// `fd_read` or `fd_write` on a descriptor other than 0, or 1 and 2.
pub const ERR_BAD_DESCRIPTOR: u32 = u32::MAX - 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for call in HostCall::ALL {
            assert_eq!(HostCall::by_name(call.name().as_bytes()), Some(call));
        }
        let mut names: Vec<_> = HostCall::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), HostCall::ALL.len());
        assert_eq!(HostCall::by_name(b"fd_close"), None);
    }
}
