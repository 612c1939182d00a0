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

/// A minimum SNP TCB: a report signed at a TCB below it is refused (each component counts);
/// at or above it, accepted.
#[test]
fn snp_reports_below_the_minimum_tcb_are_refused() {
    let report = sample("sev-snp/report_milan.hex");
    let vcek = sample("sev-snp/vcek_milan.der");
    let p = Policy {
        allow_debug: true,
        ..Policy::default()
    };
    let reported = verify_snp_report(&report, &vcek, &p).unwrap().reported_tcb;
    let at = Policy {
        min_snp_tcb: Some(reported),
        ..p.clone()
    };
    assert!(verify_snp_report(&report, &vcek, &at).is_ok());
    for raise in 0..4 {
        let mut min = reported;
        match raise {
            0 => min.bootloader += 1,
            1 => min.tee += 1,
            2 => min.snp += 1,
            _ => min.microcode += 1,
        }
        let above = Policy {
            min_snp_tcb: Some(min),
            ..p.clone()
        };
        assert!(
            matches!(
                verify_snp_report(&report, &vcek, &above),
                Err(VerifyError::TcbStatus(m)) if m.contains("below the minimum")
            ),
            "{min}"
        );
    }
    assert_eq!(
        "3,0,8,115"
            .parse::<hypervisor_client::verify::SnpTcb>()
            .unwrap()
            .to_string(),
        "bootloader=3 tee=0 snp=8 microcode=115"
    );
    assert!(
        "3,0,8"
            .parse::<hypervisor_client::verify::SnpTcb>()
            .is_err()
    );
}

/// The VCEK is fetched from a key distribution service (here a local stand-in serving the
/// sample's VCEK) at AMD's path for the report's chip and reported TCB, then verified against
/// AMD's roots like a given one.
#[test]
fn the_snp_vcek_is_fetched_from_the_key_distribution_service() {
    use std::io::{BufRead, BufReader, Write};
    let report = sample("sev-snp/report_milan.hex");
    let vcek = sample("sev-snp/vcek_milan.der");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let urls = hypervisor_client::verify::vcek_urls(&base, &report).unwrap();
    let expected_path = urls[0].trim_start_matches(&base).to_string();
    assert!(
        expected_path.starts_with("/vcek/v1/Milan/"),
        "{expected_path}"
    );
    assert!(expected_path.contains("?blSPL="), "{expected_path}");
    let served = vcek.clone();
    let server = std::thread::spawn(move || {
        let mut paths = Vec::new();
        for stream in listener.incoming().take(urls.len()) {
            let mut stream = stream.unwrap();
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            let path = line
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            let (status, body) = if path == expected_path {
                ("200 OK", served.clone())
            } else {
                ("404 Not Found", Vec::new())
            };
            write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            )
            .unwrap();
            stream.write_all(&body).unwrap();
            paths.push(path);
            if status.starts_with("200") {
                break;
            }
        }
        paths
    });
    let fetched = hypervisor_client::verify::fetch_vcek(&base, &report).unwrap();
    assert_eq!(fetched, vcek);
    let p = Policy {
        allow_debug: true,
        ..Policy::default()
    };
    assert!(verify_snp_report(&report, &fetched, &p).is_ok());
    assert!(!server.join().unwrap().is_empty());
}

/// The VCEK must be the one made for the report's TCB and chip: the real pair passes; a
/// report claiming another TCB (one field at a time) or another chip is refused by this check
/// alone, before any signature (a leaked VCEK of an old TCB would sign a report claiming a
/// current one). Before, only the signature and the chain were checked, so a report's
/// `reported_tcb`, and the minimum TCB compared with it, were the signer's word.
#[test]
fn a_vcek_made_for_another_tcb_or_chip_is_refused() {
    let report = hex::decode(
        String::from_utf8(sample("sev-snp/report_milan.hex"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let vcek = sample("sev-snp/vcek_milan.der");
    hypervisor_client::verify::check_vcek_matches_report(&vcek, &report).unwrap();
    // REPORTED_TCB at 0x180: bootloader, tee, 4 reserved, snp, microcode (Milan).
    for offset in [0x180, 0x181, 0x186, 0x187] {
        let mut claimed = report.clone();
        claimed[offset] = claimed[offset].wrapping_add(1);
        let refused = hypervisor_client::verify::check_vcek_matches_report(&vcek, &claimed);
        assert!(
            matches!(refused, Err(VerifyError::Evidence(_))),
            "offset {offset:#x}: {refused:?}"
        );
    }
    // CHIP_ID at 0x1A0.
    let mut other_chip = report.clone();
    other_chip[0x1A0] ^= 0x01;
    assert!(matches!(
        hypervisor_client::verify::check_vcek_matches_report(&vcek, &other_chip),
        Err(VerifyError::Evidence(_))
    ));
}

/// What a replica reads from an SNP peer's (or its own) evidence before verifying it holds the
/// reported TCB, so the reference set made from it ("its own platform") keeps that TCB as its
/// minimum: a peer on older firmware with the same launch measurement is not admitted.
/// Before, the TCB was left out and such a set had no SNP floor.
#[test]
fn an_snp_measurement_read_unverified_keeps_its_tcb_as_the_sets_minimum() {
    let report = hex::decode(
        String::from_utf8(sample("sev-snp/report_milan.hex"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let att = hypervisor_protocol::wire::Attestation {
        tee: "sev-snp".into(),
        simulated: false,
        evidence_format: "sev-snp-report".into(),
        evidence: hex::encode(&report),
        report_data: hex::encode(&report[0x50..0x90]),
        signing_key: hypervisor_protocol::ClientSecret::generate()
            .unwrap()
            .public_key()
            .to_hex(),
        host_measurement: hex::encode([7u8; 32]),
        key_created_at: 0,
        event_log: None,
    };
    let measured = hypervisor_client::verify::measured_unverified(&att).unwrap();
    let tcb = measured.snp_tcb.expect("the reported TCB");
    assert_eq!(
        tcb,
        [report[0x180], report[0x181], report[0x186], report[0x187]]
    );
    let set = hypervisor_protocol::reference::ReferenceValues::from_measured("own", &measured);
    assert!(set.tcb.snp_minimum.is_some(), "{set:?}");
}
