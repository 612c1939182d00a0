use super::*;

/// A decoded set as a verifier uses it: an empty TDX status list takes the policy's
/// (`UpToDate` by default).
fn policy_filled(mut set: ReferenceSet) -> ReferenceSet {
    if set.tdx_statuses.is_empty() {
        set.tdx_statuses = vec!["UpToDate".into()];
    }
    set
}

fn h48(b: u8) -> String {
    hex::encode([b; 48])
}

fn tdx_set() -> ReferenceValues {
    ReferenceValues {
        version: 1,
        name: "release 1 on dstack 0.5.8".into(),
        tee: "tdx".into(),
        tdx: Some(TdxReference {
            mrtd: h48(1),
            rtmr0: h48(2),
            rtmr1: h48(3),
            rtmr2: h48(4),
            app: AppReference {
                compose_hash: Some(hex::encode([5; 32])),
                app_id: None,
                host_event: false,
            },
        }),
        sev_snp: None,
        host_measurements: vec![hex::encode([6; 32])],
        tcb: TcbReference::default(),
    }
}

fn measured() -> Measured {
    Measured {
        tee: "tdx".into(),
        mrtd: Some([1; 48]),
        rtmrs: Some([[2; 48], [3; 48], [4; 48], [9; 48]]),
        compose_hash: Some(vec![5; 32]),
        host_measurement: [6; 32],
        tcb_status: Some("UpToDate".into()),
        ..Measured::default()
    }
}

#[test]
fn a_matching_platform_matches_and_each_register_is_named_when_it_differs() {
    let set = policy_filled(tdx_set().decode(0).unwrap());
    assert_eq!(set.mismatch(&measured()), None);
    let mut m = measured();
    m.mrtd = Some([7; 48]);
    assert_eq!(set.mismatch(&m).unwrap().register, "MRTD");
    let mut m = measured();
    m.rtmrs.as_mut().unwrap()[1] = [7; 48];
    assert_eq!(set.mismatch(&m).unwrap().register, "RTMR1");
    // RTMR3 itself is not compared (it holds per-instance events); its replayed identity is.
    let mut m = measured();
    m.rtmrs.as_mut().unwrap()[3] = [0; 48];
    assert_eq!(set.mismatch(&m), None);
    let mut m = measured();
    m.compose_hash = Some(vec![8; 32]);
    assert!(
        set.mismatch(&m)
            .unwrap()
            .register
            .starts_with("compose-hash")
    );
    let mut m = measured();
    m.compose_hash = None;
    let d = set.mismatch(&m).unwrap();
    assert_eq!(d.found, "none");
    // The host's own claim must be one the set lists, even on the right platform.
    let mut m = measured();
    m.host_measurement = [0; 32];
    assert!(
        set.mismatch(&m)
            .unwrap()
            .register
            .starts_with("host_measurement")
    );
    let mut m = measured();
    m.tee = "sev-snp".into();
    assert_eq!(set.mismatch(&m).unwrap().register, "tee");
}

#[test]
fn the_host_event_must_equal_the_claim() {
    let mut v = tdx_set();
    v.tdx.as_mut().unwrap().app = AppReference {
        compose_hash: None,
        app_id: None,
        host_event: true,
    };
    let set = policy_filled(v.decode(0).unwrap());
    let mut m = measured();
    m.host_event = Some([6; 32]);
    assert_eq!(set.mismatch(&m), None);
    m.host_event = Some([1; 32]);
    assert!(
        set.mismatch(&m)
            .unwrap()
            .register
            .contains("hypervisor-host-sha256")
    );
    m.host_event = None;
    assert!(set.mismatch(&m).is_some());
}

#[test]
fn sets_without_an_application_identity_or_host_claims_are_refused() {
    let mut v = tdx_set();
    v.tdx.as_mut().unwrap().app = AppReference::default();
    let e = v.decode(0).unwrap_err().to_string();
    assert!(e.contains("pins no application identity"), "{e}");
    let mut v = tdx_set();
    v.host_measurements.clear();
    assert!(v.decode(0).is_err());
    let mut v = tdx_set();
    v.tdx.as_mut().unwrap().rtmr1 = "00".into();
    let e = v.decode(0).unwrap_err().to_string();
    assert!(e.contains("tdx.rtmr1") && e.contains("48 bytes"), "{e}");
    let mut v = tdx_set();
    v.version = 2;
    assert!(v.decode(0).is_err());
    let mut v = tdx_set();
    v.tee = "sgx".into();
    assert!(v.decode(0).is_err());
}

