//! The guest side of the hypervisor's RISC-V programs: a `no_std` crate with `alloc`.
//!
//! A program is a `cdylib` built for PolkaVM's RISC-V target (`scripts/build-programs.sh`
//! shows how) that exports `main`:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! use riscv_sdk::println;
//!
//! riscv_sdk::main!(run);
//!
//! fn run() -> i32 {
//!     println!("Hello {}", riscv_sdk::args().len());
//!     0
//! }
//! ```
//!
//! What the host gives a program is what a WebAssembly command gets from `wasi:cli`:
//! arguments, standard input, standard output and error (captured up to the host's caps), an
//! exit code; plus the host's crypto and attestation (`hypervisor:host`). Nothing else: no
//! files, no clock, no network. Standard output and error are line-buffered, as Rust's `std`
//! buffers standard output (a host call is a round trip); the end of the run, `exit` and a
//! panic write out what they hold. The heap grows through the host (the `sbrk` host call), so the
//! run's memory limit holds; a program whose allocation the limit refuses panics, and the
//! host reports `memory_limit_exceeded`. A panic prints its message on standard error and ends
//! the run as a trap, as a Rust panic does in a WebAssembly guest.

#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

pub mod attestation;
pub mod crypto;
mod heap;
mod io;
pub mod sys;

pub use io::{Stderr, Stdout, flush, read_stdin, stdin_to_end, write_stderr, write_stdout};

/// The stack every program gets at least: 1 MiB, as a Rust WebAssembly guest has (PolkaVM's
/// linker gives 8 KiB otherwise). It is part of the program's fixed memory, which the run's
/// memory limit must hold. A program may ask for more with `polkavm_derive::min_stack_size!`.
pub const MIN_STACK_BYTES: usize = 1 << 20;

polkavm_derive::min_stack_size!(MIN_STACK_BYTES);

#[doc(hidden)]
pub mod __private {
    pub use polkavm_derive::{default_abi, polkavm_export};

    /// Runs the program's main function, writes out what standard output and error hold back,
    /// and turns the result into the exit code.
    pub fn run(main: fn() -> i32) -> u32 {
        let code = main();
        crate::flush();
        u32::from_ne_bytes(code.to_ne_bytes())
    }
}

/// Declares the program's entry point: `fn() -> i32`, whose result is the exit code.
#[macro_export]
macro_rules! main {
    ($main:path) => {
        #[$crate::__private::polkavm_export(abi = $crate::__private::default_abi)]
        extern "C" fn main() -> u32 {
            $crate::__private::run($main)
        }
    };
}

/// The arguments, `argv[0]` (the program's name on the host) first.
pub fn args() -> Vec<String> {
    // SAFETY: no arguments.
    let len = unsafe { sys::args_len() } as usize;
    if len == 0 {
        return Vec::new();
    }
    let mut buf = alloc::vec![0u8; len];
    // SAFETY: `buf` is `len` writable bytes; the host writes at most `len`.
    unsafe { sys::args_get(buf.as_mut_ptr(), len as u32) };
    // Each argument ends with a NUL byte: the last piece of the split is empty.
    let mut args: Vec<String> = buf
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    args.pop();
    args
}

/// Ends the run now with exit code `code`.
pub fn exit(code: i32) -> ! {
    flush();
    // SAFETY: `proc_exit` does not return; the host ends the run.
    unsafe { sys::proc_exit(u32::from_ne_bytes(code.to_ne_bytes())) };
    trap()
}

/// Ends the run as a trap.
pub fn trap() -> ! {
    // SAFETY: `unimp` is the RISC-V trap instruction: PolkaVM ends the run there.
    unsafe { core::arch::asm!("unimp", options(noreturn)) }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use core::fmt::Write;
    let _ = writeln!(Stderr, "{info}");
    flush();
    trap()
}
