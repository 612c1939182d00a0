//! Test vectors from real dstack TDX evidence (`shared/attestation-samples/dstack/`, see its
//! README for where each file comes from and the values recomputed independently), and a
//! synthetic TCG CCEL.

use std::path::PathBuf;

use hypervisor_eventlog::{
    AppIdentity, Digest48, EV_NO_ACTION, Event, EventLogError, HOST_EVENT, MAX_EVENTS,
    MAX_INPUT_BYTES, MAX_NAME_BYTES, MAX_PAYLOAD_BYTES, RUNTIME_EVENT_TYPE, SYSTEM_READY,
    TPM_ALG_SHA384, covered, identity, parse_json, parse_tcg, replay, runtime_digest_v1,
    runtime_digest_v2, runtime_preimage_v1, runtime_preimage_v2, to_json,
};
use sha2::{Digest as _, Sha256, Sha384};

// ---------------------------------------------------------------------------------------------
// Loading the samples

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/attestation-samples/dstack")
}

fn read(rel: &str) -> Vec<u8> {
    let path = samples().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&read(rel)).unwrap()
}

/// A sample: its event log text (as dstack sends it), the parsed events and the quote bytes.
struct Sample {
    name: &'static str,
    log: String,
    events: Vec<Event>,
    quote: Vec<u8>,
}

/// `quote-report.json` / `tdx-lite-getquote.json`: a `GetQuote` response whose `event_log` is a
/// JSON string holding the array and whose `quote` is hex.
fn getquote(name: &'static str) -> Sample {
    let doc = json(name);
    let log = doc["event_log"].as_str().unwrap().to_owned();
    let quote = hex::decode(doc["quote"].as_str().unwrap()).unwrap();
    let events = parse_json(&log).unwrap();
    Sample {
        name,
        log,
        events,
        quote,
    }
}

/// `near-mpc/`: `tcb_info.json` holds `event_log` as a JSON list; `quote.json` is a JSON array
/// of byte values.
fn near_mpc() -> Sample {
    let tcb = json("near-mpc/tcb_info.json");
    let log = serde_json::to_string(&tcb["event_log"]).unwrap();
    let quote: Vec<u8> = serde_json::from_slice(&read("near-mpc/quote.json")).unwrap();
    let events = parse_json(&log).unwrap();
    Sample {
        name: "near-mpc",
        log,
        events,
        quote,
    }
}

fn all_samples() -> [Sample; 3] {
    [
        getquote("quote-report.json"),
        getquote("tdx-lite-getquote.json"),
        near_mpc(),
    ]
}

/// RTMR0..3 of a TDX v4 quote: 48 bytes each at absolute offsets 376, 424, 472, 520.
fn quote_rtmrs(quote: &[u8]) -> [Digest48; 4] {
    assert_eq!(quote.len(), 5006);
    [376, 424, 472, 520].map(|off| quote[off..off + 48].try_into().unwrap())
}

