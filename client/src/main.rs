//! `hypervisor-client`: talk to a WASM Hypervisor from the command line.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hypervisor_client::{Client, ExecuteInput, Execution, keyfile};
use hypervisor_protocol::wire::{ExitStatus, Limits};

#[derive(Parser)]
#[command(
    name = "hypervisor-client",
    version,
    about = "Client for WASM Hypervisor: encrypted execution of WebAssembly components"
)]
struct Cli {
    /// Server base URL.
    #[arg(
        long,
        env = "HYPERVISOR_URL",
        default_value = "http://127.0.0.1:3000",
        global = true
    )]
    server: String,
    /// Private key file (created on first use). Default: $XDG_CONFIG_HOME/wasm-hypervisor/client.key.
    #[arg(long, env = "HYPERVISOR_CLIENT_KEY", global = true)]
    key: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check that the server answers.
    Ping,
    /// Create the key file if missing and print the public key.
    Keygen,
    /// Open a session and print its id and the server's session key.
    Session,
    /// Encrypt and execute a WebAssembly component, print its decrypted output.
    Exec {
        /// The component (.wasm).
        wasm: PathBuf,
        /// Arguments passed to the program (after argv[0]).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
        /// File to send as stdin (`-` for this process's stdin).
        #[arg(long)]
        stdin: Option<PathBuf>,
        /// Time limit to ask for, milliseconds.
        #[arg(long)]
        time_ms: Option<u64>,
        /// Memory limit to ask for, bytes.
        #[arg(long)]
        memory_bytes: Option<u64>,
        /// Fuel to ask for (the server must meter fuel).
        #[arg(long)]
        fuel: Option<u64>,
    },
}

fn default_key_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("wasm-hypervisor").join("client.key")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hypervisor-client: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let client = Client::new(&cli.server);
    let key_path = cli.key.clone().unwrap_or_else(default_key_path);
    match cli.command {
        Command::Ping => {
            let pong = client.ping()?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"server": client.base_url(), "answer": pong})
                );
            } else {
                println!("{pong}");
            }
        }
        Command::Keygen => {
            let (key, created) = keyfile::load_or_create(&key_path)?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"key_file": key_path, "created": created, "public_key": key.public_key().to_hex()})
                );
            } else {
                eprintln!(
                    "{} {}",
                    if created { "created" } else { "using" },
                    key_path.display()
                );
                println!("{}", key.public_key().to_hex());
            }
        }
        Command::Session => {
            let (key, _) = keyfile::load_or_create(&key_path)?;
            let s = client.create_session(&key)?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"session_id": s.id, "session_pubkey": s.server_public.to_hex(), "expires_in_seconds": s.expires_in_seconds})
                );
            } else {
                println!("session {} (expires in {} s)", s.id, s.expires_in_seconds);
                println!("server key {}", s.server_public.to_hex());
            }
        }
        Command::Exec {
            wasm,
            args,
            stdin,
            time_ms,
            memory_bytes,
            fuel,
        } => {
            let (key, _) = keyfile::load_or_create(&key_path)?;
            let program =
                std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
            let stdin_bytes = match &stdin {
                Some(p) if p.as_os_str() == "-" => {
                    let mut b = Vec::new();
                    std::io::stdin().read_to_end(&mut b)?;
                    Some(b)
                }
                Some(p) => {
                    Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)
                }
                None => None,
            };
            let mut input = ExecuteInput::new(&program).args(&args);
            if let Some(s) = &stdin_bytes {
                input = input.stdin(s);
            }
            if time_ms.is_some() || memory_bytes.is_some() || fuel.is_some() {
                input = input.limits(Limits {
                    time_ms,
                    memory_bytes,
                    fuel,
                });
            }
            let session = client.create_session(&key)?;
            let run = client.execute(&session, &input)?;
            return report(&run, session.id, cli.json);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints an execution and chooses the exit code: the guest's own, or 124 (time limit),
/// 125 (trap), 137 (memory), 152 (fuel).
fn report(run: &Execution, session: uuid::Uuid, json: bool) -> anyhow::Result<ExitCode> {
    let stdout = run.stdout()?;
    let stderr = run.stderr()?;
    let r = &run.result;
    let code: u8 = match r.status {
        ExitStatus::Exited => u8::try_from(r.exit_code.unwrap_or(0).clamp(0, 255)).unwrap_or(1),
        ExitStatus::TimeLimitExceeded => 124,
        ExitStatus::Trapped => 125,
        ExitStatus::MemoryLimitExceeded => 137,
        ExitStatus::FuelExhausted => 152,
    };
    if json {
        let doc = serde_json::json!({
            "session_id": session,
            "status": r.status,
            "exit_code": r.exit_code,
            "stdout": String::from_utf8_lossy(&stdout),
            "stderr": String::from_utf8_lossy(&stderr),
            "stdout_truncated": r.stdout_truncated,
            "stderr_truncated": r.stderr_truncated,
            "duration_us": r.duration_us,
            "trap": r.trap,
            "error": run.stopped.as_ref().map(|e| serde_json::json!({"code": e.code, "message": e.message})),
            "result_commitment": hex::encode(run.commitment),
            "commitment_verified": true,
        });
        println!("{doc}");
    } else {
        std::io::stdout().write_all(&stdout)?;
        std::io::stderr().write_all(&stderr)?;
        let mut summary = match r.status {
            ExitStatus::Exited => format!("exit {}", r.exit_code.unwrap_or(0)),
            other => format!(
                "{} ({})",
                serde_json::to_value(other)?.as_str().unwrap_or("stopped"),
                run.stopped
                    .as_ref()
                    .map(|e| e.message.as_str())
                    .unwrap_or("")
            ),
        };
        if r.stdout_truncated || r.stderr_truncated {
            summary.push_str(", output truncated");
        }
        eprintln!(
            "[{summary} · {:.1} ms · commitment {} verified]",
            r.duration_us as f64 / 1000.0,
            &hex::encode(run.commitment)[..16]
        );
        if let Some(trap) = &r.trap {
            eprintln!("trap: {trap}");
        }
    }
    Ok(ExitCode::from(code))
}
