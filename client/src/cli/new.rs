//! `hypervisor-client new TEMPLATE NAME`: a new agent's project from a template, as `spin new`
//! and `wash new` make them: a Rust command, a Rust `wasi:http` agent, a Rust or Python handler
//! agent (with the host's WIT contract), or a JavaScript or TypeScript handler. Each comes with
//! a README saying how to build, run, deploy and invoke it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

/// The templates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Template {
    /// A command (`wasm32-wasip2`): arguments and standard input in, output out (Rust).
    RustCli,
    /// A `wasi:http/proxy` agent, served under `/agents/NAME/` (Rust).
    RustHttp,
    /// A handler agent: a JSON event in, a JSON result out (Rust, wit-bindgen).
    RustHandler,
    /// A handler agent in Python (componentize-py).
    PythonHandler,
    /// A handler agent in TypeScript (no build step).
    TsHandler,
    /// A handler agent in JavaScript (no build step).
    JsHandler,
}

// The arguments of `new` (a plain comment: a doc comment would replace the subcommand's help).
#[derive(Args)]
pub struct NewArgs {
    /// What to make.
    pub template: Template,
    /// The agent's name (a-z, 0-9, '-'; also the package's).
    pub name: String,
    /// Where (default: ./NAME); it must not exist, or be empty.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The host's WIT contract, as the handler templates need it (the package's files that the
/// `handler-agent` world uses).
const HANDLER_WIT: &[(&str, &str)] = &[
    ("wit/handler.wit", include_str!("../../../wit/handler.wit")),
    ("wit/crypto.wit", include_str!("../../../wit/crypto.wit")),
    (
        "wit/attestation.wit",
        include_str!("../../../wit/attestation.wit"),
    ),
];

/// A template's files: path in the project, content with `{{name}}` and `{{crate}}`.
fn files(template: Template) -> Vec<(&'static str, &'static str)> {
    macro_rules! file {
        ($dir:literal, $path:literal) => {
            (
                $path,
                include_str!(concat!("../../templates/", $dir, "/", $path)),
            )
        };
    }
    let mut files = match template {
        Template::RustCli => vec![
            file!("rust-cli", "Cargo.toml"),
            file!("rust-cli", "src/main.rs"),
            file!("rust-cli", "README.md"),
        ],
        Template::RustHttp => vec![
            file!("rust-http", "Cargo.toml"),
            file!("rust-http", "src/lib.rs"),
            file!("rust-http", "README.md"),
        ],
        Template::RustHandler => vec![
            file!("rust-handler", "Cargo.toml"),
            file!("rust-handler", "src/lib.rs"),
            file!("rust-handler", "README.md"),
            file!("rust-handler", "input-schema.json"),
        ],
        Template::PythonHandler => vec![
            file!("python-handler", "app.py"),
            file!("python-handler", "README.md"),
        ],
        Template::TsHandler => vec![
            file!("ts-handler", "main.ts"),
            file!("ts-handler", "lib/greeting.ts"),
            file!("ts-handler", "README.md"),
        ],
        Template::JsHandler => vec![
            file!("js-handler", "main.js"),
            file!("js-handler", "README.md"),
        ],
    };
    if matches!(template, Template::RustHandler | Template::PythonHandler) {
        files.extend_from_slice(HANDLER_WIT);
    }
    files
}

/// Runs `new`.
pub fn run(args: NewArgs, json: bool) -> anyhow::Result<ExitCode> {
    if !hypervisor_protocol::agents::valid_name(&args.name) {
        anyhow::bail!(
            "{:?} is not an agent name: 1-63 of a-z, 0-9 and '-', not starting with '-'",
            args.name
        );
    }
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists()
        && std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        anyhow::bail!(
            "{} exists and is not empty: nothing was written (pick another --dir)",
            dir.display()
        );
    }
    // A cdylib's file is named after the crate, with '_' for '-'.
    let crate_name = args.name.replace('-', "_");
    let mut written = Vec::new();
    for (path, content) in files(args.template) {
        let text = content
            .replace("{{name}}", &args.name)
            .replace("{{crate}}", &crate_name);
        let target = dir.join(path);
        write(&target, &text)?;
        written.push(path);
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"dir": dir, "template": format!("{:?}", args.template), "files": written})
        );
    } else {
        println!("created {} ({} files):", dir.display(), written.len());
        for path in &written {
            println!("  {path}");
        }
        println!("next: {}", dir.join("README.md").display());
    }
    Ok(ExitCode::SUCCESS)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_has_a_readme_and_names_its_agent() {
        for template in Template::value_variants() {
            let files = files(*template);
            assert!(files.iter().any(|(p, _)| *p == "README.md"), "{template:?}");
            assert!(
                files.iter().any(|(_, c)| c.contains("{{name}}")),
                "{template:?}"
            );
        }
        let handler = files(Template::RustHandler);
        assert!(handler.iter().any(|(p, _)| *p == "wit/handler.wit"));
    }
}
