//! The launcher of a plain TDX guest: before the host serves, it extends RTMR3 with the host
//! binary's SHA-256 and records the event, so that a verifier learns which binary runs from a
//! register the TDX module keeps (`hypervisor launch`).
//!
//! - The event is a dstack-format runtime event (`hypervisor_eventlog::HOST_EVENT`, payload the
//!   32-byte SHA-256; digest `SHA384(le32(0x08000001) || ":" || name || ":" || payload)`), so
//!   the same verifier replays dstack's logs and ours.
//! - RTMR3 is extended through the kernel's TSM-MR sysfs interface (Linux 6.16:
//!   `/sys/devices/virtual/misc/tdx_guest/measurements/rtmr3:sha384`; a 48-byte write extends).
//!   The kernel keeps no log of such extends, so the launcher appends the event to
//!   [`super::configfs::DEFAULT_RUNTIME_LOG`] (JSON lines), which the configfs provider sends
//!   with its evidence after the firmware's CCEL.
//! - The binary measures itself, so the event proves no more than the boot chain that started
//!   it: a different binary run as `launch` could write the right digest. It is worth pinning
//!   only when RTMR1-2 pin that chain and, through it, this binary (in the initrd, or on a root
//!   filesystem whose dm-verity root hash is on the measured kernel command line) and when
//!   `launch` is the first program that can write RTMR3. Then the event names, in a register,
//!   the binary the image holds, and a verifier checks the host's claim against it. Any later
//!   program can extend RTMR3 too, but cannot remove the launcher's event, and verifiers read
//!   the first occurrence.

use std::io::Write;
use std::path::Path;

use hypervisor_eventlog::{HOST_EVENT, runtime_digest_v1};

/// The kernel's RTMR3 extend file (Linux 6.16, TSM-MR).
pub const TSM_MR_RTMR3: &str = "/sys/devices/virtual/misc/tdx_guest/measurements/rtmr3:sha384";

/// SHA-256 of the running binary: the host measurement bound with every attested key, and what
/// the launcher measures into RTMR3. Read through `/proc/self/exe`, the image this process was
/// started from, not through its path (a file put in its place afterwards is not what runs).
///
/// # Errors
/// I/O errors reading the binary.
pub fn binary_sha256() -> std::io::Result<[u8; 32]> {
    crate::crypto::primitives::sha256_reader(std::fs::File::open("/proc/self/exe")?)
}

/// Extends RTMR3 (through `extend_file`) with the host-binary event for `binary_sha256`, then
/// appends the event to `log`.
///
/// # Errors
/// Which file could not be written, and why.
pub fn extend_host_event(
    binary_sha256: &[u8; 32],
    extend_file: &Path,
    log: &Path,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let digest = runtime_digest_v1(HOST_EVENT, binary_sha256);
    // One write of exactly 48 bytes at offset 0: the kernel refuses partial writes (EINVAL).
    std::fs::OpenOptions::new()
        .write(true)
        .open(extend_file)
        .and_then(|mut f| f.write_all(&digest))
        .with_context(|| {
            format!(
                "cannot extend RTMR3 through {} (a TDX guest on Linux 6.16 or later has it)",
                extend_file.display()
            )
        })?;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let line = serde_json::json!({"event": HOST_EVENT, "payload": hex::encode(binary_sha256)});
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut f| writeln!(f, "{line}"))
        .with_context(|| format!("recording the RTMR3 event in {}", log.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attestation::configfs::EventLogSources;

    #[test]
    fn the_extended_digest_and_the_recorded_event_replay_alike() {
        let dir = tempfile::tempdir().unwrap();
        let extend = dir.path().join("rtmr3:sha384");
        std::fs::write(&extend, b"").unwrap();
        let log = dir.path().join("run/rtmr3-events.log");
        extend_host_event(&[7; 32], &extend, &log).unwrap();
        let written = std::fs::read(&extend).unwrap();
        assert_eq!(written.len(), 48);
        let sources = EventLogSources {
            ccel: dir.path().join("no-ccel"),
            runtime: log,
        };
        let events = hypervisor_eventlog::parse_json(&sources.read().unwrap().unwrap()).unwrap();
        let rtmr3 = hypervisor_eventlog::replay(&events).unwrap()[3];
        // What the TDX module would hold: SHA384(0^48 || written digest).
        use sha2::{Digest, Sha384};
        let mut h = Sha384::new();
        h.update([0u8; 48]);
        h.update(&written);
        assert_eq!(rtmr3.as_slice(), h.finalize().as_slice());
        let id = hypervisor_eventlog::identity(&events).unwrap();
        assert_eq!(id.host_sha256, Some([7; 32]));
        // No kernel interface: a clear error.
        let e = extend_host_event(
            &[7; 32],
            &dir.path().join("absent/x"),
            &dir.path().join("l"),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("Linux 6.16"), "{e:#}");
    }
}
