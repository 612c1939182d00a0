//! The `hypervisor-client` command line: its arguments, and one module per group of
//! subcommands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use hypervisor_client::{Client, Trust};

mod a2a;
pub mod agent;
mod args;
mod deploy;
mod exec;
mod listing;
mod logs;
mod mcp;
mod new;
mod pay;
mod policy;
mod program;
mod records;
mod release;
mod report;
mod setup;
pub mod state;
mod verify;
mod when;

pub use args::Cli;
use args::Command;

/// Runs the parsed command line and returns the process's exit code.
pub fn run(mut cli: Cli) -> anyhow::Result<ExitCode> {
    cli.server = hypervisor_client::check_server_url(&cli.server)?;
    let client = plain_client(&cli)?;
    let key_path = cli.key.clone().unwrap_or_else(default_key_path);
    if cli.key.is_some() && !key_path.exists() && !matches!(cli.command, Command::Keygen { .. }) {
        // Said, not silent: a wallet key meant for `--pay-with` or `--wallet-key` given as
        // `--key` would otherwise become a new identity unnoticed.
        eprintln!(
            "note: {} does not exist: a new client key (your identity as owner and caller, \
             P-256) is created there on first use",
            key_path.display()
        );
    }
    match cli.command {
        Command::Agent { command } => {
            // A key named on the command line (or in the environment) is the caller's identity.
            let caller_key_given = cli.key.is_some();
            agent::run(&client, &key_path, caller_key_given, cli.json, command)
        }
        Command::Search { query, limit } => listing::search(&client, cli.json, &query, limit),
        Command::Mcp { command } => mcp::run(&client, cli.json, command),
        Command::A2a { command } => a2a::run(&client, cli.json, command),
        Command::Ping => setup::ping(&client, cli.json),
        Command::New(args) => new::run(args, cli.json),
        Command::Keygen { wallet: None } => setup::keygen(&key_path, cli.json),
        Command::Keygen {
            wallet: Some(wallet),
        } => setup::wallet_keygen(&wallet, cli.json),
        Command::Session => setup::session(&client, &key_path, cli.json),
        Command::Attestation { policy } => {
            let client = verifying_client(&cli.server, &policy, cli.no_channel_binding, client)?;
            verify::attestation(&client, &policy, cli.json)
        }
        Command::Verify { proof, policy } => verify::proof(&proof, &policy, cli.json),
        Command::VerifyEvidence {
            tdx_quote,
            snp_report,
            policy,
        } => verify::evidence(tdx_quote, snp_report, &policy, cli.json),
        Command::Executions(args) => records::run(&client, &key_path, cli.json, args),
        Command::Measure { files } => verify::measure(&files, cli.json),
        Command::ReferenceValues {
            name,
            app_compose: Some(app_compose),
            build,
            host_binary,
            os_measurements,
            os,
        } => release::reference_values(&release::ReleaseArgs {
            name: &name,
            app_compose: &app_compose,
            build: build.as_deref(),
            host_binary: host_binary.as_deref(),
            os_measurements: &os_measurements,
            os: &os,
        }),
        Command::ReferenceValues { name, .. } => verify::reference_values(&client, &name),
        Command::Exec(args) => {
            let client = if args.verifiable {
                verifying_client(&cli.server, &args.policy, cli.no_channel_binding, client)?
            } else {
                client
            };
            exec::run(&client, &key_path, cli.json, *args)
        }
    }
}

/// The client of a command that does not verify the host: an `https://` server's certificate
/// is checked against the web's roots, `--cacert`'s authorities, or (`--insecure`, warned) not
/// at all.
fn plain_client(cli: &Cli) -> anyhow::Result<Client> {
    let trust = match (&cli.cacert, cli.insecure) {
        (Some(path), _) => {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            Trust::from_pem(&pem).with_context(|| format!("--cacert {}", path.display()))?
        }
        (None, true) => {
            if hypervisor_client::is_https(&cli.server) {
                eprintln!(
                    "WARNING: --insecure: the certificate of {} is NOT checked; anyone on the \
                     way can read and change this traffic",
                    cli.server
                );
            }
            Trust::Insecure
        }
        (None, false) => Trust::WebRoots,
    };
    Ok(Client::with_trust(&cli.server, &trust))
}

/// The client of a command that verifies the host: over `https://`, every connection is bound
/// to the attested key under the command's policy (unless `--no-channel-binding`, warned).
fn verifying_client(
    server: &str,
    policy: &policy::PolicyArgs,
    no_channel_binding: bool,
    plain: Client,
) -> anyhow::Result<Client> {
    if !hypervisor_client::is_https(server) {
        return Ok(plain);
    }
    if no_channel_binding {
        eprintln!(
            "WARNING: --no-channel-binding: the TLS channel is NOT bound to the attested host; \
             a TLS-terminating proxy in front of it would go unnoticed"
        );
        return Ok(plain);
    }
    Ok(Client::with_channel_binding(server, policy.policy()?))
}

fn default_key_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("wasm-hypervisor").join("client.key")
}
