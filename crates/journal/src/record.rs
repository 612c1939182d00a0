//! One record: `len u32 | crc u32 | lsn u64 | payload`, little-endian, where `len` is the
//! payload's length and `crc` the CRC-32 (IEEE, as zlib's `crc32`) of the LSN's eight bytes
//! followed by the payload. The LSN is in the checked bytes so that a record left over from an
//! older use of the same bytes is never taken for the next one.

/// Bytes before a record's payload.
pub const HEADER_LEN: usize = 16;

/// `payload` as the record numbered `lsn`, appended to `out`.
///
/// # Panics
/// Never for a payload the journal accepts (at most `u32::MAX` bytes; the journal checks its
/// own, lower, limit first): a longer one would not fit the length field.
pub fn encode_into(out: &mut Vec<u8>, lsn: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("a record's payload fits in 4 GiB");
    out.reserve(HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(lsn, payload).to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(payload);
}

/// `payload` as the record numbered `lsn`.
#[must_use]
pub fn encode(lsn: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(&mut out, lsn, payload);
    out
}

fn checksum(lsn: u64, payload: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&lsn.to_le_bytes());
    crc.update(payload);
    crc.finalize()
}

/// What the bytes at the start of a slice hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole record whose check holds: its LSN, its payload, and how many bytes it took.
    Record {
        /// The record's number.
        lsn: u64,
        /// Its payload.
        payload: &'a [u8],
        /// Header and payload.
        taken: usize,
    },
    /// Nothing: the slice is empty.
    End,
    /// A record cut short (the header or the payload not all there).
    Cut,
    /// A record whose length passes `max_payload` or whose check fails.
    Damaged,
}

/// Reads the record at the start of `bytes`, refusing payloads over `max_payload` bytes.
#[must_use]
pub fn decode(bytes: &[u8], max_payload: u32) -> Decoded<'_> {
    if bytes.is_empty() {
        return Decoded::End;
    }
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Decoded::Cut;
    };
    let field = |at: usize| -> [u8; 4] {
        let mut b = [0; 4];
        b.copy_from_slice(&header[at..at + 4]);
        b
    };
    let len = u32::from_le_bytes(field(0));
    let crc = u32::from_le_bytes(field(4));
    let mut lsn = [0; 8];
    lsn.copy_from_slice(&header[8..16]);
    let lsn = u64::from_le_bytes(lsn);
    if len > max_payload {
        return Decoded::Damaged;
    }
    let Some(stop) = usize::try_from(len)
        .ok()
        .and_then(|len| len.checked_add(HEADER_LEN))
    else {
        return Decoded::Cut;
    };
    let Some(payload) = bytes.get(HEADER_LEN..stop) else {
        return Decoded::Cut;
    };
    if checksum(lsn, payload) != crc {
        return Decoded::Damaged;
    }
    Decoded::Record {
        lsn,
        payload,
        taken: stop,
    }
}
