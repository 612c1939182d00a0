//! The RISC-V twin of guests/hello: prints "Hello" followed by its arguments, one line; echoes
//! standard input; with `--fail`, writes to standard error and exits with code 3 (all of it
//! arrives: a RISC-V program's exit code is not squeezed into WASI 0.2's success or failure);
//! with `--panic`, panics (its message on standard error, then a trap).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use riscv_sdk::{eprintln, print, println};

riscv_sdk::main!(run);

fn run() -> i32 {
    let args: Vec<String> = riscv_sdk::args().into_iter().skip(1).collect();
    if args.is_empty() {
        println!("Hello");
    } else {
        println!("Hello {}", args.join(" "));
    }
    let input = riscv_sdk::stdin_to_end();
    if !input.is_empty() {
        print!("stdin: {}", String::from_utf8_lossy(&input));
    }
    if args.iter().any(|a| a == "--panic") {
        panic!("asked to panic");
    }
    if args.iter().any(|a| a == "--fail") {
        eprintln!("failing on request");
        riscv_sdk::exit(3);
    }
    0
}
