//! `hypervisor-client reference-values --app-compose`: a release's reference value sets, from
//! what was built. The published OS registers (deploy/dstack/os-measurements.json) paired
//! with a real app's exact compose file accept that app's real quote (near/mpc on
//! dstack-dev-0.5.8) and another OS entry is refused; a build directory's OCI layout is read
//! for the host binary, and every way the build and the compose file can disagree is refused.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use hypervisor_client::verify::{Policy, measured_unverified, verify_tdx_quote};
use hypervisor_protocol::reference::{ReferenceValues, match_any};
use hypervisor_protocol::sha256;
use hypervisor_protocol::wire::Attestation;
use serde_json::{Value, json};

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn sample(rel: &str) -> PathBuf {
    repo("../shared/attestation-samples/dstack").join(rel)
}

/// Runs the CLI; (success, stdout, stderr).
fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hypervisor-client"))
        .arg("reference-values")
        .args(args)
        .output()
        .expect("run hypervisor-client");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sets(stdout: &str) -> Vec<ReferenceValues> {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// `--app-compose COMPOSE --host-binary BINARY` with the shipped OS table, every entry or `os`.
fn from_files(compose: &Path, binary: &Path, os: Option<&str>) -> (bool, String, String) {
    let mut args = vec![
        "--app-compose".to_string(),
        compose.display().to_string(),
        "--host-binary".to_string(),
        binary.display().to_string(),
        "--os-measurements".to_string(),
        os_table(),
    ];
    if let Some(os) = os {
        args.extend(["--os".to_string(), os.to_string()]);
    }
    cli(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn os_table() -> String {
    repo("deploy/dstack/os-measurements.json")
        .display()
        .to_string()
}

#[test]
fn the_published_os_registers_and_a_real_compose_file_accept_that_apps_real_quote() {
    let dir = tempfile::tempdir().unwrap();
    // The samples' host is not ours: any binary stands for the claim.
    let binary = dir.path().join("hypervisor");
    std::fs::write(&binary, b"a host binary").unwrap();
    let compose = sample("near-mpc/app_compose.json");
    let (ok, stdout, stderr) = from_files(&compose, &binary, None);
    assert!(ok, "{stderr}");
    let all = sets(&stdout);
    assert_eq!(all.len(), 2, "one set per OS entry: {stdout}");
    assert!(
        stderr.contains("nearone/mpc-launcher@sha256:5618a93a"),
        "{stderr}"
    );
    assert!(
        stderr.contains("2911e1f733466216dedb862d6d669e11256ee7a34ce4dbc66c4b807ba7a9c895"),
        "the compose hash of the exact bytes: {stderr}"
    );

    // near/mpc's quote and event log, as a host of ours claiming that binary would send them.
    let quote: Vec<u8> =
        serde_json::from_slice(&std::fs::read(sample("near-mpc/quote.json")).unwrap()).unwrap();
    let tcb: Value =
        serde_json::from_slice(&std::fs::read(sample("near-mpc/tcb_info.json")).unwrap()).unwrap();
    let attestation = Attestation {
        tee: "tdx".into(),
        simulated: false,
        evidence_format: "tdx-dcap-quote".into(),
        evidence: hex::encode(&quote),
        report_data: hex::encode(&quote[568..632]),
        signing_key: hypervisor_protocol::ClientSecret::generate()
            .unwrap()
            .public_key()
            .to_hex(),
        host_measurement: hex::encode(sha256(b"a host binary")),
        key_created_at: 0,
        event_log: Some(tcb["event_log"].to_string()),
    };
    // As the verifier compares (client/src/verify: the quote DCAP-verified first, here with
    // the sample's collateral at a time inside its window, 2026-08-13T12:00:00Z; the log
    // replayed; a set without TCB statuses of its own takes the policy's). The whole
    // verifier would stop earlier, at the binding: REPORTDATA is near's own, not ours.
    let collateral =
        String::from_utf8(std::fs::read(sample("near-mpc/collateral.json")).unwrap()).unwrap();
    let policy = Policy {
        tdx_collateral: Some(collateral.clone()),
        now: Some(1_786_622_400),
        ..Policy::default()
    };
    let claims = verify_tdx_quote(&quote, &collateral, &policy).expect("DCAP verification");
    let mut measured = measured_unverified(&attestation).unwrap();
    assert_eq!(measured.rtmrs, Some(claims.rtmrs), "the log replays");
    measured.tcb_status = Some(claims.tcb_status);
    let compare = |sets: &[ReferenceValues]| {
        let decoded: Vec<_> = sets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut d = s.decode(i).unwrap();
                if d.tdx_statuses.is_empty() {
                    d.tdx_statuses.clone_from(&policy.accepted_tcb_statuses);
                }
                d
            })
            .collect();
        match_any(&decoded, &measured)
    };
    assert_eq!(
        compare(&all),
        Ok("wasm-hypervisor compose 2911e1f73346 on dstack-dev-0.5.8".to_string())
    );

    // Only the dstack 0.6.0 entry: another firmware, refused at MRTD.
    let (ok, stdout, stderr) = from_files(&compose, &binary, Some("dstack-0.6.0-lite-2cpu-2g"));
    assert!(ok, "{stderr}");
    let why = compare(&sets(&stdout)).unwrap_err();
    assert!(why.contains("MRTD differs"), "{why}");

    // Another compose file (the same JSON re-serialised): refused at the compose hash.
    let reserialised = dir.path().join("reserialised.json");
    let parsed: Value = serde_json::from_slice(&std::fs::read(&compose).unwrap()).unwrap();
    std::fs::write(&reserialised, serde_json::to_vec(&parsed).unwrap()).unwrap();
    let (ok, stdout, stderr) = from_files(&reserialised, &binary, Some("dstack-dev-0.5.8"));
    assert!(ok, "{stderr}");
    let why = compare(&sets(&stdout)).unwrap_err();
    assert!(why.contains("compose-hash"), "{why}");

    // An OS the table does not have is named, with the ones it has.
    let (ok, _, stderr) = from_files(&compose, &binary, Some("dstack-9.9"));
    assert!(!ok);
    assert!(
        stderr.contains("dstack-9.9") && stderr.contains("dstack-dev-0.5.8"),
        "{stderr}"
    );
}

/// A gzip tar holding `files`.
fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        tar.append_data(&mut header, path, *bytes).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// Writes `bytes` as a blob of the layout `dir`; its digest.
fn blob(dir: &Path, bytes: &[u8]) -> String {
    let hex = hex::encode(sha256(bytes));
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(&hex), bytes).unwrap();
    format!("sha256:{hex}")
}

