//! The CPU-bound work of `benches/riscv.rs`, the same source for its native, WebAssembly
//! (`guests/cpu-loop`) and RISC-V (`guests/riscv/cpu-loop`) forms: integer arithmetic and
//! table lookups in a loop, `rounds` times; returns a checksum, so no compiler can skip it.

#![no_std]

/// Runs `rounds` rounds; the result depends on every one.
pub fn work(rounds: u64) -> u64 {
    let mut table = [0u64; 256];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut sum: u64 = 0;
    for i in 0..rounds {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let slot = (r >> 56) as usize;
        table[slot] = table[slot].rotate_left(7) ^ r ^ i;
        sum = sum.wrapping_add(table[(r as usize) & 0xff]);
    }
    sum
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_checksum_is_fixed() {
        assert_eq!(super::work(0), 0);
        assert_eq!(super::work(1000), super::work(1000));
        assert_ne!(super::work(1000), super::work(1001));
    }
}
