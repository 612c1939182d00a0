//! Finds the JavaScript libraries the runtime builds in (js-deps/package.json, installed by
//! `npm ci` in js-deps/, which scripts/build-programs.sh runs): web-streams-polyfill's ponyfill
//! build, evaluated at set-up under src/web/streams.js.

use std::path::Path;

fn main() {
    let deps = Path::new(env!("CARGO_MANIFEST_DIR")).join("js-deps");
    let ponyfill = deps.join("node_modules/web-streams-polyfill/dist/ponyfill.js");
    println!("cargo::rerun-if-changed={}", ponyfill.display());
    println!(
        "cargo::rerun-if-changed={}",
        deps.join("package-lock.json").display()
    );
    if !ponyfill.is_file() {
        panic!(
            "{} is missing: run `npm ci` in {} (scripts/build-programs.sh does)",
            ponyfill.display(),
            deps.display()
        );
    }
    println!(
        "cargo::rustc-env=HYPERVISOR_STREAMS_PONYFILL={}",
        ponyfill.display()
    );
}
