use std::os::unix::fs::PermissionsExt;

use super::*;

/// A component with nothing in it but a custom section named `name` (so two differ).
fn component(name: &str) -> Vec<u8> {
    let mut bytes = b"\0asm\x0d\x00\x01\x00".to_vec();
    let payload = [&[name.len() as u8][..], name.as_bytes()].concat();
    bytes.push(0); // custom section
    bytes.push(payload.len() as u8);
    bytes.extend(payload);
    bytes
}

fn engine(fuel: bool) -> wasmtime::Engine {
    let mut wc = wasmtime::Config::new();
    wc.wasm_component_model(true).consume_fuel(fuel);
    wasmtime::Engine::new(&wc).expect("engine")
}

fn plugins() -> Vec<(String, Vec<u8>)> {
    vec![
        ("builtin:policy".into(), component("policy")),
        ("payments.wasm".into(), component("payments")),
    ]
}

fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn written_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("pre");
    let written = write(&dir, &engine(false), &plugins()).expect("written");
    assert_eq!(written.compiled, ["builtin:policy", "payments.wasm"]);
    (tmp, dir)
}

#[test]
fn written_artifacts_load_and_are_kept_by_the_next_write() {
    let (_tmp, dir) = written_dir();
    let engine = engine(false);
    let pre = Precompiled::open(&dir, &engine).expect("usable");
    for (_, bytes) in plugins() {
        pre.load(&engine, &sha(&bytes))
            .expect("listed")
            .expect("loads");
    }
    assert!(pre.load(&engine, &sha(&component("other"))).is_none());
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(dir.join(MANIFEST)).unwrap()).unwrap();
    assert_eq!(manifest.wasmtime, WASMTIME_VERSION);
    assert_eq!(manifest.artifacts[0].name, "builtin:policy");
    // Nothing to compile the second time; a plug-in no longer named loses its artifact.
    let again = write(&dir, &engine, &plugins()[..1]).expect("written");
    assert!(again.compiled.is_empty());
    assert_eq!(again.kept, ["builtin:policy"]);
    assert_eq!(again.removed.len(), 1);
}

#[test]
fn a_changed_artifact_is_refused_by_its_hash() {
    let (_tmp, dir) = written_dir();
    let source = sha(&component("policy"));
    let file = dir.join(format!("{}.cwasm", hex::encode(source)));
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let engine = engine(false);
    let pre = Precompiled::open(&dir, &engine).expect("the manifest is fine");
    let err = pre.load(&engine, &source).expect("listed").unwrap_err();
    assert!(matches!(err, Unusable::Hash { .. }), "{err}");
    // And write() compiles it again rather than keeping it.
    let again = write(&dir, &engine, &plugins()).expect("written");
    assert_eq!(again.compiled, ["builtin:policy"]);
}

#[test]
fn another_engine_or_version_is_refused_before_any_artifact_is_read() {
    let (_tmp, dir) = written_dir();
    let err = Precompiled::open(&dir, &engine(true)).unwrap_err();
    assert!(matches!(err, Unusable::Engine { .. }), "{err}");
    assert!(err.to_string().contains("hypervisor precompile"), "{err}");

    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace(WASMTIME_VERSION, "1.0.0")).unwrap();
    let err = Precompiled::open(&dir, &engine(false)).unwrap_err();
    assert!(matches!(err, Unusable::Version { .. }), "{err}");
}

#[test]
fn a_manifest_cannot_point_outside_its_directory() {
    let (_tmp, dir) = written_dir();
    let path = dir.join(MANIFEST);
    let mut manifest: Manifest = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest.artifacts[0].file = "../elsewhere.cwasm".into();
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let err = Precompiled::open(&dir, &engine(false)).unwrap_err();
    assert!(matches!(err, Unusable::Malformed { .. }), "{err}");
}

#[test]
fn files_others_can_write_are_refused() {
    let (_tmp, dir) = written_dir();
    let engine = engine(false);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = Precompiled::open(&dir, &engine).unwrap_err();
    assert!(matches!(err, Unusable::Permissions { .. }), "{err}");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();

    let source = sha(&component("payments"));
    let file = dir.join(format!("{}.cwasm", hex::encode(source)));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).unwrap();
    let pre = Precompiled::open(&dir, &engine).expect("the manifest is fine");
    let err = pre.load(&engine, &source).expect("listed").unwrap_err();
    assert!(
        err.to_string().contains("writable by group or others"),
        "{err}"
    );
}

