//! The RISC-V twin of guests/host-crypto: prints the SHA-256 of each argument (hex, one per
//! line), or with `--verify <pubkey-hex> <message> <signature-hex>` whether that P-256
//! signature is valid; then the attestation provider and the JSON statement over 64 bytes of
//! 0x42 (or the error).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use riscv_sdk::attestation::{self, Tee};
use riscv_sdk::{crypto, println};

riscv_sdk::main!(run);

fn hex(bytes: &[u8]) -> String {
    use core::fmt::Write;
    let mut s = String::new();
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .filter_map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

fn run() -> i32 {
    let args: Vec<String> = riscv_sdk::args().into_iter().skip(1).collect();
    if args.first().map(String::as_str) == Some("--verify") && args.len() == 4 {
        match crypto::verify_p256_sha256(&unhex(&args[1]), args[2].as_bytes(), &unhex(&args[3])) {
            Ok(valid) => println!("verify: {valid}"),
            Err(e) => println!("verify error: {e:?}"),
        }
    } else {
        for arg in &args {
            println!("{}", hex(&crypto::sha256(arg.as_bytes())));
        }
    }
    let provider = match attestation::provider() {
        Tee::None => "none",
        Tee::Simulated => "simulated",
        Tee::Tdx => "tdx",
        Tee::SevSnp => "sev-snp",
    };
    println!("attestation provider: {provider}");
    match attestation::attest(&[0x42u8; 64]) {
        Ok(statement) => println!("attest: {}", String::from_utf8_lossy(&statement)),
        Err(e) => println!("attest error: {e:?}"),
    }
    0
}
