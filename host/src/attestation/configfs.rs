//! Intel TDX and AMD SEV-SNP evidence through Linux configfs-tsm.
//!
//! For each request: create a fresh report directory under the configfs root, check its
//! `provider` (`tdx_guest` or `sev_guest`), write the 64-byte `inblob`, read `generation`, read
//! `outblob`, read `generation` again (a change means another writer raced us), reject an empty
//! `outblob`, and always remove the directory. Requests are serialised: the kernel (and the
//! hardware) serialise them anyway.
//!
//! The file operations go through [`ReportFs`], so tests can stand in for the kernel.

use std::path::PathBuf;
use std::sync::Mutex;

use super::{AttestationError, AttestationProvider, Evidence, TeeKind};

/// The default configfs-tsm root.
pub const DEFAULT_ROOT: &str = "/sys/kernel/config/tsm/report";

/// The firmware's event log, as Linux 6.4+ exposes the ACPI CCEL records.
pub const DEFAULT_CCEL: &str = "/sys/firmware/acpi/tables/data/CCEL";

/// Where a launcher (`hypervisor launch`, [`super::launcher`]) records the RTMR3 events it
/// extended: JSON lines `{"event": NAME, "payload": HEX}`.
pub const DEFAULT_RUNTIME_LOG: &str = "/run/wasm-hypervisor/rtmr3-events.log";

/// Where a TDX guest's event log comes from: the firmware's CCEL (RTMR0-2, and RTMR3 if the
/// firmware extended it) and the launcher's runtime events (RTMR3).
#[derive(Debug, Clone)]
pub struct EventLogSources {
    /// The CCEL records (binary TCG log).
    pub ccel: PathBuf,
    /// The launcher's JSON lines.
    pub runtime: PathBuf,
}

impl EventLogSources {
    /// The event log in dstack's JSON form, or `None` when neither source exists (a kernel
    /// before 6.4 has no CCEL file). A source that exists but does not parse is an error:
    /// evidence with a partial log would fail every verifier's replay anyway.
    ///
    /// # Errors
    /// [`AttestationError::ProviderFailed`] naming the file.
    pub fn read(&self) -> Result<Option<String>, AttestationError> {
        use hypervisor_eventlog as eventlog;
        let bad = |path: &std::path::Path, why: String| {
            AttestationError::ProviderFailed(format!("event log {}: {why}", path.display()))
        };
        let mut events = Vec::new();
        let mut found = false;
        match std::fs::read(&self.ccel) {
            Ok(bytes) => {
                found = true;
                events = eventlog::parse_tcg(&bytes).map_err(|e| bad(&self.ccel, e.to_string()))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(bad(&self.ccel, e.to_string())),
        }
        match std::fs::read_to_string(&self.runtime) {
            Ok(text) => {
                found = true;
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let v: serde_json::Value = serde_json::from_str(line)
                        .map_err(|e| bad(&self.runtime, e.to_string()))?;
                    let name = v["event"].as_str().unwrap_or_default();
                    let payload = hex::decode(v["payload"].as_str().unwrap_or_default())
                        .map_err(|_| bad(&self.runtime, "payload is not hex".into()))?;
                    events.push(eventlog::Event::runtime(name, &payload));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(bad(&self.runtime, e.to_string())),
        }
        Ok(found.then(|| eventlog::to_json(&events)))
    }
}

/// Operations on a configfs-tsm report tree.
pub trait ReportFs: Send + Sync + 'static {
    /// Creates report entry `name` (in configfs, `mkdir` makes the kernel create its files).
    ///
    /// # Errors
    /// I/O errors.
    fn create(&self, name: &str) -> std::io::Result<()>;
    /// Reads attribute `attr` of entry `name`.
    ///
    /// # Errors
    /// I/O errors.
    fn read(&self, name: &str, attr: &str) -> std::io::Result<Vec<u8>>;
    /// Writes attribute `attr` of entry `name`.
    ///
    /// # Errors
    /// I/O errors.
    fn write(&self, name: &str, attr: &str, data: &[u8]) -> std::io::Result<()>;
    /// Removes entry `name`.
    ///
    /// # Errors
    /// I/O errors.
    fn remove(&self, name: &str) -> std::io::Result<()>;
}

/// The real configfs tree at a root directory.
#[derive(Debug, Clone)]
pub struct ConfigFs {
    root: PathBuf,
}

impl ConfigFs {
    /// The tree at `root` (normally [`DEFAULT_ROOT`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
}

impl ReportFs for ConfigFs {
    fn create(&self, name: &str) -> std::io::Result<()> {
        std::fs::create_dir(self.root.join(name))
    }

