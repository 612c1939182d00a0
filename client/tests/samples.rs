//! Real TDX and SEV-SNP evidence from `../shared/attestation-samples/`, verified offline.
//! These quotes carry someone else's REPORTDATA: they test the vendor chains and our policy
//! checks, not our binding (the end-to-end tests cover that with evidence the host makes).

use std::path::PathBuf;

use hypervisor_client::verify::{Policy, VerifyError, verify_snp_report, verify_tdx_quote};

fn sample(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/attestation-samples")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// 2025-06-20T00:00:00Z: inside the v4 sample's collateral window.
const V4_TIME: u64 = 1_750_377_600;
/// 2026-10-20T00:00:00Z: inside the v5 (TDX 1.5) sample's window.
const V5_TIME: u64 = 1_792_454_400;

fn policy(now: u64, collateral: &str) -> Policy {
    Policy {
        tdx_collateral: Some(String::from_utf8(sample(collateral)).unwrap()),
        now: Some(now),
        // The samples' TD attributes and TCB level are whatever their machines had; these tests
        // are about the chain, so accept any status and debug, then check them explicitly.
        accepted_tcb_statuses: [
            "UpToDate",
            "SWHardeningNeeded",
            "ConfigurationNeeded",
            "ConfigurationAndSWHardeningNeeded",
            "OutOfDate",
            "OutOfDateConfigurationNeeded",
        ]
        .map(String::from)
        .to_vec(),
        allow_debug: true,
        ..Policy::default()
    }
}

#[test]
fn tdx_v4_quote_verifies_at_a_time_inside_its_collateral_window() {
    let quote = sample("tdx/tdx_quote");
    let p = policy(V4_TIME, "tdx/tdx_quote_collateral.json");
    let claims = verify_tdx_quote(&quote, p.tdx_collateral.as_deref().unwrap(), &p).unwrap();
    assert_eq!(claims.tcb_status, "UpToDate");
    assert_eq!(
        &claims.report_data[..],
        &quote[568..632],
        "REPORTDATA at absolute offset 568"
    );
    assert_eq!(
        &claims.mrtd[..],
        &quote[184..232],
        "MRTD at absolute offset 184"
    );

    // The default policy (UpToDate, no debug) is what a real verifier uses.
    let strict = Policy {
        accepted_tcb_statuses: vec!["UpToDate".into()],
        allow_debug: false,
        ..p.clone()
    };
    match verify_tdx_quote(&quote, p.tdx_collateral.as_deref().unwrap(), &strict) {
        Ok(c) => assert_eq!(c.td_attributes[0] & 1, 0),
        Err(VerifyError::Debug) => assert_eq!(claims.td_attributes[0] & 1, 1),
        Err(e) => panic!("{e}"),
    }

    // Pinning the right MRTD passes, a wrong one fails.
    let pinned = Policy {
        expected_mrtd: Some(claims.mrtd.to_vec()),
        ..p.clone()
    };
    verify_tdx_quote(&quote, p.tdx_collateral.as_deref().unwrap(), &pinned).unwrap();
    let wrong = Policy {
        expected_mrtd: Some(vec![0; 48]),
        ..p.clone()
    };
    assert_eq!(
        verify_tdx_quote(&quote, p.tdx_collateral.as_deref().unwrap(), &wrong).unwrap_err(),
        VerifyError::Measurement("MRTD".into())
    );
}

#[test]
fn tdx_v4_quote_with_a_flipped_byte_fails() {
    let p = policy(V4_TIME, "tdx/tdx_quote_collateral.json");
    for offset in [200usize, 570, 600] {
        let mut quote = sample("tdx/tdx_quote");
        quote[offset] ^= 0x01;
        match verify_tdx_quote(&quote, p.tdx_collateral.as_deref().unwrap(), &p) {
            Err(VerifyError::Evidence(m)) => assert!(m.to_lowercase().contains("signature"), "{m}"),
            other => panic!("offset {offset}: {other:?}"),
        }
    }
}

#[test]
fn tdx_v4_quote_fails_after_its_collateral_expired() {
    let p = policy(1_754_006_400, "tdx/tdx_quote_collateral.json"); // 2025-08-01
    match verify_tdx_quote(
        &sample("tdx/tdx_quote"),
        p.tdx_collateral.as_deref().unwrap(),
        &p,
    ) {
        Err(VerifyError::Evidence(m)) => assert!(m.to_lowercase().contains("expired"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn tdx_v5_quote_verifies_and_fails_past_its_window() {
    let quote = sample("tdx/tdx_quote_td15ex");
    let p = policy(V5_TIME, "tdx/tdx_quote_td15ex_collateral.json");
    let claims = verify_tdx_quote(&quote, p.tdx_collateral.as_deref().unwrap(), &p).unwrap();
    assert!(!claims.tcb_status.is_empty());
    let late = policy(1_796_083_200, "tdx/tdx_quote_td15ex_collateral.json"); // 2026-12-01
    assert!(matches!(
        verify_tdx_quote(&quote, late.tdx_collateral.as_deref().unwrap(), &late),
        Err(VerifyError::Evidence(_))
    ));
}

#[test]
fn snp_report_verifies_with_its_vcek_and_a_tampered_one_fails() {
    let report = sample("sev-snp/report_milan.hex");
    let vcek = sample("sev-snp/vcek_milan.der");
    let p = Policy {
        allow_debug: true,
        ..Policy::default()
    };
    let claims = verify_snp_report(&report, &vcek, &p).unwrap();
    assert_eq!(claims.product, "milan");

    let mut raw = hex::decode(String::from_utf8(report).unwrap().trim()).unwrap();
    raw[0x50] ^= 0x01; // inside REPORT_DATA, a signed field
    assert!(matches!(
        verify_snp_report(&raw, &vcek, &p),
        Err(VerifyError::Evidence(_))
    ));

    let mut bad_vcek = vcek.clone();
    bad_vcek[40] ^= 0xff;
    let original = hex::decode(
        String::from_utf8(sample("sev-snp/report_milan.hex"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    assert!(verify_snp_report(&original, &bad_vcek, &p).is_err());
}
