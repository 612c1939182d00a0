//! Helpers the integration tests share.

use std::path::PathBuf;

/// A RISC-V program of `guests/riscv`, as `scripts/build-programs.sh` built it.
pub fn elf(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/riscv")
        .join(format!("{name}.elf"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (scripts/build-programs.sh builds the RISC-V programs)",
            path.display()
        )
    })
}
