//! Misbehaving program: writes far more output than the host captures (64 MiB to standard
//! output, 8 MiB to standard error). The host must cut it, flag it, and not run out of memory.
#![no_std]
#![no_main]

riscv_sdk::main!(run);

fn run() -> i32 {
    let line = [b'x'; 1024];
    for _ in 0..64 * 1024 {
        riscv_sdk::write_stdout(&line);
    }
    for _ in 0..8 * 1024 {
        riscv_sdk::write_stderr(&line);
    }
    0
}
