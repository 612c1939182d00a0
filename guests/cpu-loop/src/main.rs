//! A CPU-bound program for the benchmarks: guests/cpu-kernel's work for the number of rounds
//! given as the first argument; prints the checksum. Its RISC-V twin is guests/riscv/cpu-loop.

fn main() {
    let rounds = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    println!("{}", cpu_kernel::work(rounds));
}