#[test]
fn snp_sets_compare_launch_values_and_tcb() {
    let v = ReferenceValues {
        version: 1,
        name: String::new(),
        tee: "sev-snp".into(),
        tdx: None,
        sev_snp: Some(SnpReference {
            measurement: h48(1),
            host_data: Some(hex::encode([2; 32])),
            id_key_digest: None,
        }),
        host_measurements: vec![hex::encode([6; 32])],
        tcb: TcbReference {
            tdx_statuses: vec![],
            snp_minimum: Some("3,0,20,200".into()),
        },
    };
    let set = policy_filled(v.decode(4).unwrap());
    assert_eq!(set.name, "#4");
    let mut m = Measured {
        tee: "sev-snp".into(),
        snp_measurement: Some([1; 48]),
        host_data: Some([2; 32]),
        snp_tcb: Some([3, 0, 21, 210]),
        host_measurement: [6; 32],
        ..Measured::default()
    };
    assert_eq!(set.mismatch(&m), None);
    m.host_data = Some([0; 32]);
    assert_eq!(set.mismatch(&m).unwrap().register, "SNP HOST_DATA");
    m.host_data = Some([2; 32]);
    m.snp_tcb = Some([3, 0, 19, 210]);
    assert_eq!(set.mismatch(&m).unwrap().register, "SNP reported TCB");
}

#[test]
fn from_measured_round_trips_and_documents_parse() {
    let m = measured();
    let own = ReferenceValues::from_measured("this replica", &m);
    let set = policy_filled(own.decode(0).unwrap());
    assert_eq!(set.mismatch(&m), None);
    let text = serde_json::to_string(&vec![own.clone(), tdx_set()]).unwrap();
    assert_eq!(parse_document(&text).unwrap().len(), 2);
    let one = serde_json::to_string(&own).unwrap();
    assert_eq!(parse_document(&one).unwrap(), vec![own.clone()]);
    assert!(parse_document("[]").is_err());
    assert!(parse_document(r#"{"version":1,"tee":"tdx","extra":1}"#).is_err());
    // The digest is of the canonical JSON: key order in the source does not change it, and
    // neither does the case of its hex.
    let reordered: ReferenceValues = serde_json::from_str(&one).unwrap();
    assert_eq!(reordered.digest(), own.digest());
    assert_ne!(tdx_set().digest(), own.digest());
    let mut upper = own.clone();
    upper.host_measurements[0] = upper.host_measurements[0].to_ascii_uppercase();
    upper.tdx.as_mut().unwrap().mrtd = upper.tdx.as_ref().unwrap().mrtd.to_ascii_uppercase();
    assert!(upper.decode(0).is_ok());
    assert_eq!(upper.digest(), own.digest());
    // One spelling: a `0x` prefix is refused.
    let mut prefixed = own.clone();
    prefixed.host_measurements[0] = format!("0x{}", own.host_measurements[0]);
    assert!(
        prefixed
            .decode(0)
            .unwrap_err()
            .to_string()
            .contains("not hex")
    );
}

#[test]
fn an_empty_tdx_status_list_accepts_no_status_and_statuses_are_bounded() {
    let set = tdx_set().decode(0).unwrap();
    assert!(set.tdx_statuses.is_empty());
    let d = set.mismatch(&measured()).unwrap();
    assert_eq!(d.register, "TDX TCB status");
    let mut v = tdx_set();
    v.tcb.tdx_statuses = vec!["UpToDate".into(); 9];
    assert!(v.decode(0).is_err());
    v.tcb.tdx_statuses = vec!["Up To Date".into()];
    assert!(v.decode(0).is_err());
    let mut v = tdx_set();
    v.tcb.snp_minimum = Some("1,2,3,4".into());
    assert!(
        v.decode(0)
            .unwrap_err()
            .to_string()
            .contains("SEV-SNP sets only")
    );
    let mut v = tdx_set();
    v.tdx.as_mut().unwrap().app.app_id = Some(String::new());
    assert!(v.decode(0).is_err());
}

#[test]
fn match_any_names_each_sets_first_difference() {
    let a = policy_filled(tdx_set().decode(0).unwrap());
    let mut b = tdx_set();
    b.name = "other".into();
    b.tdx.as_mut().unwrap().mrtd = h48(9);
    let b = policy_filled(b.decode(1).unwrap());
    assert_eq!(
        match_any(&[b.clone(), a.clone()], &measured()).unwrap(),
        "release 1 on dstack 0.5.8"
    );
    let mut m = measured();
    m.rtmrs.as_mut().unwrap()[2] = [0; 48];
    let why = match_any(&[b, a], &m).unwrap_err();
    assert!(why.contains("`other`: MRTD differs"), "{why}");
    assert!(why.contains("RTMR2 differs"), "{why}");
}
