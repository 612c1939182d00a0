//! The TCG PC Client crypto-agile binary event log, as TDX firmware leaves it in the CCEL
//! (`/sys/firmware/acpi/tables/data/CCEL`).
//!
//! Layout (all integers little-endian):
//! - record 0, `TCG_PCClientPCREvent` (SHA-1 format): `pcrIndex u32`, `eventType u32`
//!   (`EV_NO_ACTION`), `digest [u8; 20]`, `eventDataSize u32`, then the
//!   `TCG_EfiSpecIDEventStruct`: `signature "Spec ID Event03\0"`, `platformClass u32`,
//!   `specVersionMinor u8`, `specVersionMajor u8`, `specErrata u8`, `uintnSize u8`,
//!   `numberOfAlgorithms u32`, `{algorithmId u16, digestSize u16}[n]`, `vendorInfoSize u8`,
//!   `vendorInfo`;
//! - then `TCG_PCR_EVENT2` records: `pcrIndex u32`, `eventType u32`, `count u32`,
//!   `{algId u16, digest[size from the header]}[count]`, `eventSize u32`, `event`;
//! - then padding (`0xFF`, or `0x00`) up to the end of the log area.

use crate::replay::check_count;
use crate::{Event, EventLogError, MAX_INPUT_BYTES, MAX_PAYLOAD_BYTES};

/// TCG algorithm id of SHA-384 (`TPM_ALG_SHA384`).
pub const TPM_ALG_SHA384: u16 = 0x000C;
/// TCG event type `EV_NO_ACTION`: informational, never extended into a register.
pub const EV_NO_ACTION: u32 = 0x0000_0003;

