//! Plug-ins compiled ahead of time, shipped beside the binary (`hypervisor precompile` writes
//! them; the image carries them in `/usr/local/bin/hypervisor-precompiled/`), so that a first
//! start on a new data directory deserializes the policy and Python runtime instead of
//! compiling them (seconds of Cranelift and hundreds of MB at peak).
//!
//! A directory holds `manifest.json` and one `<source SHA-256>.cwasm` per plug-in. An artifact
//! is used only if every check passes, else the plug-in is compiled and the log says why:
//!
//! 1. the directory, the manifest and the artifact are owned by root or by this process's
//!    user and writable by no one else (the data directory, which the host writes, is never
//!    where they come from);
//! 2. the manifest names the SHA-256 of the plug-in the configuration asks for;
//! 3. its wasmtime version, target and engine fingerprint (wasmtime's compatibility hash of
//!    the code-generation settings, under SHA-256) are this host's;
//! 4. the artifact's SHA-256 is the manifest's;
//! 5. wasmtime's own check of the artifact's version and compiler flags passes.
//!
//! What makes the code trustworthy is where it sits: in the image, whose digest the platform
//! measures with the binary (dstack's compose hash in RTMR3). `hypervisor launch` measures the
//! binary alone, so it does not use precompiled plug-ins (see `main.rs`). The checks above
//! catch a stale, mismatched or damaged artifact, and one placed by another user.

use std::collections::HashMap;
use std::fs::File;
use std::hash::Hasher;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;

/// The manifest's file name in a precompiled directory.
pub const MANIFEST: &str = "manifest.json";
/// The manifest format this host reads and writes.
const FORMAT: u32 = 1;
/// The wasmtime version this binary links (`build.rs`, from Cargo.lock).
pub const WASMTIME_VERSION: &str = env!("HYPERVISOR_WASMTIME_VERSION");
/// The target this binary was built for.
pub const TARGET: &str = super::settings::TARGET;

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The wasmtime version that compiled the artifacts.
    pub wasmtime: String,
    /// The target they were compiled for (a Rust target triple).
    pub target: String,
    /// [`engine_fingerprint`] of the engine that compiled them, hex.
    pub engine: String,
    /// One entry per plug-in, sorted by name.
    pub artifacts: Vec<Entry>,
}

/// One precompiled plug-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// How the configuration named it when it was compiled (`builtin:policy-python`, a path).
    pub name: String,
    /// SHA-256 of the component, hex: what the host looks it up by.
    pub source_sha256: String,
    /// SHA-256 of the artifact file, hex.
    pub artifact_sha256: String,
    /// The artifact's file name in the directory.
    pub file: String,
}

/// Why precompiled code was not used (the plug-in is then compiled).
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    /// No manifest in the directory.
    #[error("no {0}")]
    Absent(PathBuf),
    /// A file could not be read.
    #[error("cannot read {path}: {detail}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The system's error.
        detail: String,
    },
    /// Owned by another user, or writable by others.
    #[error(
        "{path} is {why}: precompiled code must be owned by root or by this process's user, and \
         writable by no one else"
    )]
    Permissions {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The manifest is not one this host reads.
    #[error("{path}: {detail}")]
    Malformed {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Built by another wasmtime, or for another target.
    #[error(
        "compiled by wasmtime {wasmtime} for {target}; this host runs wasmtime {WASMTIME_VERSION} \
         on {TARGET}"
    )]
    Version {
        /// The manifest's wasmtime version.
        wasmtime: String,
        /// The manifest's target.
        target: String,
    },
    /// Built with other code-generation settings.
    #[error(
        "compiled with other engine settings (fingerprint {found}, this host's {ours}): \
         engine.fuel, limits.max_wasm_stack_bytes and engine.pooling_allocator change them; \
         run `hypervisor precompile` with this configuration"
    )]
    Engine {
        /// The manifest's fingerprint.
        found: String,
        /// This engine's.
        ours: String,
    },
    /// The artifact is not the one the manifest names.
    #[error("{path}: SHA-256 {found}, the manifest says {expected}")]
    Hash {
        /// The artifact.
        path: PathBuf,
        /// Its SHA-256.
        found: String,
        /// The manifest's.
        expected: String,
    },
    /// wasmtime refused the artifact.
    #[error("wasmtime refused {path}: {detail}")]
    Refused {
        /// The artifact.
        path: PathBuf,
        /// wasmtime's reason.
        detail: String,
    },
}

