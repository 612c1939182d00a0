//! `hypervisor run PROGRAM [ARGS]…`: one program run here, without a server, the way the host
//! runs a client's program (`POST /test/execute/wasm`): the same engine settings, the same
//! limits (resolved from the configuration as for a request), the same imports (a client
//! program's capabilities: arguments and standard input, `hypervisor:host/crypto`, and
//! `hypervisor:host/attestation` from the configured provider). Nothing is stored, encrypted
//! or recorded: it is for trying a program quickly.

use std::io::{Read, Write};
use std::sync::Arc;

use hypervisor_protocol::wire::{ExitStatus, Limits};

use crate::attestation::Attestor;
use crate::config::{Config, RunArgs};
use crate::crypto::plaintext::Plaintext;
use crate::engine::{Capabilities, CommandInput, Engine, Role};
use crate::pipeline::{ARGV0, resolve_limits};

/// Runs `args.program` under `config` and returns the exit status to end with: the
/// program's own (0–255), or 124 time limit, 125 trap, 137 memory limit, 152 fuel.
///
/// # Errors
/// An unreadable or invalid program, limits above the configured maxima, or an engine that
/// cannot start.
pub async fn run(mut config: Config, args: RunArgs) -> anyhow::Result<u8> {
    if args.fuel_limit.is_some() {
        config.engine.fuel = true;
    }
    config.validate()?;
    let program = std::fs::read(&args.program)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", args.program.display()))?;
    let stdin = match &args.stdin {
        None => Vec::new(),
        Some(path) if path.as_os_str() == "-" => {
            let mut input = Vec::new();
            std::io::stdin().read_to_end(&mut input)?;
            input
        }
        Some(path) => {
            std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?
        }
    };
    let host_measurement = super::attestation::host_measurement(&config.attestation)?;
    let provider = super::attestation::attestation_provider(&config.attestation, host_measurement)?;
    let attestor = Arc::new(Attestor::new(provider, host_measurement));
    attestor.rotate()?;
    // No disk caches: nothing of a local run is kept.
    let engine = Engine::new(&config, None, None, attestor)?;
    let hash = crate::crypto::primitives::sha256(&program);
    let prepared = engine
        .prepare_command(hash, Arc::new(Plaintext::new(program)))
        .await
        .map_err(|e| match e {
            crate::engine::EngineError::NotACommand => anyhow::anyhow!(
                "{} is not a command (it does not export wasi:cli/run): a handler or wasi:http \
                 agent runs deployed (`hypervisor-client agent deploy`, then `agent invoke`)",
                args.program.display()
            ),
            other => other.into(),
        })?;
    let asked = Limits {
        time_ms: args.time_ms,
        memory_bytes: args.memory_bytes,
        fuel: args.fuel_limit,
    };
    let limits = resolve_limits(Some(&asked), &config.limits, engine.fuel_enabled())?;
    let mut argv = vec![ARGV0.to_string()];
    argv.extend(args.args);
    let input = CommandInput {
        args: argv,
        stdin: stdin.into(),
        limits,
    };
    let outcome = engine
        .run_command(&Capabilities::of(Role::ClientProgram), &prepared, input)
        .await?;
    std::io::stdout().write_all(&outcome.stdout)?;
    std::io::stdout().flush()?;
    std::io::stderr().write_all(&outcome.stderr)?;
    let truncated = if outcome.stdout_truncated || outcome.stderr_truncated {
        ", output truncated"
    } else {
        ""
    };
    let code = outcome.status.process_code(outcome.exit_code);
    let ended = match outcome.status {
        ExitStatus::Exited => format!("exit {code}"),
        other => serde_json::to_value(other)?
            .as_str()
            .unwrap_or("stopped")
            .to_string(),
    };
    let fuel = outcome
        .fuel_consumed
        .map_or_else(String::new, |f| format!(" · {f} fuel"));
    eprintln!(
        "[{ended} · {:.1} ms{fuel}{truncated} · run locally: not encrypted, not recorded]",
        outcome.duration.as_secs_f64() * 1000.0
    );
    if let Some(trap) = &outcome.trap {
        eprintln!("trap: {trap}");
    }
    Ok(code)
}
