//! The engine's refusals as the default engine's codes.

use super::workspace::AGENT_DIR;
use crate::engine::SnapshotError;

/// What the engine printed when it refused the modules, as the default engine's codes: the
/// line after `Exception while evaluating top-level script` names the module, line and column.
pub(super) fn refusal(output: &str) -> Option<SnapshotError> {
    // The engine's report is the last thing a failed set-up prints: an earlier marker could
    // be the agent's own output.
    const MARKER: &str = "Exception while evaluating top-level script";
    let at = output.rfind(MARKER)?;
    let line = output[at + MARKER.len()..]
        .lines()
        .find(|l| !l.trim().is_empty())?
        .trim();
    // Paths are shown from the set-up's root, where the agent's modules are under `agent/`.
    let line = line
        .strip_prefix(&format!("{AGENT_DIR}/"))
        .unwrap_or(line)
        .to_owned();
    let code = if line.contains("SyntaxError") {
        "syntax_error"
    } else if let Some(at) = line.find("no_handler: ") {
        return Some(SnapshotError::Refused {
            code: "no_handler".into(),
            message: crate::engine::cap_text(
                line[at + "no_handler: ".len()..].to_owned(),
                crate::engine::TRAP_DETAIL_BYTES,
            ),
        });
    } else if line.contains("Error loading module") || line.contains("No such file") {
        "missing_module"
    } else {
        "module_threw"
    };
    Some(SnapshotError::Refused {
        code: code.into(),
        message: crate::engine::cap_text(line, crate::engine::TRAP_DETAIL_BYTES),
    })
}

/// The WASI preview 2 import a set-up trapped on: the engine reaches randomness, the
/// monotonic clock and the network through them, and only preview 1 is there while it loads
/// the modules (as under componentize-js's wizer).
pub(super) fn unavailable_at_load(e: &wasmtime::Error) -> Option<String> {
    let text = format!("{e:#}");
    let at = text.find("unknown import: `")? + "unknown import: `".len();
    let name = &text[at..];
    let name = &name[..name.find('`')?];
    name.starts_with("wasi:").then(|| format!("`{name}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engines_messages_become_the_default_engines_codes() {
        let out = "Exception while evaluating top-level script\nagent/main.js:2:13 SyntaxError: \
                   expected expression, got ';':\nmain.js:2:13   return 1 +;\n";
        let Some(SnapshotError::Refused { code, message }) = refusal(out) else {
            panic!("refused");
        };
        assert_eq!(code, "syntax_error");
        assert_eq!(
            message,
            "main.js:2:13 SyntaxError: expected expression, got ';':"
        );
        let out = "Exception while evaluating top-level script\nhandler.js:3:48 Error: \
                   no_handler: the main module exports no function `handler`\n";
        let Some(SnapshotError::Refused { code, message }) = refusal(out) else {
            panic!("refused");
        };
        assert_eq!(code, "no_handler");
        assert_eq!(message, "the main module exports no function `handler`");
        assert!(refusal("something else\n").is_none());
    }
}