    fn read(&self, name: &str, attr: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.root.join(name).join(attr))
    }

    fn write(&self, name: &str, attr: &str, data: &[u8]) -> std::io::Result<()> {
        std::fs::write(self.root.join(name).join(attr), data)
    }

    fn remove(&self, name: &str) -> std::io::Result<()> {
        std::fs::remove_dir(self.root.join(name))
    }
}

/// Whether a configfs-tsm tree exists at `root` and which provider it reports, by probing one
/// report entry. `None` when there is no usable tree.
pub fn detect(fs: &dyn ReportFs) -> Option<TeeKind> {
    let name = entry_name().ok()?;
    fs.create(&name).ok()?;
    let provider = fs.read(&name, "provider").ok();
    let _ = fs.remove(&name);
    match provider
        .as_deref()
        .map(|p| String::from_utf8_lossy(p).trim().to_string())
        .as_deref()
    {
        Some("tdx_guest") => Some(TeeKind::Tdx),
        Some("sev_guest") => Some(TeeKind::SevSnp),
        _ => None,
    }
}

fn entry_name() -> Result<String, AttestationError> {
    let mut r = [0u8; 8];
    getrandom::fill(&mut r)
        .map_err(|_| AttestationError::ProviderFailed("no randomness".into()))?;
    Ok(format!("wasm-hypervisor-{}", hex::encode(r)))
}

/// TDX or SEV-SNP evidence from configfs-tsm.
pub struct TsmProvider {
    fs: Box<dyn ReportFs>,
    kind: TeeKind,
    lock: Mutex<()>,
    event_log: Option<EventLogSources>,
}

impl TsmProvider {
    /// A provider expecting `kind` (`Tdx` or `SevSnp`) behind `fs`.
    pub fn new(fs: Box<dyn ReportFs>, kind: TeeKind) -> Self {
        Self {
            fs,
            kind,
            lock: Mutex::new(()),
            event_log: None,
        }
    }

    /// Includes the event log from `sources` with TDX evidence.
    #[must_use]
    pub fn with_event_log(mut self, sources: EventLogSources) -> Self {
        self.event_log = Some(sources);
        self
    }

    fn expected_provider(&self) -> &'static str {
        match self.kind {
            TeeKind::SevSnp => "sev_guest",
            _ => "tdx_guest",
        }
    }

    fn read_u64(&self, name: &str, attr: &str) -> Result<u64, AttestationError> {
        let raw = self
            .fs
            .read(name, attr)
            .map_err(|e| io_error("read", attr, &e))?;
        String::from_utf8_lossy(&raw)
            .trim()
            .parse()
            .map_err(|_| AttestationError::ProviderFailed(format!("`{attr}` is not a number")))
    }

    fn attest_in(&self, name: &str, report_data: &[u8; 64]) -> Result<Vec<u8>, AttestationError> {
        let provider = self
            .fs
            .read(name, "provider")
            .map_err(|e| io_error("read", "provider", &e))?;
        let provider = String::from_utf8_lossy(&provider).trim().to_string();
        if provider != self.expected_provider() {
            return Err(AttestationError::WrongProvider {
                found: provider,
                expected: self.expected_provider().into(),
            });
        }
        self.fs
            .write(name, "inblob", report_data)
            .map_err(|e| io_error("write", "inblob", &e))?;
        let before = self.read_u64(name, "generation")?;
        let out = self
            .fs
            .read(name, "outblob")
            .map_err(|e| io_error("read", "outblob", &e))?;
        let after = self.read_u64(name, "generation")?;
        if before != after {
            return Err(AttestationError::GenerationChanged { before, after });
        }
        if out.is_empty() {
            return Err(AttestationError::EmptyEvidence);
        }
        Ok(out)
    }
}

fn io_error(op: &str, attr: &str, e: &std::io::Error) -> AttestationError {
    AttestationError::ProviderFailed(format!("cannot {op} configfs-tsm `{attr}`: {e}"))
}

