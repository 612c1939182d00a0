//! Fetching TDX collateral from a PCCS: a fake PCCS on loopback serves the real collateral of
//! `../shared/attestation-samples/tdx/tdx_quote` through the v4 API (URL-encoded issuer-chain
//! headers, JSON bodies, hex root CA CRL). The fetched collateral must verify the real quote.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use dcap_qvl::QuoteCollateralV3;
use hypervisor_client::verify::{Policy, VerifyError, fetch_tdx_collateral, verify_tdx_quote_with};

fn sample(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/attestation-samples")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Serves the collateral; returns the base URL and the log of requested paths.
fn fake_pccs(c: QuoteCollateralV3) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            seen.lock().unwrap().push(path.clone());
            let (status, header, body): (&str, Option<(&str, String)>, Vec<u8>) =
                if path.starts_with("/sgx/certification/v4/pckcrl") {
                    (
                        "200 OK",
                        Some(("SGX-PCK-CRL-Issuer-Chain", encode(&c.pck_crl_issuer_chain))),
                        c.pck_crl.clone(),
                    )
                } else if path.starts_with("/tdx/certification/v4/tcb?") {
                    let body = format!(
                        "{{\"tcbInfo\":{},\"signature\":\"{}\"}}",
                        c.tcb_info,
                        hex::encode(&c.tcb_info_signature)
                    );
                    (
                        "200 OK",
                        Some(("TCB-Info-Issuer-Chain", encode(&c.tcb_info_issuer_chain))),
                        body.into_bytes(),
                    )
                } else if path.starts_with("/tdx/certification/v4/qe/identity") {
                    let body = format!(
                        "{{\"enclaveIdentity\":{},\"signature\":\"{}\"}}",
                        c.qe_identity,
                        hex::encode(&c.qe_identity_signature)
                    );
                    (
                        "200 OK",
                        Some((
                            "SGX-Enclave-Identity-Issuer-Chain",
                            encode(&c.qe_identity_issuer_chain),
                        )),
                        body.into_bytes(),
                    )
                } else if path == "/sgx/certification/v4/rootcacrl" {
                    ("200 OK", None, hex::encode(&c.root_ca_crl).into_bytes())
                } else {
                    ("404 Not Found", None, Vec::new())
                };
            let mut out = stream;
            let mut head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            if let Some((k, v)) = header {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = out.write_all(head.as_bytes());
            let _ = out.write_all(&body);
        }
    });
    (base, log)
}

#[test]
fn collateral_fetched_from_a_pccs_verifies_the_quote() {
    let collateral: QuoteCollateralV3 =
        serde_json::from_slice(&sample("tdx/tdx_quote_collateral.json")).unwrap();
    let (base, log) = fake_pccs(collateral.clone());
    let quote = sample("tdx/tdx_quote");
    let fetched = fetch_tdx_collateral(&base, &quote).unwrap();
    assert_eq!(fetched.pck_crl, collateral.pck_crl);
    assert_eq!(fetched.root_ca_crl, collateral.root_ca_crl);
    assert_eq!(
        fetched.tcb_info_issuer_chain,
        collateral.tcb_info_issuer_chain
    );
    let paths = log.lock().unwrap().clone();
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("/tdx/certification/v4/tcb?fmspc=")
                && p.contains("update=standard")),
        "{paths:?}"
    );
    assert!(paths.iter().any(|p| p.contains("pckcrl?ca=p")), "{paths:?}");

    let policy = Policy {
        now: Some(1_750_377_600),
        allow_debug: true,
        ..Policy::default()
    };
    let claims = verify_tdx_quote_with(&quote, &fetched, &policy).unwrap();
    assert_eq!(claims.tcb_status, "UpToDate");
}

#[test]
fn an_unreachable_or_broken_pccs_is_a_clear_error() {
    let quote = sample("tdx/tdx_quote");
    // Nothing listens here.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    assert!(matches!(
        fetch_tdx_collateral(&url, &quote),
        Err(VerifyError::MissingInput(_))
    ));
    // A server that answers 404 to everything.
    let empty = QuoteCollateralV3 {
        tcb_info: "{}".into(),
        qe_identity: "{}".into(),
        ..serde_json::from_slice(&sample("tdx/tdx_quote_collateral.json")).unwrap()
    };
    let (base, _) = fake_pccs(empty);
    let wrong = format!("{base}/nothing-here");
    match fetch_tdx_collateral(&wrong, &quote) {
        Err(VerifyError::MissingInput(m)) => assert!(m.contains("404"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        fetch_tdx_collateral("http://127.0.0.1:1", b"not a quote"),
        Err(VerifyError::Malformed(_))
    ));
}

/// `verify_attestation` fetches the collateral from the policy's PCCS when none is given (as
/// `exec --verifiable --pccs`, a replica's `cluster.pccs_url` and a host's `egress.pccs_url`
/// ask): the quote verifies and the chain goes on to the binding, which this sample (someone
/// else's REPORTDATA) fails, instead of stopping at missing collateral.
#[test]
fn verify_attestation_fetches_collateral_from_the_pccs() {
    use hypervisor_client::verify::verify_attestation;
    let collateral: QuoteCollateralV3 =
        serde_json::from_slice(&sample("tdx/tdx_quote_collateral.json")).unwrap();
    let (base, log) = fake_pccs(collateral);
    let quote = sample("tdx/tdx_quote");
    let att = hypervisor_protocol::wire::Attestation {
        tee: "tdx".into(),
        simulated: false,
        evidence_format: "tdx-dcap-quote".into(),
        evidence: hex::encode(&quote),
        report_data: hex::encode(&quote[568..632]),
        signing_key: hypervisor_protocol::ClientSecret::generate()
            .unwrap()
            .public_key()
            .to_hex(),
        host_measurement: hex::encode([1u8; 32]),
        key_created_at: 0,
        event_log: None,
    };
    let without = Policy {
        now: Some(1_750_377_600),
        allow_debug: true,
        accept_any_measurement: true,
        ..Policy::default()
    };
    assert!(matches!(
        verify_attestation(&att, &without),
        Err(VerifyError::MissingInput(_))
    ));
    let with = Policy {
        pccs_url: Some(base),
        ..without
    };
    assert_eq!(verify_attestation(&att, &with), Err(VerifyError::Binding));
    assert!(!log.lock().unwrap().is_empty(), "the PCCS was asked");
}
