//! The directory a StarlingMonkey set-up sees: the agent's modules, the generated bindings and
//! our two modules, on a tmpfs, removed when dropped.

use std::path::Path;

use crate::engine::EngineError;
use crate::engine::{JsModule, SnapshotError};

/// Where the agent's modules are, in the set-up's directory.
pub(super) const AGENT_DIR: &str = "agent";
/// Our handler module, beside it: the one the engine evaluates.
pub(super) const HANDLER: &str = "handler.js";
/// The generated bindings.
pub(super) const INITIALIZER: &str = "initializer.js";
/// Our globals (`Deno`, the state APIs' stand-ins), imported by the handler module before the
/// agent's main module, so that the agent's top-level code finds them.
const PRELUDE: &str = "prelude.js";
const PRELUDE_SOURCE: &str = include_str!("prelude.js");
/// Where set-ups happen: a tmpfs.
const SHM: &str = "/dev/shm";
/// The handler module: imports the agent's main module (`{MAIN}`, a JSON string) and exports
/// the world's `handler` interface, with the default engine's semantics (the event parsed from
/// JSON; `handler(event, context)` awaited; its result as `JSON.stringify` makes it; the same
/// error codes).
const HANDLER_SOURCE: &str = include_str!("handler.js");

/// A private directory with the agent's modules, the bindings and our modules, on the
/// tmpfs at `/dev/shm`, so that the source (perhaps sealed to the owner's session) never
/// reaches a disk; removed when dropped. Without that tmpfs the engine refuses.
pub(super) fn create(
    initializer: &str,
    main: &str,
    modules: &[JsModule],
) -> Result<tempfile::TempDir, SnapshotError> {
    let io = |e: std::io::Error| EngineError::Internal(format!("the set-up's directory: {e}"));
    let shm = Path::new(SHM);
    if !is_tmpfs(shm) {
        return Err(EngineError::Internal(format!(
            "StarlingMonkey sets agents up in a tmpfs at {SHM} (their source never touches a \
             disk), and this machine has none"
        ))
        .into());
    }
    let dir = tempfile::Builder::new()
        .prefix("hypervisor-js-")
        .tempdir_in(shm)
        .map_err(io)?;
    let agent = dir.path().join(AGENT_DIR);
    for module in modules {
        // Names are checked relative paths without `.` or `..` parts (pipeline/agents);
        // what a file system still refuses (a name that is also another's directory, a part
        // too long) is the deployer's to change.
        let path = agent.join(&module.name);
        path.parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, &module.source))
            .map_err(|e| SnapshotError::Refused {
                code: "bad_module_name".into(),
                message: format!("{}: cannot be a file here ({e})", module.name),
            })?;
    }
    // Imports may leave out `.js`, `.mjs` or `.ts`, as with the default engine: the engine
    // resolves paths as they are, so each such module is also written under its bare name
    // (the first extension in that order wins; a module imported both ways is evaluated
    // twice, once per path).
    let names: std::collections::HashSet<&str> = modules.iter().map(|m| m.name.as_str()).collect();
    let mut bare_written = std::collections::HashSet::new();
    for ext in [".js", ".mjs", ".ts"] {
        for module in modules {
            let Some(bare) = module.name.strip_suffix(ext) else {
                continue;
            };
            if bare.is_empty()
                || bare.ends_with('/')
                || names.contains(bare)
                || agent.join(bare).exists()
            {
                continue;
            }
            if bare_written.insert(bare) {
                std::fs::write(agent.join(bare), &module.source).map_err(io)?;
            }
        }
    }
    let main = serde_json::to_string(&format!("./{AGENT_DIR}/{main}"))
        .map_err(|e| EngineError::Internal(e.to_string()))?;
    std::fs::write(
        dir.path().join(HANDLER),
        HANDLER_SOURCE.replace("\"{MAIN}\"", &main),
    )
    .map_err(io)?;
    std::fs::write(dir.path().join(PRELUDE), PRELUDE_SOURCE).map_err(io)?;
    std::fs::write(dir.path().join(INITIALIZER), initializer).map_err(io)?;
    Ok(dir)
}

/// Whether `path` is the mount point of a tmpfs (`/proc/self/mounts`).
fn is_tmpfs(path: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    mounts.lines().any(|line| {
        let mut fields = line.split_whitespace();
        let (_, point, kind) = (fields.next(), fields.next(), fields.next());
        point.is_some_and(|p| Path::new(p) == path) && kind == Some("tmpfs")
    })
}