impl AttestationProvider for TsmProvider {
    fn kind(&self) -> TeeKind {
        self.kind
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestationError> {
        let _serialised = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let name = entry_name()?;
        self.fs
            .create(&name)
            .map_err(|e| io_error("create", &name, &e))?;
        let result = self.attest_in(&name, report_data);
        if let Err(e) = self.fs.remove(&name) {
            tracing::warn!(error = %e, "cannot remove the configfs-tsm report entry");
        }
        let evidence = result?;
        let event_log = match (&self.event_log, self.kind) {
            (Some(sources), TeeKind::Tdx) => sources.read()?,
            _ => None,
        };
        Ok(Evidence {
            event_log,
            tee: self.kind,
            format: match self.kind {
                TeeKind::SevSnp => "sev-snp-report",
                _ => "tdx-dcap-quote",
            },
            report_data: *report_data,
            evidence,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Attribute files of one report entry.
    type Attrs = HashMap<String, Vec<u8>>;

    /// Plays the kernel: entries appear with `provider`, `generation` and `outblob`; writing
    /// `inblob` bumps the generation and produces an outblob that embeds the inblob.
    #[derive(Clone, Default)]
    struct FakeKernel {
        provider: String,
        entries: Arc<Mutex<HashMap<String, Attrs>>>,
        /// Simulate a racing writer: bump the generation when outblob is read.
        race: bool,
        /// Return an empty outblob.
        empty: bool,
        removed: Arc<Mutex<Vec<String>>>,
    }

    impl ReportFs for FakeKernel {
        fn create(&self, name: &str) -> std::io::Result<()> {
            let mut attrs = HashMap::new();
            attrs.insert(
                "provider".into(),
                format!("{}\n", self.provider).into_bytes(),
            );
            attrs.insert("generation".into(), b"0\n".to_vec());
            self.entries.lock().unwrap().insert(name.into(), attrs);
            Ok(())
        }
        fn read(&self, name: &str, attr: &str) -> std::io::Result<Vec<u8>> {
            let mut e = self.entries.lock().unwrap();
            let entry = e.get_mut(name).ok_or(std::io::ErrorKind::NotFound)?;
            if attr == "outblob" {
                if self.race {
                    entry.insert("generation".into(), b"7\n".to_vec());
                }
                if self.empty {
                    return Ok(Vec::new());
                }
                let mut quote = b"QUOTE:".to_vec();
                quote.extend_from_slice(entry.get("inblob").map(Vec::as_slice).unwrap_or_default());
                return Ok(quote);
            }
            entry
                .get(attr)
                .cloned()
                .ok_or_else(|| std::io::ErrorKind::NotFound.into())
        }
        fn write(&self, name: &str, attr: &str, data: &[u8]) -> std::io::Result<()> {
            let mut e = self.entries.lock().unwrap();
            let entry = e.get_mut(name).ok_or(std::io::ErrorKind::NotFound)?;
            entry.insert(attr.into(), data.to_vec());
            let g: u64 = String::from_utf8_lossy(&entry["generation"])
                .trim()
                .parse()
                .unwrap();
            entry.insert("generation".into(), format!("{}\n", g + 1).into_bytes());
            Ok(())
        }
        fn remove(&self, name: &str) -> std::io::Result<()> {
            self.entries.lock().unwrap().remove(name);
            self.removed.lock().unwrap().push(name.into());
            Ok(())
        }
    }

    fn kernel(provider: &str) -> FakeKernel {
        FakeKernel {
            provider: provider.into(),
            ..FakeKernel::default()
        }
    }

    #[test]
    fn tdx_evidence_embeds_report_data_and_the_entry_is_removed() {
        let k = kernel("tdx_guest");
        let p = TsmProvider::new(Box::new(k.clone()), TeeKind::Tdx);
        let rd = [0x5a; 64];
        let e = p.attest(&rd).unwrap();
        assert_eq!(e.format, "tdx-dcap-quote");
        assert_eq!(&e.evidence[6..], &rd);
        assert!(k.entries.lock().unwrap().is_empty(), "entry removed");
        assert_eq!(k.removed.lock().unwrap().len(), 1);
        assert_eq!(detect(&k), Some(TeeKind::Tdx));
        assert_eq!(detect(&kernel("sev_guest")), Some(TeeKind::SevSnp));
    }

    #[test]
    fn wrong_provider_race_and_empty_outblob_are_clear_errors() {
        let k = kernel("sev_guest");
        let p = TsmProvider::new(Box::new(k.clone()), TeeKind::Tdx);
        assert_eq!(
            p.attest(&[0; 64]).unwrap_err(),
            AttestationError::WrongProvider {
                found: "sev_guest".into(),
                expected: "tdx_guest".into()
            }
        );
        assert!(
            k.entries.lock().unwrap().is_empty(),
            "entry removed after an error too"
        );

        let racing = FakeKernel {
            race: true,
            ..kernel("tdx_guest")
        };
        let p = TsmProvider::new(Box::new(racing), TeeKind::Tdx);
        assert!(matches!(
            p.attest(&[0; 64]),
            Err(AttestationError::GenerationChanged {
                before: 1,
                after: 7
            })
        ));

        let empty = FakeKernel {
            empty: true,
            ..kernel("sev_guest")
        };
        let p = TsmProvider::new(Box::new(empty), TeeKind::SevSnp);
        assert_eq!(
            p.attest(&[0; 64]).unwrap_err(),
            AttestationError::EmptyEvidence
        );
    }

    #[test]
    fn tdx_evidence_carries_the_firmware_log_then_the_launchers_events() {
        let dir = tempfile::tempdir().unwrap();
        // A CCEL (the fuzz seed: a TCG crypto-agile log with SHA-384 records) and the
        // launcher's JSON lines, as `hypervisor launch` writes them.
        let ccel = dir.path().join("CCEL");
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../fuzz/corpus/event_log/tcg-ccel"
            ),
            &ccel,
        )
        .unwrap();
        let runtime = dir.path().join("rtmr3-events.log");
        let line = serde_json::json!({"event": hypervisor_eventlog::HOST_EVENT, "payload": hex::encode([7u8; 32])});
        std::fs::write(&runtime, format!("{line}\n")).unwrap();
        let sources = EventLogSources {
            ccel: ccel.clone(),
            runtime,
        };
        let firmware = hypervisor_eventlog::parse_tcg(&std::fs::read(&ccel).unwrap()).unwrap();
        let p = TsmProvider::new(Box::new(kernel("tdx_guest")), TeeKind::Tdx)
            .with_event_log(sources.clone());
        let e = p.attest(&[1; 64]).unwrap();
        let events = hypervisor_eventlog::parse_json(e.event_log.as_deref().unwrap()).unwrap();
        assert_eq!(events.len(), firmware.len() + 1);
        assert_eq!(&events[..firmware.len()], &firmware[..]);
        let last = events.last().unwrap();
        assert!(last.is_runtime());
        assert_eq!(last.event, hypervisor_eventlog::HOST_EVENT);
        assert_eq!(last.event_payload, vec![7u8; 32]);
        // SEV-SNP evidence has no event log.
        let p = TsmProvider::new(Box::new(kernel("sev_guest")), TeeKind::SevSnp)
            .with_event_log(sources.clone());
        assert_eq!(p.attest(&[1; 64]).unwrap().event_log, None);
        // A CCEL that does not parse is an error naming the file, not evidence with half a log.
        std::fs::write(&ccel, b"not a TCG log").unwrap();
        let p =
            TsmProvider::new(Box::new(kernel("tdx_guest")), TeeKind::Tdx).with_event_log(sources);
        match p.attest(&[1; 64]) {
            Err(AttestationError::ProviderFailed(m)) => assert!(m.contains("CCEL"), "{m}"),
            other => panic!("{other:?}"),
        }
        // Neither source present (a kernel before 6.4, no launcher): no log.
        let none = EventLogSources {
            ccel: dir.path().join("absent"),
            runtime: dir.path().join("absent too"),
        };
        assert_eq!(none.read().unwrap(), None);
    }

    #[test]
    fn a_missing_tree_is_detected_as_absent_and_fails_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let fs = ConfigFs::new(dir.path().join("no-such-tree"));
        assert_eq!(detect(&fs), None);
        let p = TsmProvider::new(Box::new(fs), TeeKind::Tdx);
        match p.attest(&[0; 64]) {
            Err(AttestationError::ProviderFailed(m)) => assert!(m.contains("create"), "{m}"),
            other => panic!("{other:?}"),
        }
        // A plain directory has no kernel behind it: no provider file.
        let plain = ConfigFs::new(dir.path());
        assert_eq!(detect(&plain), None);
    }
}
