//! `hypervisor precompile`: the plug-ins the configuration names, compiled ahead of time for
//! this binary's engine settings (see [`crate::engine::precompiled`]).

use std::path::PathBuf;
use std::time::Instant;

use crate::config::Config;
use crate::engine::precompiled;

/// Compiles the policy, Python runtime and payments plug-ins named by `config`, and the
/// JavaScript runtime's instrumented form and shared code, into `out`, or
/// `config.precompiled_dir()`; prints what it did.
///
/// # Errors
/// No directory to write to, an unreadable plug-in, a component that does not compile, or a
/// file that cannot be written.
pub async fn run(config: &Config, out: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = out.or_else(|| config.precompiled_dir()).ok_or_else(|| {
        anyhow::anyhow!("precompiled_dir is \"\" (off): name a directory with --out")
    })?;
    // Whether or not each role is enabled: one turned on later starts fast too.
    let mut plugins = Vec::new();
    for (key, path) in [
        ("policy.component", &config.policy.component),
        ("python.component", &config.python.component),
        ("payments.component", &config.payments.component),
    ] {
        let bytes = crate::plugins::builtin::read(path)
            .await
            .map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
        plugins.push((path.display().to_string(), bytes));
    }
    // The JavaScript runtime as the first set-up needs it: instrumented, and its shared code.
    let runtime = &config.javascript.component;
    let bytes = crate::plugins::builtin::read(runtime)
        .await
        .map_err(|e| anyhow::anyhow!("javascript.component: {e}"))?;
    let parts =
        tokio::task::spawn_blocking(move || crate::engine::js_runtime_precompiled_parts(&bytes))
            .await?
            .map_err(|e| anyhow::anyhow!("javascript.component: {e}"))?;
    for (what, bytes) in parts {
        plugins.push((format!("{} ({what})", runtime.display()), bytes));
    }
    let engine = crate::engine::precompile_engine(config)?;
    let started = Instant::now();
    let target = dir.clone();
    let written =
        tokio::task::spawn_blocking(move || precompiled::write(&target, &engine, &plugins))
            .await?
            .map_err(|e| anyhow::anyhow!(e))?;
    for name in &written.compiled {
        println!("compiled  {name}");
    }
    for name in &written.kept {
        println!("kept      {name} (already compiled for this engine)");
    }
    for file in &written.removed {
        println!("removed   {file} (no plug-in names it)");
    }
    println!(
        "{} in {:.1} s (wasmtime {}, {}, CPU features {})",
        dir.display(),
        started.elapsed().as_secs_f64(),
        precompiled::WASMTIME_VERSION,
        precompiled::TARGET,
        crate::engine::PRECOMPILED_CPU
    );
    Ok(())
}
