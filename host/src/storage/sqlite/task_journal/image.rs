//! A task's row image as a journal record's payload: [`Image`] in postcard's wire format
//! (postcard 1.0's specification: fields in order, an unsigned integer as a LEB128 varint, a
//! string or a byte string as its length, a varint, then its bytes, an option as a byte `0` or
//! `1` then the value). The first field is the format's version. The content is already
//! sealed (`storage::tasks`), so a record holds nothing in clear that the table does not.
//!
//! A replayed image is applied whole (an upsert), so a record needs no operation code.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::storage::tasks::SealedTask;
use hypervisor_protocol::a2a::TaskState;

/// The version of [`Image`]'s layout.
const VERSION: u8 = 1;

/// A byte string (postcard: length, then the bytes; serde's default for a slice is a sequence
/// of integers, the same bytes in postcard but decoded one at a time).
#[derive(Debug, Clone, Copy)]
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Bytes<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a [u8]>::deserialize(d).map(Bytes)
    }
}

/// The record's fields, in order.
#[derive(Serialize, Deserialize)]
struct Image<'a> {
    version: u8,
    id: &'a str,
    agent: &'a str,
    caller: &'a str,
    context_id: &'a str,
    /// The v1 wire name (`TASK_STATE_…`).
    state: &'a str,
    owner: &'a str,
    #[serde(borrow)]
    task: Bytes<'a>,
    #[serde(borrow)]
    pending: Option<Bytes<'a>>,
    created_ms: u64,
    updated_ms: u64,
}

/// The record of `row`.
///
/// # Errors
/// Postcard's, for a type it cannot express (none here).
pub fn encode(row: &SealedTask) -> Result<Vec<u8>, String> {
    let image = Image {
        version: VERSION,
        id: &row.id,
        agent: &row.agent,
        caller: &row.caller,
        context_id: &row.context_id,
        state: row.state,
        owner: &row.owner,
        task: Bytes(&row.task),
        pending: row.pending.as_deref().map(Bytes),
        created_ms: row.created_ms,
        updated_ms: row.updated_ms,
    };
    postcard::to_stdvec(&image).map_err(|e| e.to_string())
}

/// The row a record holds.
///
/// # Errors
/// Why it is not one: malformed, bytes left over, another version, a state not named here.
pub fn decode(payload: &[u8]) -> Result<SealedTask, String> {
    // The version first: another layout is named as such, not as malformed.
    match payload.first() {
        Some(&VERSION) => {}
        Some(other) => return Err(format!("version {other} (this host reads {VERSION})")),
        None => return Err("malformed: empty".into()),
    }
    let (image, rest) =
        postcard::take_from_bytes::<Image<'_>>(payload).map_err(|e| format!("malformed: {e}"))?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after the image", rest.len()));
    }
    if image.version != VERSION {
        return Err(format!(
            "version {} (this host reads {VERSION})",
            image.version
        ));
    }
    let state = TaskState::parse(image.state)
        .map(TaskState::v1_name)
        .ok_or_else(|| format!("unknown state {:?}", image.state))?;
    Ok(SealedTask {
        id: image.id.to_string(),
        agent: image.agent.to_string(),
        caller: image.caller.to_string(),
        context_id: image.context_id.to_string(),
        state,
        owner: image.owner.to_string(),
        task: image.task.0.to_vec(),
        pending: image.pending.map(|p| p.0.to_vec()),
        created_ms: image.created_ms,
        updated_ms: image.updated_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pending: Option<Vec<u8>>) -> SealedTask {
        SealedTask {
            id: "t1".into(),
            agent: "a".into(),
            caller: String::new(),
            context_id: "c".into(),
            state: "TASK_STATE_WORKING",
            owner: "r".into(),
            task: vec![1, 2, 3],
            pending,
            created_ms: 300,
            updated_ms: 301,
        }
    }

    /// The bytes worked out by hand from postcard's specification: each string and byte
    /// string as a varint length and its bytes, `None` as `00`, `Some` as `01` and the value,
    /// 300 as the varint `ac 02`, 301 as `ad 02`.
    #[test]
    fn the_image_is_postcard_as_specified() {
        let state = hex::encode("TASK_STATE_WORKING");
        let head = format!("01 02 7431 01 61 00 01 63 12 {state} 01 72 03 010203");
        let vector = |pending: &str| {
            hex::decode(format!("{head} {pending} ac02 ad02").replace(' ', "")).unwrap()
        };
        assert_eq!(encode(&row(None)).unwrap(), vector("00"));
        assert_eq!(
            encode(&row(Some(vec![0xff, 0]))).unwrap(),
            vector("01 02 ff00")
        );
        for pending in [None, Some(vec![0xff, 0]), Some(vec![])] {
            let back = decode(&encode(&row(pending.clone())).unwrap()).unwrap();
            assert_eq!(back.pending, pending);
            assert_eq!(
                (
                    back.id,
                    back.state,
                    back.task,
                    back.created_ms,
                    back.updated_ms
                ),
                (
                    "t1".to_string(),
                    "TASK_STATE_WORKING",
                    vec![1, 2, 3],
                    300,
                    301
                )
            );
        }
    }

    /// Every truncation, a byte too many, another version and an unknown state are refused.
    #[test]
    fn a_record_that_is_not_an_image_is_refused() {
        let bytes = encode(&row(Some(vec![9; 40]))).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).unwrap_err().contains("after the image"));
        let mut other = bytes.clone();
        other[0] = 2;
        assert!(decode(&other).unwrap_err().contains("version 2"));
        let mut unknown = row(None);
        unknown.state = "TASK_STATE_ELSEWHERE";
        assert!(
            decode(&encode(&unknown).unwrap())
                .unwrap_err()
                .contains("unknown state")
        );
    }
}