/// A build directory as scripts/reproducible-image.sh leaves it: the image (two layers, the
/// binary in the first) as an OCI layout, and the binaries beside it. Returns the manifest
/// digest.
fn build_dir(dir: &Path, binary: &[u8]) -> String {
    let layout = dir.join("layout");
    let layers: Vec<(String, usize)> = [
        layer(&[
            ("usr/local/bin/hypervisor", binary),
            ("etc/passwd", b"root"),
        ]),
        layer(&[("data/.keep", b"")]),
    ]
    .iter()
    .map(|l| (blob(&layout, l), l.len()))
    .collect();
    let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}});
    let config = serde_json::to_vec(&config).unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": blob(&layout, &config), "size": config.len()},
        "layers": layers.iter().map(|(d, n)| json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n
        })).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let digest = blob(&layout, &manifest);
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
        "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "t"}}]});
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("binaries")).unwrap();
    std::fs::write(dir.join("binaries/hypervisor"), binary).unwrap();
    digest
}

fn app_compose(dir: &Path, file: &str, image: &str) -> PathBuf {
    let compose = format!("services:\n  hypervisor:\n    image: {image}\n");
    let doc = json!({"docker_compose_file": compose, "name": "t", "runner": "docker-compose"});
    let path = dir.join(file);
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&serde_json::to_vec(&doc).unwrap()).unwrap();
    path
}

fn from_build(build: &Path, compose: &Path) -> (bool, String, String) {
    cli(&[
        "--app-compose",
        compose.to_str().unwrap(),
        "--build",
        build.to_str().unwrap(),
        "--os-measurements",
        &os_table(),
        "--os",
        "dstack-dev-0.5.8",
    ])
}

#[test]
fn a_build_directory_gives_the_binary_inside_the_image_the_compose_file_pins() {
    let dir = tempfile::tempdir().unwrap();
    let build = dir.path().join("build");
    let binary = b"the host binary, inside the image".as_slice();
    let digest = build_dir(&build, binary);
    let image = format!("registry.test/wasm-hypervisor@{digest}");
    let compose = app_compose(dir.path(), "app-compose.json", &image);

    let (ok, stdout, stderr) = from_build(&build, &compose);
    assert!(ok, "{stderr}");
    let set = &sets(&stdout)[0];
    assert_eq!(set.host_measurements, vec![hex::encode(sha256(binary))]);
    let compose_hash = hex::encode(sha256(&std::fs::read(&compose).unwrap()));
    let tdx = set.tdx.as_ref().unwrap();
    assert_eq!(tdx.app.compose_hash.as_deref(), Some(compose_hash.as_str()));
    assert!(stderr.contains(&image), "{stderr}");

    // The compose file pins another image: both digests named.
    let other = format!("registry.test/wasm-hypervisor@sha256:{}", "ab".repeat(32));
    let (ok, _, stderr) = from_build(&build, &app_compose(dir.path(), "other.json", &other));
    assert!(!ok);
    assert!(
        stderr.contains(&"ab".repeat(32)) && stderr.contains(&digest),
        "{stderr}"
    );

    // An image named by tag: the compose hash would not pin the code.
    let (ok, _, stderr) = from_build(
        &build,
        &app_compose(dir.path(), "tag.json", "registry.test/h:latest"),
    );
    assert!(!ok);
    assert!(stderr.contains("not pinned"), "{stderr}");

    // The build's copy of the binary differs from the image's.
    std::fs::write(build.join("binaries/hypervisor"), b"another binary").unwrap();
    let (ok, _, stderr) = from_build(&build, &compose);
    assert!(!ok);
    assert!(stderr.contains("differs"), "{stderr}");
    std::fs::write(build.join("binaries/hypervisor"), binary).unwrap();

    // A layer whose bytes are not its digest's.
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(build.join("layout/blobs/sha256").join(&digest[7..])).unwrap(),
    )
    .unwrap();
    let second = manifest["layers"][1]["digest"].as_str().unwrap();
    let path = build.join("layout/blobs/sha256").join(&second[7..]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"\0\0\0\0");
    std::fs::write(&path, bytes).unwrap();
    let (ok, _, stderr) = from_build(&build, &compose);
    assert!(!ok);
    assert!(stderr.contains("does not match its digest"), "{stderr}");
}