#[test]
fn no_manifest_is_absent_and_garbage_is_malformed() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Precompiled::open(tmp.path(), &engine(false)).unwrap_err();
    assert!(matches!(err, Unusable::Absent(_)), "{err}");
    std::fs::write(tmp.path().join(MANIFEST), b"{\"format\": 1").unwrap();
    let err = Precompiled::open(tmp.path(), &engine(false)).unwrap_err();
    assert!(matches!(err, Unusable::Malformed { .. }), "{err}");
}

/// A FIFO in place of the manifest is refused at once (not a regular file) instead of holding
/// the start until something writes to it.
#[test]
fn a_fifo_in_place_of_the_manifest_is_refused_without_waiting() {
    let (_tmp, dir) = written_dir();
    let manifest = dir.join(MANIFEST);
    std::fs::remove_file(&manifest).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&manifest)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    std::fs::set_permissions(&manifest, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (done, wait) = std::sync::mpsc::channel();
    let engine = engine(false);
    std::thread::spawn(move || {
        let _ = done.send(Precompiled::open(&dir, &engine).map(|_| ()));
    });
    let err = wait
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("answered without waiting for a writer")
        .unwrap_err();
    assert!(matches!(err, Unusable::Permissions { .. }), "{err}");
}

/// A core module exporting `f(x) = popcnt(x)`: code whose machine instructions depend on the
/// CPU features compiled for.
const POPCNT: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, // type: (i32) -> i32
    0x03, 0x02, 0x01, 0x00, // one function of that type
    0x07, 0x05, 0x01, 0x01, b'f', 0x00, 0x00, // export "f"
    0x0a, 0x07, 0x01, 0x05, 0x00, 0x20, 0x00, 0x69, 0x0b, // local.get 0, i32.popcnt
];

/// What `hypervisor precompile` writes (compiled for [`super::super::PRECOMPILED_CPU`], not
/// for this machine's CPU) is checked against that engine's fingerprint and loads into, and
/// runs in, an engine compiled for this machine; and that fingerprint is the same on every
/// x86-64 machine (a value here, as a test vector is): before, artifacts were compiled for
/// the compiling machine's own CPU features, and the fingerprint had them, so the image's
/// artifacts differed from one build machine to another and were refused on any host whose
/// CPU differed from the build machine's.
#[test]
fn artifacts_are_compiled_for_a_fixed_cpu_baseline_and_load_on_this_cpu() {
    use super::super::settings;
    let config = crate::config::Config::default();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pre");
    let baseline = settings::precompile_engine(&config).expect("the baseline engine");
    write(&dir, &baseline, &[("popcnt".into(), POPCNT.to_vec())]).expect("written");
    let pre = open_configured(Some(&dir), || settings::precompile_engine(&config))
        .expect("checked against the baseline engine");
    let native = wasmtime::Engine::new(&settings::code_generation(&config)).unwrap();
    let module = pre
        .load_module(&native, &sha(POPCNT))
        .expect("listed")
        .expect("loads into an engine compiled for this CPU");
    let mut store = wasmtime::Store::new(&native, ());
    store.set_epoch_deadline(1 << 30);
    if config.engine.fuel {
        store.set_fuel(1 << 20).unwrap();
    }
    let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
    let f = instance
        .get_typed_func::<i32, i32>(&mut store, "f")
        .unwrap();
    assert_eq!(f.call(&mut store, 0xff).unwrap(), 8);
    if cfg!(target_arch = "x86_64") {
        let manifest: Manifest =
            serde_json::from_slice(&std::fs::read(dir.join(MANIFEST)).unwrap()).unwrap();
        assert_eq!(manifest.engine, BASELINE_FINGERPRINT);
    }
}

/// The default configuration's engine fingerprint for [`super::super::PRECOMPILED_CPU`] on
/// x86-64 with this wasmtime: changes with wasmtime's version or the engine's settings, never
/// with the machine.
const BASELINE_FINGERPRINT: &str =
    "ba9802d933dd807431201eec2b9bb11ead9d4aa9170db16d3eb71ad568715749";

/// The fingerprint of an engine compiled for this machine's CPU is not the baseline's (this
/// machine has features beyond x86-64-v3), so the value above is not this machine's.
#[test]
fn the_baseline_fingerprint_is_not_this_machines() {
    let config = crate::config::Config::default();
    let native = wasmtime::Engine::new(&super::super::settings::code_generation(&config)).unwrap();
    if cfg!(target_arch = "x86_64") && std::arch::is_x86_feature_detected!("avx512f") {
        assert_ne!(
            hex::encode(engine_fingerprint(&native)),
            BASELINE_FINGERPRINT
        );
    }
}
