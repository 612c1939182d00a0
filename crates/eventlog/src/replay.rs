//! The digest each event extends its RTMR with, and the replay of a whole log.

use sha2::{Digest as _, Sha384};

use crate::runtime::{
    runtime_digest_v1, runtime_digest_v2, runtime_preimage_v1, runtime_preimage_v2,
};
use crate::{
    Digest48, Event, EventLogError, MAX_EVENTS, MAX_NAME_BYTES, MAX_PAYLOAD_BYTES, NUM_RTMRS,
};

impl Event {
    /// `true` for a dstack runtime event: `imr` 3 and `event_type` [`crate::RUNTIME_EVENT_TYPE`].
    /// Only these have their digest recomputed and only these are read by [`crate::identity`].
    pub fn is_runtime(&self) -> bool {
        self.imr == 3 && self.event_type == crate::RUNTIME_EVENT_TYPE
    }

    /// Checks the name and payload limits ([`MAX_NAME_BYTES`], [`MAX_PAYLOAD_BYTES`]).
    pub(crate) fn check_limits(&self, index: usize) -> Result<(), EventLogError> {
        if self.event.len() > MAX_NAME_BYTES {
            return Err(EventLogError::NameTooLong {
                index,
                len: self.event.len(),
                limit: MAX_NAME_BYTES,
            });
        }
        if self.event_payload.len() > MAX_PAYLOAD_BYTES {
            return Err(EventLogError::FieldTooLarge {
                index,
                field: "event_payload",
                len: self.event_payload.len(),
                limit: MAX_PAYLOAD_BYTES,
            });
        }
        Ok(())
    }

    /// The digest this event extends its RTMR with (`index` is its position in the log, used in
    /// errors).
    ///
    /// For runtime events ([`Event::is_runtime`]) the digest is **recomputed** from the name and
    /// payload: v1 ([`runtime_digest_v1`]) unless `version == Some(2)` (v2,
    /// [`runtime_digest_v2`]); any other version is refused. A supplied non-empty digest that
    /// differs from the recomputation is [`EventLogError::DigestMismatch`]; a supplied
    /// `preimage` must be exactly the bytes the digest hashes
    /// ([`EventLogError::PreimageMismatch`]). For every other event the supplied digest is
    /// used and must be exactly 48 bytes.
    pub fn extend_digest(&self, index: usize) -> Result<Digest48, EventLogError> {
        self.check_limits(index)?;
        if self.imr == 3 && !self.is_runtime() {
            return Err(EventLogError::NotRuntimeEvent {
                index,
                event_type: self.event_type,
            });
        }
        if self.is_runtime() && self.version != Some(2) && self.event.contains(':') {
            return Err(EventLogError::AmbiguousName {
                index,
                name: self.event.clone(),
            });
        }
        if !self.is_runtime() {
            return <Digest48>::try_from(self.digest.as_slice()).map_err(|_| {
                EventLogError::DigestLength {
                    index,
                    len: self.digest.len(),
                }
            });
        }
        let (digest, preimage) = match self.version {
            None | Some(1) => (
                runtime_digest_v1(&self.event, &self.event_payload),
                self.preimage
                    .as_ref()
                    .map(|_| runtime_preimage_v1(&self.event, &self.event_payload)),
            ),
            Some(2) => (
                runtime_digest_v2(&self.event, &self.event_payload),
                self.preimage
                    .as_ref()
                    .map(|_| runtime_preimage_v2(&self.event, &self.event_payload)),
            ),
            Some(version) => return Err(EventLogError::UnsupportedVersion { index, version }),
        };
        if !self.digest.is_empty() && self.digest.as_slice() != digest.as_slice() {
            return Err(EventLogError::DigestMismatch {
                index,
                name: self.event.clone(),
            });
        }
        if let (Some(supplied), Some(canonical)) = (&self.preimage, preimage)
            && *supplied != canonical
        {
            return Err(EventLogError::PreimageMismatch {
                index,
                name: self.event.clone(),
            });
        }
        Ok(digest)
    }
}

/// Replays the log: `RTMR[i] = SHA384(RTMR[i] || extend_digest)`, each RTMR starting from 48
/// zero bytes, events in log order. Fails on the first event whose `imr` is not 0..=3 or whose
/// digest [`Event::extend_digest`] refuses, and on logs over [`MAX_EVENTS`] events.
pub fn replay(events: &[Event]) -> Result<[Digest48; NUM_RTMRS], EventLogError> {
    check_count(events.len())?;
    let mut rtmrs = [[0u8; 48]; NUM_RTMRS];
    for (index, event) in events.iter().enumerate() {
        let digest = event.extend_digest(index)?;
        let imr = event.imr;
        let rtmr = usize::try_from(imr)
            .ok()
            .and_then(|i| rtmrs.get_mut(i))
            .ok_or(EventLogError::InvalidImr { index, imr })?;
        let mut h = Sha384::new();
        h.update(*rtmr);
        h.update(digest);
        *rtmr = h.finalize().into();
    }
    Ok(rtmrs)
}

/// Which RTMRs the log has at least one event for (`imr` values outside 0..=3 are ignored).
pub fn covered(events: &[Event]) -> [bool; NUM_RTMRS] {
    let mut seen = [false; NUM_RTMRS];
    for event in events {
        if let Some(slot) = usize::try_from(event.imr)
            .ok()
            .and_then(|i| seen.get_mut(i))
        {
            *slot = true;
        }
    }
    seen
}

/// Refuses a log of more than [`MAX_EVENTS`] events.
pub(crate) fn check_count(count: usize) -> Result<(), EventLogError> {
    if count > MAX_EVENTS {
        return Err(EventLogError::TooManyEvents {
            count,
            limit: MAX_EVENTS,
        });
    }
    Ok(())
}
