//! dstack's JSON event log (`GetQuote.event_log`, `Info.tcb_info.event_log`).

use serde::{Deserialize, Serialize};

use crate::replay::check_count;
use crate::{Event, EventLogError, MAX_INPUT_BYTES, MAX_NAME_BYTES, MAX_PAYLOAD_BYTES};

/// The largest `preimage` accepted: a v2 preimage of a maximal name (every byte escaped as
/// `\u00xx`, six bytes) and a maximal payload (two hex digits a byte), plus the JSON around them.
pub const MAX_PREIMAGE_BYTES: usize = 2 * MAX_PAYLOAD_BYTES + 6 * MAX_NAME_BYTES + 64;

/// One entry as it appears in the JSON. Unknown fields are ignored.
#[derive(Deserialize)]
struct RawEvent {
    imr: u32,
    event_type: u32,
    #[serde(default)]
    digest: String,
    event: String,
    event_payload: String,
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    preimage: Option<String>,
}

/// One entry as [`to_json`] writes it.
#[derive(Serialize)]
struct OutEvent<'a> {
    imr: u32,
    event_type: u32,
    digest: String,
    event: &'a str,
    event_payload: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preimage: Option<String>,
}

/// Parses dstack's JSON event log: a JSON array of `{imr, event_type, digest (hex), event,
/// event_payload (hex), version?, preimage? (hex)}`. Unknown fields are ignored, hex may be
/// empty, and `digest` may be missing (as empty).
///
/// Refused with a typed error: input over [`MAX_INPUT_BYTES`], more than [`crate::MAX_EVENTS`]
/// events, `imr` outside 0..=3, a name over [`MAX_NAME_BYTES`], a payload over
/// [`MAX_PAYLOAD_BYTES`], a preimage over [`MAX_PREIMAGE_BYTES`], malformed hex, or a digest
/// that is neither empty nor 48 bytes. Digests are not checked here: [`crate::replay`] does.
pub fn parse_json(text: &str) -> Result<Vec<Event>, EventLogError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(EventLogError::InputTooLarge {
            size: text.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    let raw: Vec<RawEvent> =
        serde_json::from_str(text).map_err(|e| EventLogError::Json(e.to_string()))?;
    check_count(raw.len())?;
    raw.into_iter()
        .enumerate()
        .map(|(index, raw)| convert(index, raw))
        .collect()
}

fn convert(index: usize, raw: RawEvent) -> Result<Event, EventLogError> {
    if raw.imr > 3 {
        return Err(EventLogError::InvalidImr {
            index,
            imr: raw.imr,
        });
    }
    if raw.event.len() > MAX_NAME_BYTES {
        return Err(EventLogError::NameTooLong {
            index,
            len: raw.event.len(),
            limit: MAX_NAME_BYTES,
        });
    }
    let digest = decode_hex(index, "digest", &raw.digest, 48)?;
    if !digest.is_empty() && digest.len() != 48 {
        return Err(EventLogError::DigestLength {
            index,
            len: digest.len(),
        });
    }
    let event_payload = decode_hex(
        index,
        "event_payload",
        &raw.event_payload,
        MAX_PAYLOAD_BYTES,
    )?;
    let preimage = raw
        .preimage
        .as_deref()
        .map(|p| decode_hex(index, "preimage", p, MAX_PREIMAGE_BYTES))
        .transpose()?;
    Ok(Event {
        imr: raw.imr,
        event_type: raw.event_type,
        digest,
        event: raw.event,
        event_payload,
        version: raw.version,
        preimage,
    })
}

/// Decodes a hex field, refusing (before decoding) one that would exceed `limit` bytes.
fn decode_hex(
    index: usize,
    field: &'static str,
    text: &str,
    limit: usize,
) -> Result<Vec<u8>, EventLogError> {
    let len = text.len() / 2;
    if len > limit {
        return Err(if field == "digest" {
            EventLogError::DigestLength { index, len }
        } else {
            EventLogError::FieldTooLarge {
                index,
                field,
                len,
                limit,
            }
        });
    }
    hex::decode(text).map_err(|e| EventLogError::InvalidHex {
        index,
        field,
        reason: e.to_string(),
    })
}

/// Writes events in the JSON shape [`parse_json`] reads (compact, lowercase hex). A runtime
/// event's `digest` is written as its computed extend digest (so a log whose runtime digests
/// were stripped comes back with them); an event whose digest [`Event::extend_digest`] refuses
/// keeps its supplied digest, so that [`crate::replay`] of the output refuses it too.
/// `version` and `preimage` are written only when present.
pub fn to_json(events: &[Event]) -> String {
    let out: Vec<OutEvent<'_>> = events
        .iter()
        .enumerate()
        .map(|(index, e)| {
            let digest = match (e.is_runtime(), e.extend_digest(index)) {
                (true, Ok(d)) => hex::encode(d),
                _ => hex::encode(&e.digest),
            };
            OutEvent {
                imr: e.imr,
                event_type: e.event_type,
                digest,
                event: &e.event,
                event_payload: hex::encode(&e.event_payload),
                version: e.version,
                preimage: e.preimage.as_ref().map(hex::encode),
            }
        })
        .collect();
    // Serialising plain structs of strings and integers into a String cannot fail.
    serde_json::to_string(&out).unwrap_or_else(|_| String::from("[]"))
}