/// SHA-256 of wasmtime's compatibility hash of `engine`'s code-generation settings (target,
/// compiler flags, tunables, features, wasmtime version): two engines with the same
/// fingerprint load each other's artifacts.
pub fn engine_fingerprint(engine: &wasmtime::Engine) -> [u8; 32] {
    /// A [`Hasher`] that feeds SHA-256 (std's hashers are 64-bit and not stable across Rust
    /// releases).
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            let digest = self.0.clone().finalize();
            u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
        }
    }
    let mut sha = Sha(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut sha);
    sha.0.finalize().into()
}

/// A checked manifest: the artifacts this engine may load, by the SHA-256 of their source.
#[derive(Debug)]
pub struct Precompiled {
    dir: PathBuf,
    by_source: HashMap<[u8; 32], Entry>,
}

impl Precompiled {
    /// Reads `dir`'s manifest and checks it (ownership, format, version, target, engine).
    ///
    /// # Errors
    /// [`Unusable`]: why none of the directory's artifacts can be used.
    pub fn open(dir: &Path, engine: &wasmtime::Engine) -> Result<Self, Unusable> {
        let path = dir.join(MANIFEST);
        let file = match open_nonblocking(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Unusable::Absent(path));
            }
            Err(e) => return Err(unreadable(&path, &e)),
        };
        let meta = std::fs::metadata(dir).map_err(|e| unreadable(dir, &e))?;
        check_owner(dir, &meta)?;
        let manifest = read_manifest(&path, file)?;
        if manifest.wasmtime != WASMTIME_VERSION || manifest.target != TARGET {
            return Err(Unusable::Version {
                wasmtime: manifest.wasmtime,
                target: manifest.target,
            });
        }
        let ours = hex::encode(engine_fingerprint(engine));
        if manifest.engine != ours {
            return Err(Unusable::Engine {
                found: manifest.engine,
                ours,
            });
        }
        let mut by_source = HashMap::new();
        for entry in manifest.artifacts {
            let malformed = |detail: String| Unusable::Malformed {
                path: path.clone(),
                detail,
            };
            let source = parse_sha256(&entry.source_sha256)
                .ok_or_else(|| malformed(format!("{:?} is not a SHA-256", entry.source_sha256)))?;
            if parse_sha256(&entry.artifact_sha256).is_none() || !is_plain_name(&entry.file) {
                return Err(malformed(format!("entry {:?} is malformed", entry.name)));
            }
            by_source.insert(source, entry);
        }
        Ok(Self {
            dir: dir.to_owned(),
            by_source,
        })
    }

    /// Where the artifacts are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The component compiled from the component whose SHA-256 is `source`, checked; `None`
    /// if the manifest does not list it.
    pub fn load(
        &self,
        engine: &wasmtime::Engine,
        source: &[u8; 32],
    ) -> Option<Result<Component, Unusable>> {
        let entry = self.by_source.get(source)?;
        Some(self.load_entry(engine, entry))
    }

    /// The core module compiled from the module whose SHA-256 is `source` (the JavaScript
    /// runtime's shared code), checked as [`Self::load`] checks a component.
    pub fn load_module(
        &self,
        engine: &wasmtime::Engine,
        source: &[u8; 32],
    ) -> Option<Result<wasmtime::Module, Unusable>> {
        let entry = self.by_source.get(source)?;
        Some(self.load_module_entry(engine, entry))
    }

    fn load_entry(&self, engine: &wasmtime::Engine, entry: &Entry) -> Result<Component, Unusable> {
        let Checked { path, open, _file } = self.checked(entry)?;
        // SAFETY: `deserialize_file` trusts the file to be an artifact wasmtime wrote and maps
        // it as code, and requires it to stay unchanged while mapped. This file is one that
        // `hypervisor precompile` wrote: its SHA-256, read through the descriptor mapped here,
        // is the manifest's; the manifest, the directory and the file are owned by root or
        // this user and writable by no one else; wasmtime also checks the artifact's version
        // and compiler flags against this engine. Unchanged while mapped: `precompile` replaces
        // files by renaming new ones over them, never in place; only root or this user could
        // write it in place (which would change the code after the check, or stop the host
        // with SIGBUS if it shrank), and they can change this process anyway. Mapping rather
        // than reading keeps the artifacts (tens of MB) in the page cache, not in this
        // process's memory. `launch` never maps them (RTMR3 measures the binary alone).
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize_file(engine, &open) };
        component.map_err(|e| Unusable::Refused {
            path,
            detail: super::error_chain(&e),
        })
    }

    fn load_module_entry(
        &self,
        engine: &wasmtime::Engine,
        entry: &Entry,
    ) -> Result<wasmtime::Module, Unusable> {
        let Checked { path, open, _file } = self.checked(entry)?;
        // SAFETY: as in `load_entry`: a file `hypervisor precompile` wrote, checked the same way
        // (wasmtime also refuses a component's artifact here).
        #[allow(unsafe_code)]
        let module = unsafe { wasmtime::Module::deserialize_file(engine, &open) };
        module.map_err(|e| Unusable::Refused {
            path,
            detail: super::error_chain(&e),
        })
    }

    /// Whether the artifact of `entry` is checked by kind: a component is, a core module is
    /// (`is_module`).
    fn check_entry(&self, engine: &wasmtime::Engine, entry: &Entry, is_module: bool) -> bool {
        if is_module {
            self.load_module_entry(engine, entry).is_ok()
        } else {
            self.load_entry(engine, entry).is_ok()
        }
    }

    /// The artifact of `entry` checked (owner, kind of file, SHA-256), held open.
    fn checked(&self, entry: &Entry) -> Result<Checked, Unusable> {
        let path = self.dir.join(&entry.file);
        let mut file = open_nonblocking(&path).map_err(|e| unreadable(&path, &e))?;
        let meta = file.metadata().map_err(|e| unreadable(&path, &e))?;
        check_owner(&path, &meta)?;
        if !meta.is_file() {
            return Err(Unusable::Permissions {
                path,
                why: "not a regular file".into(),
            });
        }
        let found = crate::crypto::primitives::sha256_reader(&mut file)
            .map_err(|e| unreadable(&path, &e))?;
        if parse_sha256(&entry.artifact_sha256) != Some(found) {
            return Err(Unusable::Hash {
                path,
                found: hex::encode(found),
                expected: entry.artifact_sha256.clone(),
            });
        }
        // The file just hashed, by its descriptor: a rename over `path` since then changes
        // nothing (and only root or this user could write the file itself, checked above).
        let by_fd = PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&file)
        ));
        // Never the path itself: between the hash and the mapping, anyone who may rename
        // entries of the directory or above it could put another file there.
        if !by_fd.exists() {
            return Err(unreadable(
                &path,
                &std::io::Error::other("/proc/self/fd is not available to map it by descriptor"),
            ));
        }
        let open = by_fd;
        Ok(Checked {
            path,
            open,
            _file: file,
        })
    }
}

