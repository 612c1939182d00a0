//! `hypervisor-client reference-values --app-compose …`: the reference value set of a release,
//! computed from what was built, not from a running host: the compose hash of the exact
//! `app-compose.json` bytes, the image digest it pins (checked against the built OCI layout),
//! the host binary's SHA-256 (read out of the image's own layers, and equal to the build's
//! copy), the plug-ins embedded in it, and the registers of the dstack OS images and VM shapes
//! it may run on (`deploy/dstack/os-measurements.json`: published values, never the host's).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use hypervisor_protocol::reference::{
    AppReference, REFERENCE_VALUES_VERSION, ReferenceValues, TcbReference, TdxReference,
};
use hypervisor_protocol::sha256;
use serde::Deserialize;

/// Where the image keeps the host binary.
const HOST_IN_IMAGE: &str = "usr/local/bin/hypervisor";

/// The plug-ins the host embeds (host/build.rs), as the reproducible build writes them.
const PLUGINS: &[&str] = &["payments.wasm", "policy-python.wasm", "js-runtime.wasm"];

/// Largest file read whole here (app-compose, OS table, index, manifest).
const MAX_SMALL_FILE: u64 = 4 << 20;

/// What `reference-values --app-compose` was given.
pub struct ReleaseArgs<'a> {
    /// A prefix for the sets' names (empty: `wasm-hypervisor compose <hash>`).
    pub name: &'a str,
    /// The exact `app-compose.json` the app is deployed with.
    pub app_compose: &'a Path,
    /// `scripts/reproducible-image.sh`'s output directory (`binaries/`, `layout/`).
    pub build: Option<&'a Path>,
    /// The host binary, when there is no build directory.
    pub host_binary: Option<&'a Path>,
    /// The OS images and VM shapes table.
    pub os_measurements: &'a Path,
    /// Only these OS entries (default: all).
    pub os: &'a [String],
}

/// One dstack OS image on one VM shape, with where its registers come from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OsEntry {
    name: String,
    #[serde(default)]
    shape: String,
    mrtd: String,
    rtmr0: String,
    rtmr1: String,
    rtmr2: String,
    source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OsTable {
    #[serde(default, rename = "_comment")]
    _comment: Option<serde_json::Value>,
    entries: Vec<OsEntry>,
}

fn read_small(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_SMALL_FILE + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > MAX_SMALL_FILE {
        bail!("{} is larger than {MAX_SMALL_FILE} bytes", path.display());
    }
    Ok(bytes)
}

/// The `image:` values of a compose file's services (a line scan: `image:` keys at any
/// indentation, quotes removed), in order.
pub fn compose_images(compose: &str) -> Vec<String> {
    compose
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("image:"))
        .map(|v| {
            let v = v.split(" #").next().unwrap_or("").trim();
            v.trim_matches(|c| c == '"' || c == '\'').to_string()
        })
        .collect()
}

/// The `sha256:…` digest an image reference pins, if it pins one.
fn pinned_digest(reference: &str) -> Option<&str> {
    let (_, digest) = reference.rsplit_once('@')?;
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then_some(digest)
}

/// The image digests an `app-compose.json` pins: every service's image must be pinned by
/// digest, or the compose hash would not say which code runs.
pub fn app_compose_images(app_compose: &[u8]) -> anyhow::Result<Vec<(String, String)>> {
    let doc: serde_json::Value =
        serde_json::from_slice(app_compose).context("app-compose.json is not JSON")?;
    let compose = doc
        .get("docker_compose_file")
        .and_then(|v| v.as_str())
        .context("app-compose.json has no docker_compose_file string")?;
    let images = compose_images(compose);
    if images.is_empty() {
        bail!("the compose file names no image");
    }
    images
        .into_iter()
        .map(|reference| match pinned_digest(&reference) {
            Some(d) => Ok((reference.clone(), d.to_string())),
            None => bail!(
                "image {reference:?} is not pinned by @sha256:<digest>: the compose hash \
                 would not pin the code it runs"
            ),
        })
        .collect()
}

