//! Hardware evidence blobs as `client/src/verify/{tdx,snp}.rs` verify them, offline: byte 0
//! picks the format (even: Intel TDX DCAP quote, odd: AMD SEV-SNP report, raw or hex text), the
//! rest is the evidence. The collateral and VCEK are fixed (the real samples in `fixtures/`,
//! from the dcap-qvl 0.7.1 and sev 8.0.0 crates) and the time is inside the TDX collateral's
//! window, so a well-formed quote reaches the signature and TCB checks. Every blob must be
//! refused with an error (or verify), never panic.
#![no_main]

use std::sync::LazyLock;

use dcap_qvl::QuoteCollateralV3;
use hypervisor_client::verify::{Policy, verify_snp_report, verify_tdx_quote_with};
use libfuzzer_sys::fuzz_target;

/// 2025-06-20T00:00:00Z: inside the sample collateral's window.
const NOW: u64 = 1_750_377_600;

static COLLATERAL: LazyLock<QuoteCollateralV3> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../fixtures/tdx_quote_collateral.json"))
        .expect("sample collateral")
});
const VCEK: &[u8] = include_bytes!("../fixtures/vcek_milan.der");

static POLICY: LazyLock<Policy> = LazyLock::new(|| Policy {
    now: Some(NOW),
    accepted_tcb_statuses: vec!["UpToDate".into(), "OutOfDate".into()],
    expected_mrtd: Some(vec![0; 48]),
    expected_snp_measurement: Some(vec![0; 48]),
    ..Policy::default()
});

fuzz_target!(|data: &[u8]| {
    let Some((&format, evidence)) = data.split_first() else {
        return;
    };
    if format % 2 == 0 {
        let _ = verify_tdx_quote_with(evidence, &COLLATERAL, &POLICY);
    } else {
        let _ = verify_snp_report(evidence, VCEK, &POLICY);
    }
});