/// An artifact that passed [`Precompiled::checked`].
struct Checked {
    /// Its path in the directory (for messages).
    path: PathBuf,
    /// The path to map it by: its open descriptor's, so that a rename over `path` since the
    /// check changes nothing.
    open: PathBuf,
    /// Held open while it is mapped.
    _file: File,
}

/// The precompiled plug-ins in `dir` (`None`: turned off), checked against the engine
/// `compiler` makes (the one `hypervisor precompile` compiles with), or `None` with the
/// reason logged. They are loaded with the serving engine, which checks their CPU features
/// against this machine's.
pub(super) fn open_configured(
    dir: Option<&Path>,
    compiler: impl FnOnce() -> Result<wasmtime::Engine, super::EngineError>,
) -> Option<Precompiled> {
    let Some(dir) = dir else {
        tracing::info!(
            "precompiled plug-ins off (precompiled_dir = \"\"): plug-ins are compiled at first start"
        );
        return None;
    };
    let engine = match compiler() {
        Ok(engine) => engine,
        Err(e) => {
            tracing::warn!(error = %e, "precompiled plug-ins unusable (their engine cannot be made here); compiling them instead");
            return None;
        }
    };
    let engine = &engine;
    match Precompiled::open(dir, engine) {
        Ok(p) => {
            tracing::info!(dir = %dir.display(), plugins = p.by_source.len(), "precompiled plug-ins found");
            Some(p)
        }
        Err(Unusable::Absent(manifest)) => {
            tracing::info!(
                "no precompiled plug-ins ({}): plug-ins are compiled at first start \
                 (`hypervisor precompile` makes them)",
                manifest.display()
            );
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "precompiled plug-ins unusable; compiling them instead");
            None
        }
    }
}

/// What [`write`] did.
#[derive(Debug, Default)]
pub struct Written {
    /// Plug-ins compiled now, by name.
    pub compiled: Vec<String>,
    /// Plug-ins whose artifact was already there and checked.
    pub kept: Vec<String>,
    /// Artifacts of plug-ins no longer named, removed.
    pub removed: Vec<String>,
}