/// The manifest digests of an OCI image layout (`index.json`).
fn layout_manifests(layout: &Path) -> anyhow::Result<Vec<String>> {
    let index: serde_json::Value = serde_json::from_slice(&read_small(&layout.join("index.json"))?)
        .context("the layout's index.json is not JSON")?;
    Ok(index["manifests"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|d| d["digest"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// A blob of the layout, by digest, checked against it.
fn blob_path(layout: &Path, digest: &str) -> anyhow::Result<PathBuf> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        bail!("unsupported digest {digest:?}");
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("malformed digest {digest:?}");
    }
    Ok(layout.join("blobs/sha256").join(hex))
}

/// The SHA-256 of `path` inside the image `manifest` of `layout` (the last layer holding it
/// wins, as when the layers are unpacked in order); every blob read is checked against its
/// digest.
pub fn file_in_image(layout: &Path, manifest: &str, path: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = read_small(&blob_path(layout, manifest)?)?;
    if format!("sha256:{}", hex::encode(sha256(&bytes))) != manifest {
        bail!("manifest blob {manifest} does not match its digest");
    }
    let manifest_doc: serde_json::Value =
        serde_json::from_slice(&bytes).context("the manifest is not JSON")?;
    let layers = manifest_doc["layers"]
        .as_array()
        .context("the manifest has no layers")?;
    let mut found = None;
    for layer in layers {
        let digest = layer["digest"].as_str().context("a layer without digest")?;
        let media = layer["mediaType"].as_str().unwrap_or("");
        let file = std::fs::File::open(blob_path(layout, digest)?)
            .with_context(|| format!("layer {digest}"))?;
        // Hash the compressed blob while reading it, to check it against its digest.
        let mut hashing = HashingReader::new(file);
        {
            let reader: Box<dyn Read + '_> = if media.ends_with("+gzip") {
                Box::new(flate2::read::GzDecoder::new(&mut hashing))
            } else if media.ends_with(".tar") {
                Box::new(&mut hashing)
            } else {
                bail!("layer {digest} has an unsupported media type {media:?}");
            };
            let mut archive = tar::Archive::new(reader);
            for entry in archive.entries().context("reading a layer")? {
                let mut entry = entry.context("reading a layer entry")?;
                let name = entry.path().context("a layer entry's path")?.into_owned();
                let name = name.to_string_lossy();
                if name.trim_start_matches("./").trim_start_matches('/') == path {
                    let mut content = Vec::new();
                    entry.read_to_end(&mut content)?;
                    found = Some(sha256(&content));
                }
            }
        }
        // Read what tar left (padding) so that the digest covers the whole blob.
        std::io::copy(&mut hashing, &mut std::io::sink())?;
        if format!("sha256:{}", hex::encode(hashing.finish())) != digest {
            bail!("layer {digest} does not match its digest");
        }
    }
    found.with_context(|| format!("the image has no /{path}"))
}

/// A reader that hashes what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        use sha2::Digest;
        Self {
            inner,
            hasher: sha2::Sha256::new(),
        }
    }

    fn finish(self) -> [u8; 32] {
        use sha2::Digest;
        self.hasher.finalize().into()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// `hypervisor-client reference-values --app-compose FILE …`.
pub fn reference_values(args: &ReleaseArgs<'_>) -> anyhow::Result<ExitCode> {
    let compose = read_small(args.app_compose)?;
    let compose_hash = sha256(&compose);
    let images = app_compose_images(&compose)?;

    // The host binary: out of the built image (which the compose file must pin), or a file.
    let (host, host_source) = match (args.build, args.host_binary) {
        (Some(build), None) => {
            let layout = build.join("layout");
            let manifests = layout_manifests(&layout)?;
            let Some((_, digest)) = images.iter().find(|(_, d)| manifests.contains(d)) else {
                bail!(
                    "the compose file pins {}, the build's image is {}: rebuild \
                     app-compose.json for this build (deploy/dstack/app-compose.py)",
                    images
                        .iter()
                        .map(|(_, d)| d.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    manifests.join(", ")
                );
            };
            let host = file_in_image(&layout, digest, HOST_IN_IMAGE)?;
            let copy = build.join("binaries/hypervisor");
            if copy.exists() {
                let bytes = std::fs::read(&copy)?;
                if sha256(&bytes) != host {
                    bail!(
                        "{} differs from the image's /{HOST_IN_IMAGE}",
                        copy.display()
                    );
                }
            }
            (host, format!("/{HOST_IN_IMAGE} in image {digest}"))
        }
        (None, Some(file)) => {
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            (sha256(&bytes), file.display().to_string())
        }
        _ => bail!("give the build directory (--build) or the host binary (--host-binary)"),
    };

    let table: OsTable = serde_json::from_slice(&read_small(args.os_measurements)?)
        .with_context(|| format!("{} is not an OS table", args.os_measurements.display()))?;
    for wanted in args.os {
        if !table.entries.iter().any(|e| &e.name == wanted) {
            bail!(
                "no OS entry {wanted:?} in {} (entries: {})",
                args.os_measurements.display(),
                table
                    .entries
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let chosen: Vec<&OsEntry> = table
        .entries
        .iter()
        .filter(|e| args.os.is_empty() || args.os.contains(&e.name))
        .collect();

    eprintln!("compose hash      {}", hex::encode(compose_hash));
    for (reference, _) in &images {
        eprintln!("image             {reference}");
    }
    eprintln!("host binary       {}  ({host_source})", hex::encode(host));
    if let Some(build) = args.build {
        let binary = std::fs::read(build.join("binaries/hypervisor")).unwrap_or_default();
        for plugin in PLUGINS {
            if let Ok(bytes) = std::fs::read(build.join("binaries").join(plugin)) {
                let embedded =
                    !binary.is_empty() && memchr::memmem::find(&binary, &bytes).is_some();
                eprintln!(
                    "plug-in           {}  {plugin}{}",
                    hex::encode(sha256(&bytes)),
                    if embedded {
                        " (embedded in the host binary)"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    let short = hex::encode(&compose_hash[..6]);
    let sets: Vec<ReferenceValues> = chosen
        .iter()
        .map(|os| {
            eprintln!(
                "OS                {}: {} ({})",
                os.name, os.shape, os.source
            );
            ReferenceValues {
                version: REFERENCE_VALUES_VERSION,
                name: if args.name.is_empty() {
                    format!("wasm-hypervisor compose {short} on {}", os.name)
                } else {
                    format!("{} on {}", args.name, os.name)
                },
                tee: "tdx".into(),
                tdx: Some(TdxReference {
                    mrtd: os.mrtd.clone(),
                    rtmr0: os.rtmr0.clone(),
                    rtmr1: os.rtmr1.clone(),
                    rtmr2: os.rtmr2.clone(),
                    app: AppReference {
                        compose_hash: Some(hex::encode(compose_hash)),
                        app_id: None,
                        host_event: false,
                    },
                }),
                sev_snp: None,
                host_measurements: vec![hex::encode(host)],
                tcb: TcbReference::default(),
            }
        })
        .collect();
    for (i, set) in sets.iter().enumerate() {
        set.decode(i)
            .map_err(|e| anyhow::anyhow!("the OS table makes an invalid set: {e}"))?;
    }
    if sets.is_empty() {
        bail!("the OS table has no entries");
    }
    println!("{}", serde_json::to_string_pretty(&sets)?);
    Ok(ExitCode::SUCCESS)
}
