//! Reading a program file for `exec` and `agent deploy`, and telling a newcomer what a file that
//! is not a program is (a Python script, JavaScript, WebAssembly text) before it is sent.

use std::path::Path;

use anyhow::Context as _;

/// What the command does with the file, for the hint.
#[derive(Clone, Copy)]
pub enum Use {
    /// `exec`: a Python script runs with `--python`.
    Exec,
    /// `agent deploy`: JavaScript deploys with `--js`.
    Deploy,
}

/// Reads `path`: a WebAssembly binary (`\0asm`) or an ELF file; anything else is refused here,
/// with what it looks like and the command that takes it.
pub fn read(path: &Path, usage: Use) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    check(path, &bytes, usage)?;
    Ok(bytes)
}

fn check(path: &Path, bytes: &[u8], usage: Use) -> anyhow::Result<()> {
    if bytes.starts_with(b"\0asm") || bytes.starts_with(b"\x7fELF") {
        return Ok(());
    }
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let text = std::str::from_utf8(&bytes[..bytes.len().min(4096)]).ok();
    let starts = |prefixes: &[&str]| {
        text.is_some_and(|t| {
            t.lines()
                .map(str::trim_start)
                .filter(|l| !l.is_empty())
                .take(20)
                .any(|l| prefixes.iter().any(|p| l.starts_with(p)))
        })
    };
    let hint = if extension == "py" || starts(&["#!/usr/bin/env python", "def ", "import "]) {
        match usage {
            Use::Exec => "a Python script? run it with `exec --python FILE`".to_string(),
            Use::Deploy => "a Python handler? build it into a component with componentize-py \
                            (guests/python-state shows how), then deploy the .wasm"
                .to_string(),
        }
    } else if matches!(extension.as_str(), "js" | "mjs" | "ts" | "mts")
        || starts(&["export ", "function ", "const "])
    {
        "JavaScript or TypeScript? deploy it as an agent: `agent deploy NAME --js FILE`".to_string()
    } else if extension == "wat" || starts(&["(module", "(component"]) {
        "WebAssembly text? compile it to a binary first (`wasm-tools parse FILE -o FILE.wasm`)"
            .to_string()
    } else {
        "the host runs WebAssembly components (cargo build --target wasm32-wasip2) and RISC-V ELF \
         files (guests/riscv-sdk)"
            .to_string()
    };
    let head: String = bytes
        .iter()
        .take(8)
        .map(|b| {
            if b.is_ascii_graphic() || *b == b' ' {
                (*b as char).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect();
    anyhow::bail!(
        "{} is not a WebAssembly binary nor an ELF file (it starts with \"{head}\"): {hint}",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(name: &str, content: &[u8], usage: Use) -> String {
        check(Path::new(name), content, usage)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn programs_pass_and_other_files_get_a_hint() {
        assert!(check(Path::new("a.wasm"), b"\0asm\x0d\0\x01\0", Use::Exec).is_ok());
        assert!(check(Path::new("a.elf"), b"\x7fELF\x02\x01", Use::Deploy).is_ok());
        let py = why("stats.py", b"import statistics\nprint(1)\n", Use::Exec);
        assert!(py.contains("--python"), "{py}");
        assert!(py.contains("stats.py"), "{py}");
        let py = why("x", b"\n\ndef main(args):\n  pass\n", Use::Deploy);
        assert!(py.contains("componentize-py"), "{py}");
        let js = why("main.ts", b"export function handler() {}", Use::Deploy);
        assert!(js.contains("--js"), "{js}");
        let wat = why("m.wat", b"(module)", Use::Exec);
        assert!(wat.contains("wasm-tools"), "{wat}");
        let other = why("blob.bin", &[0xff, 0, 1, 2], Use::Exec);
        assert!(other.contains("\\xff"), "{other}");
        assert!(other.contains("wasm32-wasip2"), "{other}");
        assert_eq!(other.lines().count(), 1, "{other}");
    }
}