/// Compiles `plugins` (name, component or core module bytes) for `engine` into `dir`, with its
/// manifest; an artifact already there that passes every check of [`Precompiled::load`] is
/// kept, not compiled again. Files are written whole and renamed into place, readable by all (0644).
///
/// # Errors
/// A message naming the plug-in or the file.
pub fn write(
    dir: &Path,
    engine: &wasmtime::Engine,
    plugins: &[(String, Vec<u8>)],
) -> Result<Written, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let existing = Precompiled::open(dir, engine).ok();
    let mut written = Written::default();
    let mut entries: Vec<Entry> = Vec::new();
    for (name, bytes) in plugins {
        let source: [u8; 32] = Sha256::digest(bytes).into();
        if entries
            .iter()
            .any(|e| e.source_sha256 == hex::encode(source))
        {
            continue; // the same component under two names (policy and Python runtime)
        }
        let is_module = wasmparser::Parser::is_core_wasm(bytes);
        if let Some(entry) = existing.as_ref().and_then(|p| {
            let entry = p.by_source.get(&source)?;
            p.check_entry(engine, entry, is_module)
                .then(|| entry.clone())
        }) {
            written.kept.push(name.clone());
            entries.push(Entry {
                name: name.clone(),
                ..entry
            });
            continue;
        }
        let artifact = if is_module {
            engine.precompile_module(bytes)
        } else {
            engine.precompile_component(bytes)
        }
        .map_err(|e| format!("{name}: {}", super::error_chain(&e)))?;
        let file = format!("{}.cwasm", hex::encode(source));
        write_file(&dir.join(&file), &artifact)?;
        entries.push(Entry {
            name: name.clone(),
            source_sha256: hex::encode(source),
            artifact_sha256: hex::encode(Sha256::digest(&artifact)),
            file,
        });
        written.compiled.push(name.clone());
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let manifest = Manifest {
        format: FORMAT,
        wasmtime: WASMTIME_VERSION.into(),
        target: TARGET.into(),
        engine: hex::encode(engine_fingerprint(engine)),
        artifacts: entries,
    };
    let mut text = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    text.push(b'\n');
    write_file(&dir.join(MANIFEST), &text)?;
    // Artifacts no entry names any more (an older plug-in).
    let listed: Vec<&str> = manifest.artifacts.iter().map(|e| e.file.as_str()).collect();
    let files = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for file in files.flatten() {
        let name = file.file_name().to_string_lossy().into_owned();
        if name.ends_with(".cwasm") && !listed.contains(&name.as_str()) {
            std::fs::remove_file(file.path()).map_err(|e| format!("{name}: {e}"))?;
            written.removed.push(name);
        }
    }
    Ok(written)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let partial = path.with_extension("partial");
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    std::fs::write(&partial, bytes).map_err(fail)?;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o644)).map_err(fail)?;
    std::fs::rename(&partial, path).map_err(fail)
}

/// `path` opened for reading without waiting: a FIFO put in place of a file opens at once
/// (then refused as not a regular file) instead of holding the start until a writer comes.
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

fn read_manifest(path: &Path, file: File) -> Result<Manifest, Unusable> {
    let meta = file.metadata().map_err(|e| unreadable(path, &e))?;
    check_owner(path, &meta)?;
    if !meta.is_file() {
        return Err(Unusable::Permissions {
            path: path.to_owned(),
            why: "not a regular file".into(),
        });
    }
    // A manifest lists a few plug-ins: anything larger is not one.
    const MAX: u64 = 1 << 20;
    if meta.len() > MAX {
        return Err(Unusable::Malformed {
            path: path.to_owned(),
            detail: format!("{} bytes (at most {MAX})", meta.len()),
        });
    }
    let mut text = Vec::new();
    file.take(MAX + 1)
        .read_to_end(&mut text)
        .map_err(|e| unreadable(path, &e))?;
    if text.len() as u64 > MAX {
        // (It grew since its size was read.)
        return Err(Unusable::Malformed {
            path: path.to_owned(),
            detail: format!("more than {MAX} bytes"),
        });
    }
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| Unusable::Malformed {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    if manifest.format != FORMAT {
        return Err(Unusable::Malformed {
            path: path.to_owned(),
            detail: format!("format {} (this host reads {FORMAT})", manifest.format),
        });
    }
    Ok(manifest)
}

/// Owned by root or this process's user, and writable by neither group nor others.
fn check_owner(path: &Path, meta: &std::fs::Metadata) -> Result<(), Unusable> {
    let me = rustix::process::geteuid().as_raw();
    let why = if meta.uid() != 0 && meta.uid() != me {
        Some(format!("owned by user {}", meta.uid()))
    } else if meta.mode() & 0o022 != 0 {
        Some(format!(
            "writable by group or others (mode {:o})",
            meta.mode() & 0o7777
        ))
    } else {
        None
    };
    match why {
        Some(why) => Err(Unusable::Permissions {
            path: path.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// A file name without a directory part (the manifest cannot point outside its directory).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

fn unreadable(path: &Path, e: &std::io::Error) -> Unusable {
    Unusable::Unreadable {
        path: path.to_owned(),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests;
