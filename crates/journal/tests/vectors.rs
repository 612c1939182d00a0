//! The record format's vectors. Each CRC was computed with Python's `zlib.crc32` over the LSN's
//! eight little-endian bytes followed by the payload, independently of this crate:
//! `struct.pack('<II', len(p), zlib.crc32(struct.pack('<Q', lsn) + p)) + struct.pack('<Q', lsn) + p`.

use hypervisor_journal::record::{self, Decoded};

const VECTORS: &[(u64, &[u8], &str)] = &[
    (1, b"", "00000000f7df88a90100000000000000"),
    (1, b"hello", "050000009cced022010000000000000068656c6c6f"),
    (
        42,
        br#"{"id":"t-1","state":"TASK_STATE_WORKING"}"#,
        "290000008e45e4c72a000000000000007b226964223a22742d31222c227374617465223a225441534b5f53544154455f574f524b494e47227d",
    ),
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn records_encode_as_the_vectors() {
    for (lsn, payload, expected) in VECTORS {
        assert_eq!(hex(&record::encode(*lsn, payload)), *expected, "lsn {lsn}");
    }
}

#[test]
fn the_vectors_decode_and_any_changed_byte_is_caught() {
    for (lsn, payload, _) in VECTORS {
        let bytes = record::encode(*lsn, payload);
        assert_eq!(
            record::decode(&bytes, 1024),
            Decoded::Record {
                lsn: *lsn,
                payload,
                taken: bytes.len()
            }
        );
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= 0x01;
            let decoded = record::decode(&changed, 1024);
            // A changed length reads as a record cut short (longer) or damaged (shorter: the
            // check covers other bytes); any other change fails the check.
            assert!(
                matches!(decoded, Decoded::Damaged | Decoded::Cut),
                "byte {at} of lsn {lsn}: {decoded:?}"
            );
        }
        for cut in 1..bytes.len() {
            assert_eq!(
                record::decode(&bytes[..cut], 1024),
                Decoded::Cut,
                "cut at {cut}"
            );
        }
    }
    assert_eq!(record::decode(&[], 1024), Decoded::End);
    // A length past the limit is damage, whatever follows.
    assert_eq!(
        record::decode(&record::encode(1, b"hello"), 4),
        Decoded::Damaged
    );
}
