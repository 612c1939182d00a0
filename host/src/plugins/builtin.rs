//! The plug-in components built into the binary (see `host/build.rs`): the configuration names
//! them `builtin:<name>`, the default for the policy, the Python runtime and payments. Any
//! other value is a file path.

use std::path::Path;

/// How the configuration names a built-in plug-in (the defaults are
/// [`crate::config::DEFAULT_POLICY_PYTHON`] and [`crate::config::DEFAULT_PAYMENTS`]).
pub const PREFIX: &str = "builtin:";

/// The bytes of built-in plug-in `name` (without the prefix), if this binary has it.
fn embedded(name: &str) -> Option<&'static [u8]> {
    match name {
        #[cfg(builtin_policy_python)]
        "policy-python" => Some(include_bytes!(env!("HYPERVISOR_BUILTIN_POLICY_PYTHON"))),
        #[cfg(builtin_payments)]
        "payments" => Some(include_bytes!(env!("HYPERVISOR_BUILTIN_PAYMENTS"))),
        #[cfg(builtin_js_runtime)]
        "js-runtime" => Some(include_bytes!(env!("HYPERVISOR_BUILTIN_JS_RUNTIME"))),
        #[cfg(builtin_starlingmonkey)]
        "starlingmonkey" => Some(include_bytes!(env!("HYPERVISOR_BUILTIN_STARLINGMONKEY"))),
        _ => None,
    }
}

/// The component named by `path`: a built-in one, or the file's bytes.
///
/// # Errors
/// A message naming the plug-in: an unknown built-in, one this binary was built without, or
/// an unreadable file.
pub async fn read(path: &Path) -> Result<Vec<u8>, String> {
    if let Some(name) = path.to_str().and_then(|p| p.strip_prefix(PREFIX)) {
        return embedded(name).map(<[u8]>::to_vec).ok_or_else(|| {
            format!(
                "this binary has no built-in plug-in {name:?} (built-in: policy-python, \
                 payments, js-runtime and starlingmonkey, embedded when scripts/build-programs.sh ran before the build): name a \
                 component file instead"
            )
        });
    }
    tokio::fs::read(path)
        .await
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// [`read`], for a component kept as long as the process (the JavaScript runtime, which
/// wizer's view borrows): a built-in one as embedded, a file's bytes leaked once.
///
/// # Errors
/// As [`read`].
pub async fn read_static(path: &Path) -> Result<&'static [u8], String> {
    if let Some(bytes) = path
        .to_str()
        .and_then(|p| p.strip_prefix(PREFIX))
        .and_then(embedded)
    {
        return Ok(bytes);
    }
    // A file named by the operator: read once per start and kept until the process ends,
    // which is when the runtime stops being needed.
    Ok(read(path).await?.leak())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEFAULT_PAYMENTS, DEFAULT_POLICY_PYTHON};

    #[tokio::test]
    async fn builtins_are_named_and_files_are_read() {
        // The test build runs after scripts/build-programs.sh: both defaults are embedded.
        for builtin in [DEFAULT_POLICY_PYTHON, DEFAULT_PAYMENTS] {
            let bytes = read(Path::new(builtin)).await.unwrap();
            assert_eq!(&bytes[..4], b"\0asm", "{builtin} is a WebAssembly binary");
        }
        let unknown = read(Path::new("builtin:nope")).await.unwrap_err();
        assert!(
            unknown.contains("no built-in plug-in \"nope\""),
            "{unknown}"
        );
        let missing = read(Path::new("/nonexistent/x.wasm")).await.unwrap_err();
        assert!(
            missing.starts_with("cannot read /nonexistent/x.wasm"),
            "{missing}"
        );
    }
}
