//! The app identity dstack measures into RTMR3.

use crate::replay::check_count;
use crate::{Event, EventLogError, HOST_EVENT, SYSTEM_READY};

/// The identity events of an RTMR3 log, read the way dstack reads them (`find_event`): the
/// first occurrence of each name among the runtime events, stopping at `system-ready`.
/// Payloads are raw bytes as measured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppIdentity {
    /// `compose-hash`: SHA-256 of the raw `app-compose.json` bytes.
    pub compose_hash: Option<Vec<u8>>,
    /// `app-id`: the deploy-time/KMS app id, else the first 20 bytes of the compose hash.
    pub app_id: Option<Vec<u8>>,
    /// `instance-id`: 20 bytes, or empty when the app runs with `no_instance_id`.
    pub instance_id: Option<Vec<u8>>,
    /// `key-provider`: the raw payload, JSON `{"name":"kms"|"local-sgx"|"none"|"tpm","id":hex}`.
    pub key_provider: Option<Vec<u8>>,
    /// `os-image-hash`: present with a KMS (the value the KMS returned).
    pub os_image_hash: Option<Vec<u8>>,
    /// [`HOST_EVENT`]: SHA-256 of the host binary, as our launcher measures it.
    pub host_sha256: Option<[u8; 32]>,
    /// Whether the log has a `system-ready` event (the end of the identity events).
    pub system_ready: bool,
}

/// Reads the identity from the runtime events (`imr` 3, [`crate::RUNTIME_EVENT_TYPE`]): the
/// FIRST occurrence of each name wins, and reading stops at `system-ready`, since events after
/// it are emitted by the app and never identity. Without a `system-ready` event every runtime
/// event counts (first occurrence still wins). Other events are ignored.
///
/// This only reads the log: [`crate::replay`] it and compare RTMR3 with the quote first.
/// Refused: more than [`crate::MAX_EVENTS`] events, or a counted [`HOST_EVENT`] whose payload
/// is not exactly 32 bytes.
pub fn identity(events: &[Event]) -> Result<AppIdentity, EventLogError> {
    check_count(events.len())?;
    let mut id = AppIdentity::default();
    for (index, event) in events.iter().enumerate() {
        if !event.is_runtime() {
            continue;
        }
        let payload = &event.event_payload;
        let slot = match event.event.as_str() {
            SYSTEM_READY => {
                id.system_ready = true;
                break;
            }
            "compose-hash" => &mut id.compose_hash,
            "app-id" => &mut id.app_id,
            "instance-id" => &mut id.instance_id,
            "key-provider" => &mut id.key_provider,
            "os-image-hash" => &mut id.os_image_hash,
            HOST_EVENT => {
                if id.host_sha256.is_none() {
                    let digest = <[u8; 32]>::try_from(payload.as_slice()).map_err(|_| {
                        EventLogError::HostDigestLength {
                            index,
                            len: payload.len(),
                        }
                    })?;
                    id.host_sha256 = Some(digest);
                }
                continue;
            }
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(payload.clone());
        }
    }
    Ok(id)
}
