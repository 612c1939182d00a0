//! A CPU-bound program for the benchmarks: guests/cpu-kernel's work for the number of rounds
//! given as the first argument; prints the checksum.
#![no_std]
#![no_main]

use riscv_sdk::println;

riscv_sdk::main!(run);

fn run() -> i32 {
    let rounds = riscv_sdk::args()
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    println!("{}", cpu_kernel::work(rounds));
    0
}
