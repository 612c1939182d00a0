//! Misbehaving program: allocates until the host refuses to grow its heap.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

riscv_sdk::main!(run);

fn run() -> i32 {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // Touch every page so the memory is really committed.
        hoard.push(alloc::vec![0xAB; 16 * 1024 * 1024]);
        core::hint::black_box(&hoard);
    }
}
