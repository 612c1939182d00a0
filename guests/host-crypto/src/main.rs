//! Uses the host's `hypervisor:host/crypto` and `attestation` imports: prints the SHA-256 of
//! each argument (hex, one per line), then the result of verifying a P-256 signature given as
//! `--verify <pubkey-hex> <message> <signature-hex>`, then what `attestation.provider` says and a statement over 64 bytes of 0x42.

wit_bindgen::generate!({
    path: "../../wit",
    world: "hypervisor:host/host-imports",
    generate_all,
});

use hypervisor::host::{attestation, crypto};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .filter_map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--verify") && args.len() == 4 {
        let result = crypto::verify_p256_sha256(&unhex(&args[1]), args[2].as_bytes(), &unhex(&args[3]));
        match result {
            Ok(valid) => println!("verify: {valid}"),
            Err(e) => println!("verify error: {e:?}"),
        }
    } else {
        for arg in &args {
            println!("{}", hex(&crypto::sha256(arg.as_bytes())));
        }
    }
    println!("attestation provider: {:?}", attestation::provider());
    match attestation::attest(&[0x42u8; 64]) {
        Ok(s) => println!(
            "attest: {} component={} signature={} key={} event_log={}",
            s.evidence_format,
            hex(&s.component_hash),
            hex(&s.signature),
            hex(&s.signing_key),
            hex(s.event_log.as_deref().unwrap_or_default().as_bytes())
        ),
        Err(e) => println!("attest error: {e:?}"),
    }
}
