//! The components the benchmarks run, as `scripts/build-programs.sh` builds them into
//! `target/wasm/`, and copies of them with a hash of their own.

use std::path::PathBuf;

/// `target/wasm/<name>.wasm`.
pub fn path(name: &str) -> PathBuf {
    super::target().join("wasm").join(format!("{name}.wasm"))
}

/// The bytes of `target/wasm/<name>.wasm`; panics with a hint when it has not been built.
pub fn read(name: &str) -> Vec<u8> {
    let path = path(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/build-programs.sh)", path.display()))
}

/// `component` with a custom section named `section` carrying `tag` appended: the same code, a
/// different hash (so a new compilation and cache entry).
pub fn with_custom_section(component: &[u8], section: &str, tag: &str) -> Vec<u8> {
    let mut payload = Vec::new();
    leb128(section.len(), &mut payload);
    payload.extend_from_slice(section.as_bytes());
    payload.extend_from_slice(tag.as_bytes());
    let mut out = component.to_vec();
    out.push(0); // custom section
    leb128(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

/// Appends `v` as unsigned LEB128.
fn leb128(mut v: usize, out: &mut Vec<u8>) {
    loop {
        let byte = u8::try_from(v & 0x7f).unwrap_or(0);
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