fn h48(s: &str) -> Digest48 {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn rtmr3_names(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter(|e| e.imr == 3)
        .map(|e| e.event.as_str())
        .collect()
}

fn index_of(events: &[Event], name: &str) -> usize {
    events.iter().position(|e| e.event == name).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Replay against the quotes

#[test]
fn every_sample_replays_to_all_four_rtmrs_of_its_quote() {
    for s in all_samples() {
        let replayed = replay(&s.events).unwrap();
        assert_eq!(replayed, quote_rtmrs(&s.quote), "{}", s.name);
        assert_eq!(covered(&s.events), [true; 4], "{}", s.name);
    }
}

#[test]
fn rtmr3_values_and_event_counts_are_the_readme_ones() {
    let expected = [
        (
            "quote-report.json",
            28,
            "0f787c3877f3e95095d5a4d13dd0fe0233803b30120d8469866719dc28f519ce021fe1e53459121e7a5a4443147185a8",
        ),
        (
            "tdx-lite-getquote.json",
            29,
            "6f24c170d0fd63fc2b1b53202eea47b013978437fa6982cf5e0438ff95c208994aaa0f4ebab2e3a66824b5b56869137e",
        ),
        (
            "near-mpc",
            29,
            "86f1808cffc050f3c0c09d29da2bfcec7eba3e8fa52016a7341f28884230f9ca8b56400413d57bce00b578e36790b555",
        ),
    ];
    for (s, (name, count, rtmr3)) in all_samples().into_iter().zip(expected) {
        assert_eq!(s.name, name);
        assert_eq!(s.events.len(), count, "{name}");
        assert_eq!(replay(&s.events).unwrap()[3], h48(rtmr3), "{name}");
    }
}

#[test]
fn near_mpc_tcb_info_registers_equal_the_replay() {
    let s = near_mpc();
    let tcb = json("near-mpc/tcb_info.json");
    let replayed = replay(&s.events).unwrap();
    for (i, r) in replayed.iter().enumerate() {
        assert_eq!(
            hex::encode(r),
            tcb[format!("rtmr{i}")].as_str().unwrap(),
            "rtmr{i}"
        );
    }
}

#[test]
fn rtmr3_event_order_is_the_readme_one() {
    let [report, lite, near] = all_samples();
    assert_eq!(
        rtmr3_names(&report.events),
        [
            "system-preparing",
            "app-id",
            "compose-hash",
            "instance-id",
            "boot-mr-done",
            "key-provider",
            "system-ready",
            "LIUM_MINER_HOTKEY"
        ]
    );
    assert_eq!(
        rtmr3_names(&lite.events),
        [
            "system-preparing",
            "app-id",
            "compose-hash",
            "instance-id",
            "boot-mr-done",
            "os-image-hash",
            "key-provider",
            "storage-fs",
            "system-ready"
        ]
    );
    assert_eq!(
        rtmr3_names(&near.events),
        [
            "system-preparing",
            "app-id",
            "compose-hash",
            "instance-id",
            "boot-mr-done",
            "key-provider",
            "storage-fs",
            "system-ready",
            "mpc-image-digest"
        ]
    );
}

#[test]
fn supplied_runtime_digests_are_v1_and_stripped_ones_are_recomputed() {
    let [report, lite, near] = all_samples();
    for s in [&report, &near] {
        for e in s.events.iter().filter(|e| e.is_runtime()) {
            assert_eq!(
                e.digest,
                runtime_digest_v1(&e.event, &e.event_payload),
                "{}",
                s.name
            );
        }
    }
    // The lite sample's runtime digests arrive empty; its boot digests do not.
    for e in &lite.events {
        assert_eq!(e.digest.is_empty(), e.is_runtime(), "{}", e.event);
    }
}

// ---------------------------------------------------------------------------------------------
// Identity

#[test]
fn identity_of_each_sample() {
    let compose = [
        "3763bc34552cf3a27ff71ad5f7a90471562a1a2df552dfc1998cba2d60da27e7",
        "86b0e55f2fa8e4fb69d890f14f54d5612707646e2573d54e0d2ddaaade77caa9",
        "2911e1f733466216dedb862d6d669e11256ee7a34ce4dbc66c4b807ba7a9c895",
    ];
    for (s, compose) in all_samples().into_iter().zip(compose) {
        let id = identity(&s.events).unwrap();
        let ch = id.compose_hash.clone().unwrap();
        assert_eq!(hex::encode(&ch), compose, "{}", s.name);
        assert_eq!(id.app_id.as_deref(), Some(&ch[..20]), "{}", s.name);
        assert!(id.system_ready, "{}", s.name);
        assert_eq!(id.host_sha256, None, "{}", s.name);
    }
    let [report, lite, near] = all_samples();
    let id = identity(&report.events).unwrap();
    assert!(
        id.key_provider
            .unwrap()
            .starts_with(br#"{"name":"local-sgx","id":"1b7a4937"#)
    );
    assert_eq!(id.os_image_hash, None);
    assert_eq!(id.instance_id.unwrap().len(), 20);
    let id = identity(&lite.events).unwrap();
    assert!(
        id.key_provider
            .unwrap()
            .starts_with(br#"{"name":"kms","id":"3059"#)
    );
    assert_eq!(
        hex::encode(id.os_image_hash.unwrap()),
        "07a2388c7a6a1b6a646d443f1517990a4ec294471d63146cda9d56972765051d"
    );
    let id = identity(&near.events).unwrap();
    assert_eq!(
        id.instance_id,
        Some(vec![]),
        "no_instance_id: measured empty"
    );
}

#[test]
fn near_mpc_compose_hash_is_sha256_of_the_raw_app_compose_bytes() {
    let bytes = read("near-mpc/app_compose.json");
    let id = identity(&near_mpc().events).unwrap();
    let compose_hash = id.compose_hash.unwrap();
    assert_eq!(Sha256::digest(&bytes).as_slice(), compose_hash.as_slice());
    let tcb = json("near-mpc/tcb_info.json");
    assert_eq!(
        tcb["app_compose"].as_str().unwrap().as_bytes(),
        bytes.as_slice()
    );
    assert_eq!(
        tcb["compose_hash"].as_str().unwrap(),
        hex::encode(&compose_hash)
    );

    // The deploy tools' canonical form (sorted keys, compact) is another document: its hash is
    // not the measured one.
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let mut canonical = String::new();
    sorted_compact(&value, &mut canonical);
    assert_ne!(canonical.as_bytes(), bytes.as_slice());
    assert_ne!(
        Sha256::digest(canonical.as_bytes()).as_slice(),
        compose_hash.as_slice()
    );
}

/// Compact JSON with object keys sorted, whatever serde_json's map order.
fn sorted_compact(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).unwrap());
                out.push(':');
                sorted_compact(&map[k], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                sorted_compact(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&serde_json::to_string(other).unwrap()),
    }
}

#[test]
fn events_after_system_ready_are_never_identity() {
    let s = getquote("quote-report.json");
    let before = identity(&s.events).unwrap();
    // LIUM_MINER_HOTKEY comes after system-ready: renaming it to identity names changes nothing.
    let lium = index_of(&s.events, "LIUM_MINER_HOTKEY");
    assert!(lium > index_of(&s.events, SYSTEM_READY));
    for name in [
        "compose-hash",
        "app-id",
        "key-provider",
        "os-image-hash",
        "instance-id",
    ] {
        let mut events = s.events.clone();
        events[lium] = Event::runtime(name, &events[lium].event_payload);
        assert_eq!(identity(&events).unwrap(), before, "{name}");
    }
    // The same for a wrong-length host event after system-ready: ignored, not an error.
    let mut events = s.events.clone();
    events.push(Event::runtime(HOST_EVENT, b"short"));
    assert_eq!(identity(&events).unwrap(), before);
}

#[test]
fn a_second_compose_hash_after_system_ready_does_not_override_the_first() {
    for s in all_samples() {
        let before = identity(&s.events).unwrap();
        let mut events = s.events.clone();
        events.push(Event::runtime("compose-hash", &[0x66; 32]));
        events.push(Event::runtime("app-id", &[0x66; 20]));
        // The forged log replays (an app could really extend these on dstack 0.5.x) ...
        let rtmr3 = replay(&events).unwrap()[3];
        assert_ne!(rtmr3, quote_rtmrs(&s.quote)[3]);
        // ... but identity stops at system-ready.
        assert_eq!(identity(&events).unwrap(), before, "{}", s.name);
    }
}

#[test]
fn without_system_ready_every_runtime_event_counts_and_the_first_wins() {
    let events = vec![
        Event::runtime("compose-hash", &[1; 32]),
        Event::runtime("compose-hash", &[2; 32]),
        Event::runtime("app-id", &[3; 20]),
        Event::runtime(HOST_EVENT, &[4; 32]),
        Event::runtime(HOST_EVENT, &[5; 31]),
    ];
    let id = identity(&events).unwrap();
    assert_eq!(
        id,
        AppIdentity {
            compose_hash: Some(vec![1; 32]),
            app_id: Some(vec![3; 20]),
            host_sha256: Some([4; 32]),
            system_ready: false,
            ..AppIdentity::default()
        }
    );
    // Only runtime events (imr 3, runtime type) are read.
    let mut boot = Event::runtime("compose-hash", &[9; 32]);
    boot.imr = 2;
    assert_eq!(identity(&[boot]).unwrap().compose_hash, None);
}

#[test]
fn a_counted_host_event_must_carry_32_bytes() {
    let events = vec![
        Event::runtime("compose-hash", &[1; 32]),
        Event::runtime(HOST_EVENT, &[4; 31]),
        Event::runtime(SYSTEM_READY, b""),
    ];
    assert_eq!(
        identity(&events),
        Err(EventLogError::HostDigestLength { index: 1, len: 31 })
    );
}

// ---------------------------------------------------------------------------------------------
// Tampering

#[test]
fn a_flipped_payload_byte_is_refused_or_replays_to_another_rtmr3() {
    for s in all_samples() {
        let quote = quote_rtmrs(&s.quote);
        let i = index_of(&s.events, "compose-hash");
        let mut events = s.events.clone();
        events[i].event_payload[0] ^= 1;
        if events[i].digest.is_empty() {
            assert_ne!(replay(&events).unwrap()[3], quote[3], "{}", s.name);
        } else {
            // A supplied digest no longer matches its payload.
            assert_eq!(
                replay(&events),
                Err(EventLogError::DigestMismatch {
                    index: i,
                    name: "compose-hash".into()
                }),
                "{}",
                s.name
            );
            // Stripped of its digest, as the lite sample's, it replays to another RTMR3.
            events[i].digest.clear();
            assert_ne!(replay(&events).unwrap()[3], quote[3], "{}", s.name);
        }
    }
}

#[test]
fn a_changed_event_name_replays_to_another_rtmr3() {
    for s in all_samples() {
        let quote = quote_rtmrs(&s.quote);
        let i = index_of(&s.events, "app-id");
        let mut events = s.events.clone();
        events[i].event = "app-iD".into();
        events[i].digest.clear();
        let replayed = replay(&events).unwrap();
        assert_ne!(replayed[3], quote[3], "{}", s.name);
        assert_eq!(replayed[..3], quote[..3], "{}", s.name);
    }
}

#[test]
fn swapped_rtmr3_events_replay_to_another_rtmr3() {
    for s in all_samples() {
        let quote = quote_rtmrs(&s.quote);
        let a = index_of(&s.events, "app-id");
        let b = index_of(&s.events, "compose-hash");
        let mut events = s.events.clone();
        events.swap(a, b);
        assert_ne!(replay(&events).unwrap()[3], quote[3], "{}", s.name);
        // Identity read from the swapped log is unchanged: only the replay catches it.
        assert_eq!(identity(&events), identity(&s.events));
    }
}

#[test]
fn a_flipped_boot_digest_changes_only_its_register() {
    let s = near_mpc();
    let quote = quote_rtmrs(&s.quote);
    let mut events = s.events.clone();
    let i = events.iter().position(|e| e.imr == 1).unwrap();
    events[i].digest[0] ^= 1;
    let replayed = replay(&events).unwrap();
    assert_ne!(replayed[1], quote[1]);
    assert_eq!(
        [replayed[0], replayed[2], replayed[3]],
        [quote[0], quote[2], quote[3]]
    );
}

#[test]
fn a_wrong_supplied_runtime_digest_is_a_mismatch() {
    let mut ev = Event::runtime("compose-hash", &[1; 32]);
    ev.digest = runtime_digest_v1("compose-hash", &[2; 32]).to_vec();
    let events = vec![Event::runtime("app-id", &[1; 20]), ev];
    let err = replay(&events).unwrap_err();
    assert_eq!(
        err,
        EventLogError::DigestMismatch {
            index: 1,
            name: "compose-hash".into()
        }
    );
    assert!(err.to_string().contains("event 1"), "{err}");
    // A wrong-length supplied runtime digest is a mismatch too.
    let mut ev = Event::runtime("x", b"");
    ev.digest.truncate(20);
    assert!(matches!(
        ev.extend_digest(7),
        Err(EventLogError::DigestMismatch { index: 7, .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Malformed JSON logs

fn one(fields: &str) -> String {
    format!("[{{{fields}}}]")
}

const D48: &str = "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

#[test]
fn malformed_json_logs_are_typed_errors() {
    let err = |text: &str| parse_json(text).unwrap_err();
    assert!(matches!(err("{}"), EventLogError::Json(_)));
    assert!(matches!(err("not json"), EventLogError::Json(_)));
    assert!(matches!(
        err(
            &one(r#""imr":0,"event_type":1,"event":"","event_payload":"""#)
                .replace("\"imr\":0,", "")
        ),
        EventLogError::Json(_)
    ));
    assert!(matches!(
        err(&one(
            r#""imr":3,"event_type":1,"digest":"","event":"","event_payload":"zz""#
        )),
        EventLogError::InvalidHex {
            index: 0,
            field: "event_payload",
            ..
        }
    ));
    assert!(matches!(
        err(&one(
            r#""imr":3,"event_type":1,"digest":"abc","event":"","event_payload":"""#
        )),
        EventLogError::InvalidHex {
            index: 0,
            field: "digest",
            ..
        }
    ));
    // A 47-byte boot digest.
    let short = &D48[..94];
    assert_eq!(
        err(&one(&format!(
            r#""imr":0,"event_type":1,"digest":"{short}","event":"","event_payload":"""#
        ))),
        EventLogError::DigestLength { index: 0, len: 47 }
    );
    assert_eq!(
        err(&one(&format!(
            r#""imr":4,"event_type":1,"digest":"{D48}","event":"","event_payload":"""#
        ))),
        EventLogError::InvalidImr { index: 0, imr: 4 }
    );
    let long_name = "n".repeat(MAX_NAME_BYTES + 1);
    assert!(matches!(
        err(&one(&format!(
            r#""imr":3,"event_type":1,"event":"{long_name}","event_payload":"""#
        ))),
        EventLogError::NameTooLong { index: 0, .. }
    ));
    let big = "00".repeat(MAX_PAYLOAD_BYTES + 1);
    assert!(matches!(
        err(&one(&format!(
            r#""imr":3,"event_type":1,"event":"","event_payload":"{big}""#
        ))),
        EventLogError::FieldTooLarge {
            index: 0,
            field: "event_payload",
            ..
        }
    ));
}

#[test]
fn an_empty_boot_digest_is_refused_at_replay() {
    let events = parse_json(&one(
        r#""imr":0,"event_type":1,"digest":"","event":"","event_payload":"""#,
    ))
    .unwrap();
    assert_eq!(
        replay(&events),
        Err(EventLogError::DigestLength { index: 0, len: 0 })
    );
    // And a hand-built event with an imr out of range.
    let mut ev = Event::runtime("a", b"");
    ev.imr = 7;
    ev.event_type = 1;
    ev.digest = vec![0; 48];
    assert_eq!(
        replay(&[ev]),
        Err(EventLogError::InvalidImr { index: 0, imr: 7 })
    );
}

#[test]
fn huge_inputs_are_refused() {
    let huge = " ".repeat(MAX_INPUT_BYTES + 1);
    assert_eq!(
        parse_json(&huge),
        Err(EventLogError::InputTooLarge {
            size: MAX_INPUT_BYTES + 1,
            limit: MAX_INPUT_BYTES
        })
    );
    assert!(matches!(
        parse_tcg(huge.as_bytes()),
        Err(EventLogError::InputTooLarge { .. })
    ));
    let ev = r#"{"imr":3,"event_type":1,"event":"","event_payload":""}"#;
    let many = format!("[{}]", vec![ev; MAX_EVENTS + 1].join(","));
    assert!(matches!(
        parse_json(&many),
        Err(EventLogError::TooManyEvents { .. })
    ));
    let events = vec![Event::runtime("a", b""); MAX_EVENTS + 1];
    assert!(matches!(
        replay(&events),
        Err(EventLogError::TooManyEvents { .. })
    ));
    assert!(matches!(
        identity(&events),
        Err(EventLogError::TooManyEvents { .. })
    ));
    // Hand-built events are bounded too.
    let ev = Event::runtime(&"n".repeat(MAX_NAME_BYTES + 1), b"");
    assert!(matches!(
        ev.extend_digest(0),
        Err(EventLogError::NameTooLong { .. })
    ));
}

#[test]
fn unknown_fields_are_ignored_and_digest_may_be_missing() {
    let events = parse_json(
        r#"[{"imr":3,"event_type":134217729,"event":"app-id","event_payload":"0102","extra":[1,{"a":2}]}]"#,
    )
    .unwrap();
    assert_eq!(
        events,
        vec![Event {
            digest: vec![],
            ..Event::runtime("app-id", &[1, 2])
        }]
    );
}

// ---------------------------------------------------------------------------------------------
// Runtime digest versions

#[test]
fn v2_preimage_is_the_canonical_jcs_document() {
    assert_eq!(
        runtime_preimage_v2("compose-hash", &[0xab, 0xcd]),
        br#"{"name":"compose-hash","payload":"abcd","type":134217729}"#
    );
    // JCS string escaping: quote, backslash, short forms, \u00xx for other controls, UTF-8 as is.
    assert_eq!(
        runtime_preimage_v2("a\"b\\c\n\u{1}é", &[0xff]),
        "{\"name\":\"a\\\"b\\\\c\\n\\u0001é\",\"payload\":\"ff\",\"type\":134217729}".as_bytes()
    );
    let d: Digest48 = Sha384::digest(runtime_preimage_v2("compose-hash", &[0xab, 0xcd])).into();
    assert_eq!(d, runtime_digest_v2("compose-hash", &[0xab, 0xcd]));
    assert_ne!(d, runtime_digest_v1("compose-hash", &[0xab, 0xcd]));
    // v1 by hand: le32(0x08000001) || ":" || name || ":" || payload.
    let mut v1 = vec![0x01, 0x00, 0x00, 0x08, b':'];
    v1.extend_from_slice(b"compose-hash:");
    v1.extend_from_slice(&[0xab, 0xcd]);
    assert_eq!(runtime_preimage_v1("compose-hash", &[0xab, 0xcd]), v1);
    let d1: Digest48 = Sha384::digest(&v1).into();
    assert_eq!(d1, runtime_digest_v1("compose-hash", &[0xab, 0xcd]));
}

#[test]
fn v2_events_are_recomputed_and_their_preimage_checked() {
    let name = "compose-hash";
    let payload = [0xab, 0xcd];
    let v2 = Event {
        version: Some(2),
        digest: vec![],
        preimage: Some(runtime_preimage_v2(name, &payload)),
        ..Event::runtime(name, &payload)
    };
    assert_eq!(v2.extend_digest(0), Ok(runtime_digest_v2(name, &payload)));
    // The supplied digest must be the v2 one.
    let with_v1_digest = Event {
        digest: runtime_digest_v1(name, &payload).to_vec(),
        ..v2.clone()
    };
    assert!(matches!(
        with_v1_digest.extend_digest(3),
        Err(EventLogError::DigestMismatch { index: 3, .. })
    ));
    // A preimage that is not the canonical one (here: keys in another order).
    let reordered = Event {
        preimage: Some(br#"{"payload":"abcd","name":"compose-hash","type":134217729}"#.to_vec()),
        ..v2.clone()
    };
    assert!(matches!(
        reordered.extend_digest(0),
        Err(EventLogError::PreimageMismatch { .. })
    ));
    // A v1 event's preimage is checked against the v1 bytes.
    let v1 = Event {
        preimage: Some(runtime_preimage_v1(name, &payload)),
        ..Event::runtime(name, &payload)
    };
    assert!(v1.extend_digest(0).is_ok());
    let v1_bad = Event {
        preimage: Some(runtime_preimage_v2(name, &payload)),
        ..v1.clone()
    };
    assert!(matches!(
        v1_bad.extend_digest(0),
        Err(EventLogError::PreimageMismatch { .. })
    ));
    assert_eq!(
        Event {
            version: Some(3),
            ..v1
        }
        .extend_digest(5),
        Err(EventLogError::UnsupportedVersion {
            index: 5,
            version: 3
        })
    );
    // Through JSON: version and preimage are read and written.
    let text = to_json(std::slice::from_ref(&v2));
    assert!(text.contains(r#""version":2"#), "{text}");
    let back = parse_json(&text).unwrap();
    assert_eq!(back[0].preimage, v2.preimage);
    assert_eq!(back[0].digest, runtime_digest_v2(name, &payload));
}

// ---------------------------------------------------------------------------------------------
// JSON round trip

#[test]
fn to_json_round_trips_through_parse_json() {
    for s in all_samples() {
        let text = to_json(&s.events);
        let back = parse_json(&text).unwrap();
        if s.events.iter().all(|e| !e.digest.is_empty()) {
            assert_eq!(back, s.events, "{}", s.name);
        } else {
            // Stripped runtime digests come back computed; nothing else changes.
            let filled: Vec<Event> = s
                .events
                .iter()
                .enumerate()
                .map(|(i, e)| Event {
                    digest: e.extend_digest(i).unwrap().to_vec(),
                    ..e.clone()
                })
                .collect();
            assert_eq!(back, filled, "{}", s.name);
        }
        assert_eq!(replay(&back), replay(&s.events), "{}", s.name);
        assert_eq!(to_json(&back), text, "{}", s.name);
    }
}

#[test]
fn to_json_of_the_sample_matches_dstack_field_for_field() {
    // Same events, same field values as dstack wrote them (the samples use lowercase hex).
    let s = getquote("quote-report.json");
    let ours: serde_json::Value = serde_json::from_str(&to_json(&s.events)).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(&s.log).unwrap();
    assert_eq!(ours, theirs);
}

// ---------------------------------------------------------------------------------------------
// TCG binary log (CCEL)

const SHA256_ALG: u16 = 0x000B;

fn spec_id_header(algorithms: &[(u16, u16)], signature: &[u8; 16]) -> Vec<u8> {
    let mut body = signature.to_vec();
    body.extend_from_slice(&0u32.to_le_bytes()); // platformClass
    body.extend_from_slice(&[0, 2, 0, 2]); // specVersionMinor, Major, errata, uintnSize
    body.extend_from_slice(&(algorithms.len() as u32).to_le_bytes());
    for &(id, size) in algorithms {
        body.extend_from_slice(&id.to_le_bytes());
        body.extend_from_slice(&size.to_le_bytes());
    }
    body.push(0); // vendorInfoSize
    let mut out = Vec::new();
    out.extend_from_slice(&0u32.to_le_bytes()); // pcrIndex
    out.extend_from_slice(&EV_NO_ACTION.to_le_bytes());
    out.extend_from_slice(&[0; 20]);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn record(mr: u32, event_type: u32, digests: &[(u16, Vec<u8>)], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&mr.to_le_bytes());
    out.extend_from_slice(&event_type.to_le_bytes());
    out.extend_from_slice(&(digests.len() as u32).to_le_bytes());
    for (alg, d) in digests {
        out.extend_from_slice(&alg.to_le_bytes());
        out.extend_from_slice(d);
    }
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

fn both(data: &[u8]) -> Vec<(u16, Vec<u8>)> {
    vec![
        (SHA256_ALG, Sha256::digest(data).to_vec()),
        (TPM_ALG_SHA384, Sha384::digest(data).to_vec()),
    ]
}

/// A CCEL: header declaring SHA-256 and SHA-384, an MRTD (MR 0) record, one record each for
/// MR 1..4, an EV_NO_ACTION record, a second MR 1 record, then 0xFF padding. Returns the
/// bytes, the record boundaries and the expected events.
fn synthetic_ccel() -> (Vec<u8>, Vec<usize>, Vec<Event>) {
    let algs = [(SHA256_ALG, 32), (TPM_ALG_SHA384, 48)];
    let mut bytes = spec_id_header(&algs, b"Spec ID Event03\0");
    let mut bounds = vec![bytes.len()];
    let mut expected = Vec::new();
    let items: [(u32, u32, &[u8]); 7] = [
        (0, 0x8000_0008, b"mrtd firmware blob"),
        (1, 0x8000_000A, b"td hob"),
        (2, 0x8000_0003, b"kernel"),
        (3, 0x0000_0006, b"cmdline"),
        (4, 0x0000_000D, b"rtmr3 from firmware"),
        (1, EV_NO_ACTION, b"informational"),
        (1, 0x0000_0004, &[0, 0, 0, 0]),
    ];
    for (mr, ty, data) in items {
        bytes.extend_from_slice(&record(mr, ty, &both(data), data));
        bounds.push(bytes.len());
        if mr != 0 && ty != EV_NO_ACTION {
            expected.push(Event {
                imr: mr - 1,
                event_type: ty,
                digest: Sha384::digest(data).to_vec(),
                event: String::new(),
                event_payload: data.to_vec(),
                version: None,
                preimage: None,
            });
        }
    }
    bytes.extend_from_slice(&[0xFF; 512]);
    (bytes, bounds, expected)
}

fn extend(r: Digest48, d: &[u8]) -> Digest48 {
    let mut h = Sha384::new();
    h.update(r);
    h.update(d);
    h.finalize().into()
}

#[test]
fn a_synthetic_ccel_parses_and_replays_to_the_hand_computed_chain() {
    let (bytes, _, expected) = synthetic_ccel();
    let events = parse_tcg(&bytes).unwrap();
    assert_eq!(events, expected);
    assert_eq!(covered(&events), [true; 4]);
    let z = [0u8; 48];
    let sha = |d: &[u8]| -> Vec<u8> { Sha384::digest(d).to_vec() };
    // An RTMR3 event that is not a runtime event cannot have its digest recomputed, so its
    // type could be relabelled unseen: refused.
    assert!(matches!(
        replay(&events),
        Err(EventLogError::NotRuntimeEvent {
            index: 3,
            event_type: 0x0000_000D
        })
    ));
    let firmware: Vec<Event> = events.iter().filter(|e| e.imr < 3).cloned().collect();
    let want = [
        extend(extend(z, &sha(b"td hob")), &sha(&[0, 0, 0, 0])),
        extend(z, &sha(b"kernel")),
        extend(z, &sha(b"cmdline")),
        z,
    ];
    assert_eq!(replay(&firmware).unwrap(), want);
    // The same events survive the JSON form.
    assert_eq!(parse_json(&to_json(&events)).unwrap(), events);
    // Zero padding ends the log as well, and so does no padding at all.
    let end = bytes.len() - 512;
    let mut zeros = bytes[..end].to_vec();
    zeros.extend_from_slice(&[0; 300]);
    assert_eq!(parse_tcg(&zeros).unwrap(), expected);
    assert_eq!(parse_tcg(&bytes[..end]).unwrap(), expected);
}

#[test]
fn a_truncated_ccel_is_an_error() {
    let (bytes, bounds, _) = synthetic_ccel();
    let end = *bounds.last().unwrap();
    for cut in 1..end {
        let piece = &bytes[..cut];
        let result = parse_tcg(piece);
        if bounds.contains(&cut) {
            assert!(result.is_ok(), "cut at a record boundary {cut}");
            continue;
        }
        // A cut inside a record whose remaining bytes happen to be all zero reads as padding.
        let start = bounds
            .iter()
            .rev()
            .find(|&&b| b < cut)
            .copied()
            .unwrap_or(0);
        if cut > bounds[0] && piece[start..].iter().all(|&b| b == 0) {
            continue;
        }
        let err = result.unwrap_err();
        assert!(
            matches!(
                err,
                EventLogError::TcgTruncated { .. } | EventLogError::FieldTooLarge { .. }
            ),
            "cut {cut}: {err:?}"
        );
    }
}

#[test]
fn a_2_gib_event_size_is_refused_without_allocating() {
    let (bytes, bounds, _) = synthetic_ccel();
    // After the header and the MRTD record: record 2.
    let mut forged = bytes[..bounds[1]].to_vec();
    let mut rec = record(2, 6, &both(b"x"), b"x");
    let size_at = rec.len() - 1 - 4;
    rec[size_at..size_at + 4].copy_from_slice(&0x8000_0000u32.to_le_bytes());
    forged.extend_from_slice(&rec);
    assert_eq!(
        parse_tcg(&forged),
        Err(EventLogError::FieldTooLarge {
            index: 2,
            field: "event data",
            len: 0x8000_0000,
            limit: MAX_PAYLOAD_BYTES
        })
    );
    // A huge digest count is refused against the header's algorithm count.
    let mut rec = record(2, 6, &both(b"x"), b"x");
    rec[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut forged = bytes[..bounds[0]].to_vec();
    forged.extend_from_slice(&rec);
    assert!(matches!(
        parse_tcg(&forged),
        Err(EventLogError::TcgDigests { record: 1, .. })
    ));
}

#[test]
fn bad_ccel_headers_and_records_are_typed_errors() {
    let sha384_only = [(TPM_ALG_SHA384, 48)];
    let tail = |header: Vec<u8>| {
        let mut b = header;
        b.extend_from_slice(&record(1, 1, &[(TPM_ALG_SHA384, vec![1; 48])], b""));
        b
    };
    // Wrong signature, no SHA-384, SHA-384 with a wrong size, no algorithms.
    for header in [
        spec_id_header(&sha384_only, b"Spec ID Event02\0"),
        spec_id_header(&[(SHA256_ALG, 32)], b"Spec ID Event03\0"),
        spec_id_header(&[(TPM_ALG_SHA384, 32)], b"Spec ID Event03\0"),
        spec_id_header(&[], b"Spec ID Event03\0"),
    ] {
        assert!(matches!(
            parse_tcg(&tail(header)),
            Err(EventLogError::TcgSpecId { .. })
        ));
    }
    assert!(matches!(
        parse_tcg(b""),
        Err(EventLogError::TcgTruncated { record: 0, .. })
    ));
    let header = spec_id_header(&sha384_only, b"Spec ID Event03\0");
    let with = |rec: Vec<u8>| {
        let mut b = header.clone();
        b.extend_from_slice(&rec);
        parse_tcg(&b)
    };
    // MR index 5.
    assert!(matches!(
        with(record(5, 1, &[(TPM_ALG_SHA384, vec![1; 48])], b"")),
        Err(EventLogError::TcgMrIndex {
            record: 1,
            mr_index: 5,
            ..
        })
    ));
    // An algorithm the header does not declare.
    assert!(matches!(
        with(record(1, 1, &[(SHA256_ALG, vec![1; 32])], b"")),
        Err(EventLogError::TcgDigests { record: 1, .. })
    ));
    // No SHA-384 digest.
    assert!(matches!(
        with(record(1, 1, &[], b"")),
        Err(EventLogError::TcgDigests { record: 1, .. })
    ));
    // A header alone is an empty log.
    assert_eq!(parse_tcg(&header), Ok(vec![]));
}

#[test]
fn runtime_events_built_by_hand_replay_as_dstack_does() {
    // RTMR3 = SHA384(RTMR3 || d) from zero, d the v1 digest.
    let events = vec![
        Event::runtime("app-id", &[1; 20]),
        Event::runtime("compose-hash", &[2; 32]),
        Event::runtime(SYSTEM_READY, b""),
    ];
    let mut want = [0u8; 48];
    for e in &events {
        want = extend(want, &runtime_digest_v1(&e.event, &e.event_payload));
    }
    let got = replay(&events).unwrap();
    assert_eq!(got[3], want);
    assert_eq!(got[..3], [[0u8; 48]; 3]);
    assert_eq!(covered(&events), [false, false, false, true]);
    assert_eq!(events[0].event_type, RUNTIME_EVENT_TYPE);
}

#[test]
fn the_fuzz_seeds_are_valid_small_logs() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/event_log");
    let json_seed = std::fs::read(dir.join("json-3-events")).unwrap();
    let tcg_seed = std::fs::read(dir.join("tcg-ccel")).unwrap();
    assert!(json_seed.len() < 4096 && tcg_seed.len() < 4096);
    let events = parse_json(std::str::from_utf8(&json_seed).unwrap()).unwrap();
    assert_eq!(events.len(), 3);
    replay(&events).unwrap();
    assert!(identity(&events).unwrap().system_ready);
    let events = parse_tcg(&tcg_seed).unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(covered(&events), [true, true, false, true]);
    // Its RTMR3 record is not a runtime event: refused at replay (the seed still exercises
    // the binary parser and that refusal).
    assert!(matches!(
        replay(&events),
        Err(EventLogError::NotRuntimeEvent { .. })
    ));
}

#[test]
fn a_relabelled_rtmr3_event_is_refused_not_skipped() {
    // near-mpc's log with `system-ready` relabelled: its supplied digest still replays, but
    // identity() would no longer stop there, and an app-emitted `compose-hash` after it would
    // become the identity. Refused instead.
    let tcb: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/attestation-samples/dstack/near-mpc/tcb_info.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut log = tcb["event_log"].clone();
    let list = log.as_array_mut().unwrap();
    let i = list
        .iter()
        .position(|e| e["event"] == "system-ready")
        .unwrap();
    list[i]["event_type"] = 1.into();
    let events = parse_json(&log.to_string()).unwrap();
    assert!(matches!(
        replay(&events),
        Err(EventLogError::NotRuntimeEvent { index, event_type: 1 }) if index == i
    ));
    // A v1 runtime name with the preimage's separator in it is refused too.
    let ambiguous = [Event::runtime("key-provider:{", b"x")];
    assert!(matches!(
        replay(&ambiguous),
        Err(EventLogError::AmbiguousName { .. })
    ));
}
