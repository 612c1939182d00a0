//! Embeds the default plug-in components in the binary when they have been built
//! (`scripts/build-programs.sh` puts them in `target/wasm/`), so that a packaged `hypervisor` runs
//! from any directory and its measurement covers the plug-ins it runs by default. Without them
//! (a plain `cargo build` before the WebAssembly build), the binary has no built-in plug-ins
//! and names the files to configure instead.

use std::path::Path;

/// (file in `target/wasm/`, environment variable carrying its path, cfg set when embedded).
const PLUGINS: &[(&str, &str, &str)] = &[
    (
        "policy-python.wasm",
        "HYPERVISOR_BUILTIN_POLICY_PYTHON",
        "builtin_policy_python",
    ),
    (
        "payments.wasm",
        "HYPERVISOR_BUILTIN_PAYMENTS",
        "builtin_payments",
    ),
    (
        "js-runtime.wasm",
        "HYPERVISOR_BUILTIN_JS_RUNTIME",
        "builtin_js_runtime",
    ),
    (
        "starlingmonkey.wasm",
        "HYPERVISOR_BUILTIN_STARLINGMONKEY",
        "builtin_starlingmonkey",
    ),
];

fn main() {
    wasmtime_version();
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm");
    // A change of the directory (a component built or rebuilt) embeds it again.
    println!("cargo::rerun-if-changed={}", wasm.display());
    for (file, env, cfg) in PLUGINS {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        let path = wasm.join(file);
        if path.is_file() {
            // (Only for a file that exists: a missing one would rerun this script, and rebuild
            // the host, on every build; the directory above catches its creation.)
            println!("cargo::rerun-if-changed={}", path.display());
            println!("cargo::rustc-env={env}={}", path.display());
            println!("cargo::rustc-cfg={cfg}");
        } else {
            println!(
                "cargo::warning=no {} to embed: run scripts/build-programs.sh first, or configure the plug-in's file",
                path.display()
            );
        }
    }
}

/// The wasmtime version this binary links (from Cargo.lock) and the target it is built for,
/// which the precompiled plug-ins' manifest records (`src/engine/precompiled.rs`).
fn wasmtime_version() {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    println!("cargo::rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let version = text
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"wasmtime\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo::rustc-env=HYPERVISOR_WASMTIME_VERSION={version}");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo::rustc-env=HYPERVISOR_TARGET={target}");
}
