//! Misbehaving program: spins forever. The host must stop it at its deadline (or its gas).
#![no_std]
#![no_main]

use riscv_sdk::println;

riscv_sdk::main!(run);

fn run() -> i32 {
    println!("spinning");
    let mut x: u64 = 0;
    loop {
        x = core::hint::black_box(x.wrapping_add(1));
    }
}
