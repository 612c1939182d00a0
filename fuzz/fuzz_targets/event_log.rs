//! Measurement event logs as a verifier reads them (`crates/eventlog`): any bytes, as dstack's
//! JSON log (when valid UTF-8) and as a TCG binary log (CCEL), parse into events or a typed
//! error, never a panic; parsed events replay or are refused, and their identity reads or is
//! refused. A JSON log that replays re-serialises (runtime digests computed) to the same
//! events and the same registers.
#![no_main]

use hypervisor_eventlog::{
    Event, MAX_EVENTS, MAX_INPUT_BYTES, covered, identity, parse_json, parse_tcg, replay, to_json,
};
use libfuzzer_sys::fuzz_target;

fn exercise(events: &[Event]) {
    assert!(events.len() <= MAX_EVENTS);
    assert!(events.iter().all(|e| e.imr <= 3));
    let seen = covered(events);
    for (i, &c) in seen.iter().enumerate() {
        assert_eq!(c, events.iter().any(|e| e.imr as usize == i));
    }
    let Ok(registers) = replay(events) else {
        let _ = identity(events);
        return;
    };
    for (i, r) in registers.iter().enumerate() {
        if !seen[i] {
            assert_eq!(*r, [0u8; 48], "an RTMR without events stays zero");
        }
    }
    let _ = identity(events);
    let text = to_json(events);
    if text.len() > MAX_INPUT_BYTES {
        return;
    }
    let back = parse_json(&text).expect("to_json of a replayable log parses");
    assert_eq!(back.len(), events.len());
    for (i, (a, b)) in events.iter().zip(&back).enumerate() {
        let digest = a.extend_digest(i).expect("replay accepted it");
        assert_eq!(b.extend_digest(i), Ok(digest));
        assert_eq!(
            (
                a.imr,
                a.event_type,
                &a.event,
                &a.event_payload,
                a.version,
                &a.preimage
            ),
            (
                b.imr,
                b.event_type,
                &b.event,
                &b.event_payload,
                b.version,
                &b.preimage
            )
        );
    }
    assert_eq!(replay(&back), Ok(registers));
    assert_eq!(identity(&back), identity(events));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(events) = parse_json(text)
    {
        exercise(&events);
    }
    if let Ok(events) = parse_tcg(data) {
        exercise(&events);
    }
});