const SPEC_ID_SIGNATURE: &[u8; 16] = b"Spec ID Event03\0";
/// More algorithms than any TPM defines: the header is refused beyond this.
const MAX_ALGORITHMS: u32 = 16;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    record: usize,
    start: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], EventLogError> {
        let out = self
            .pos
            .checked_add(n)
            .and_then(|end| self.bytes.get(self.pos..end))
            .ok_or(EventLogError::TcgTruncated {
                record: self.record,
                offset: self.start,
                what,
            })?;
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], EventLogError> {
        let slice = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, EventLogError> {
        let [byte] = self.array::<1>(what)?;
        Ok(byte)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, EventLogError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, EventLogError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// Reads a `u32` size then that many bytes, refusing sizes over `limit` before reading.
    fn sized(&mut self, what: &'static str, limit: usize) -> Result<&'a [u8], EventLogError> {
        let size = usize::try_from(self.u32(what)?).unwrap_or(usize::MAX);
        if size > limit {
            return Err(EventLogError::FieldTooLarge {
                index: self.record,
                field: "event data",
                len: size,
                limit,
            });
        }
        self.take(size, what)
    }

    fn begin_record(&mut self, record: usize) {
        self.record = record;
        self.start = self.pos;
    }
}

/// Parses a TCG PC Client crypto-agile binary event log (the CCEL). The first record must be
/// the SHA-1-format Spec ID Event (`Spec ID Event03`) declaring SHA-384 (alg `0x000C`, 48
/// bytes); every later `TCG_PCR_EVENT2` keeps only its SHA-384 digest (other algorithms are
/// skipped using the header's sizes). MR index 1..=4 maps to `imr` 0..=3; MR index 0 (MRTD
/// events, not in any RTMR) and `EV_NO_ACTION` records (never extended) are skipped. Parsing
/// stops cleanly where the rest of the input is all `0xFF` or all `0x00` (the CCEL area is
/// padded). Each event has `event = ""` and `event_payload` = the raw event data.
///
/// Refused with a typed error: input over [`MAX_INPUT_BYTES`], more than [`crate::MAX_EVENTS`]
/// records, a truncated record, an event over [`MAX_PAYLOAD_BYTES`] (checked before anything is
/// read or allocated), an MR index over 4, a digest algorithm the header does not declare, a
/// digest count over the header's algorithm count, or a record without a SHA-384 digest.
pub fn parse_tcg(bytes: &[u8]) -> Result<Vec<Event>, EventLogError> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(EventLogError::InputTooLarge {
            size: bytes.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    let mut r = Reader {
        bytes,
        pos: 0,
        record: 0,
        start: 0,
    };
    let algorithms = spec_id_header(&mut r)?;
    // Where the trailing runs of 0xFF and of 0x00 begin: a record boundary at or past either
    // is the end of the log (computed once, so that the check costs nothing per record).
    let ff_padding = bytes.iter().rposition(|&b| b != 0xFF).map_or(0, |i| i + 1);
    let zero_padding = bytes.iter().rposition(|&b| b != 0x00).map_or(0, |i| i + 1);
    let mut events = Vec::new();
    let mut record = 0usize;
    loop {
        if r.pos >= ff_padding || r.pos >= zero_padding {
            break;
        }
        record += 1;
        check_count(record)?;
        r.begin_record(record);
        let mr_index = r.u32("pcrIndex")?;
        let event_type = r.u32("eventType")?;
        let count = r.u32("digest count")?;
        if count > u32::try_from(algorithms.len()).unwrap_or(u32::MAX) {
            return Err(digests_error(
                &r,
                format!(
                    "{count} digests, but the Spec ID header declares {} algorithms",
                    algorithms.len()
                ),
            ));
        }
        let mut sha384 = None;
        for _ in 0..count {
            let alg = r.u16("digest algorithm")?;
            let size = algorithms
                .iter()
                .find(|(id, _)| *id == alg)
                .map(|&(_, size)| usize::from(size))
                .ok_or_else(|| {
                    digests_error(
                        &r,
                        format!(
                            "digest algorithm 0x{alg:04x} is not declared in the Spec ID header"
                        ),
                    )
                })?;
            let digest = r.take(size, "digest")?;
            if alg == TPM_ALG_SHA384 && sha384.is_none() {
                sha384 = Some(digest.to_vec());
            }
        }
        let data = r.sized("event data", MAX_PAYLOAD_BYTES)?;
        if mr_index > 4 {
            return Err(EventLogError::TcgMrIndex {
                record,
                offset: r.start,
                mr_index,
            });
        }
        if mr_index == 0 || event_type == EV_NO_ACTION {
            continue;
        }
        let digest = sha384
            .ok_or_else(|| digests_error(&r, String::from("no SHA-384 digest in the record")))?;
        events.push(Event {
            imr: mr_index - 1,
            event_type,
            digest,
            event: String::new(),
            event_payload: data.to_vec(),
            version: None,
            preimage: None,
        });
    }
    Ok(events)
}

fn digests_error(r: &Reader<'_>, reason: String) -> EventLogError {
    EventLogError::TcgDigests {
        record: r.record,
        offset: r.start,
        reason,
    }
}

/// Reads record 0 and returns the declared `(algorithmId, digestSize)` list, which must hold
/// SHA-384 with size 48.
fn spec_id_header(r: &mut Reader<'_>) -> Result<Vec<(u16, u16)>, EventLogError> {
    let bad = |reason| EventLogError::TcgSpecId { reason };
    let _pcr_index = r.u32("Spec ID pcrIndex")?;
    if r.u32("Spec ID eventType")? != EV_NO_ACTION {
        return Err(bad("event type is not EV_NO_ACTION"));
    }
    r.take(20, "Spec ID SHA-1 digest")?;
    let body = r.sized("Spec ID event data", MAX_PAYLOAD_BYTES)?;
    let mut b = Reader {
        bytes: body,
        pos: 0,
        record: 0,
        start: 0,
    };
    if b.take(16, "Spec ID signature")? != SPEC_ID_SIGNATURE {
        return Err(bad("signature is not \"Spec ID Event03\""));
    }
    b.u32("platformClass")?;
    b.take(4, "spec version, errata, uintnSize")?;
    let n = b.u32("numberOfAlgorithms")?;
    if n == 0 || n > MAX_ALGORITHMS {
        return Err(bad("numberOfAlgorithms is 0 or over 16"));
    }
    let mut algorithms = Vec::new();
    for _ in 0..n {
        let id = b.u16("algorithmId")?;
        let size = b.u16("digestSize")?;
        if algorithms.iter().any(|&(seen, _)| seen == id) {
            return Err(bad("an algorithm is declared twice"));
        }
        algorithms.push((id, size));
    }
    let vendor = b.u8("vendorInfoSize")?;
    b.take(usize::from(vendor), "vendorInfo")?;
    match algorithms.iter().find(|&&(id, _)| id == TPM_ALG_SHA384) {
        Some(&(_, 48)) => Ok(algorithms),
        Some(_) => Err(bad("SHA-384 is declared with a size other than 48")),
        None => Err(bad("SHA-384 is not among the declared algorithms")),
    }
}
