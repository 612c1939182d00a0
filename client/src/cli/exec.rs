//! `hypervisor-client exec`: read the program and its inputs, open a (verifiable) session, run
//! it (paying with x402 when asked), optionally save a proof bundle, and report the result.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use clap::Args;
use hypervisor_client::proof::Proof;
use hypervisor_client::verify::VerifiedKey;
use hypervisor_client::{Client, ExecuteInput, Execution, Session, keyfile};
use hypervisor_protocol::wire::Limits;

use super::pay::PayArgs;
use super::policy::PolicyArgs;
use super::report::report;

// The arguments of `exec`. (A plain comment: a doc comment here would become the subcommand's
// help text, which comes from the `Command::Exec` variant.)
#[derive(Args)]
pub struct ExecArgs {
    /// The program: a WebAssembly component (.wasm) or a RISC-V ELF file; or the script (.py)
    /// with --python.
    pub wasm: PathBuf,
    /// What the program is: wasm or riscv (default: the host recognises it; given, a program
    /// of the other kind is refused).
    #[arg(long, value_name = "KIND")]
    pub program_kind: Option<super::args::ProgramKindArg>,
    /// Run the file as a Python script on the Python routes
    /// (/test/policy/unsafe/python, or .../attest with --verifiable).
    #[arg(long)]
    pub python: bool,
    #[command(flatten)]
    pub pay: PayArgs,
    /// Arguments passed to the program (after argv[0]). Options of this command are recognised
    /// wherever they stand; an argument that starts with `-` goes after `--`, which ends the
    /// options: `exec grep.wasm --stdin in.txt -- -c '^a'`.
    pub args: Vec<String>,
    /// File to send as stdin (`-` for this process's stdin).
    #[arg(long)]
    pub stdin: Option<PathBuf>,
    /// Time limit to ask for, milliseconds.
    #[arg(long)]
    pub time_ms: Option<u64>,
    /// Memory limit to ask for, bytes.
    #[arg(long)]
    pub memory_bytes: Option<u64>,
    /// Fuel to ask for (the server must meter fuel).
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Use the verifiable routes: verify the host's evidence chain before sending anything,
    /// and the signed receipt of the result.
    #[arg(long)]
    pub verifiable: bool,
    /// With --verifiable: write a proof bundle (evidence, receipt, plaintext result) that
    /// `hypervisor-client verify` can check offline.
    #[arg(long, value_name = "FILE")]
    pub save_proof: Option<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Runs `exec`.
pub fn run(
    client: &Client,
    key_path: &Path,
    json: bool,
    exec: ExecArgs,
) -> anyhow::Result<ExitCode> {
    let ExecArgs {
        wasm,
        program_kind,
        python,
        pay,
        args,
        stdin,
        time_ms,
        memory_bytes,
        fuel,
        verifiable,
        save_proof,
        policy,
    } = exec;
    let payment = pay.payer()?;
    let (key, _) = keyfile::load_or_create(key_path)?;
    let program = if python {
        std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?
    } else {
        super::program::read(&wasm, super::program::Use::Exec)?
    };
    let stdin_bytes = match &stdin {
        Some(p) if p.as_os_str() == "-" => {
            let mut b = Vec::new();
            std::io::stdin().read_to_end(&mut b)?;
            Some(b)
        }
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let mut input = ExecuteInput::new(&program).args(&args);
    if let Some(kind) = program_kind {
        input = input.program_kind(kind.into());
    }
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
    if !verifiable {
        if save_proof.is_some() {
            anyhow::bail!("--save-proof needs --verifiable");
        }
        // Behind a load balancer the run may land on another replica than the session: the
        // client then opens one there and sends again (`with_session`).
        let sessions = client.open_renewing(key, None)?;
        let run = client.with_session(&sessions, |session| {
            if let Some((wallet, limit)) = &payment {
                client.execute_paid(session, &input, python, wallet, limit)
            } else if python {
                client.execute_python(session, &input)
            } else {
                client.execute(session, &input)
            }
        })?;
        return report(&run, sessions.current().id, json);
    }
    if payment.is_some() && python {
        anyhow::bail!("the paid Python route is not verifiable: drop --verifiable");
    }
    let sessions = client.open_renewing(key, Some(policy.policy()?))?;
    let run = client.with_session(&sessions, |session| {
        if let Some((wallet, limit)) = &payment {
            client.execute_paid(session, &input, false, wallet, limit)
        } else if python {
            client.execute_python(session, &input)
        } else {
            client.execute_verifiable(session, &input)
        }
    })?;
    let session = sessions.current();
    if let Some((_, k)) = &session.verified
        && !json
    {
        print_key_to_stderr(k);
    }
    if let Some(path) = &save_proof {
        write_proof(path, &session, &run)?;
    }
    report(&run, session.id, json)
}

fn print_key_to_stderr(key: &VerifiedKey) {
    if key.simulated {
        eprintln!(
            "WARNING: the host's evidence is SIMULATED. It proves nothing about where code runs."
        );
    }
    eprintln!(
        "[verified {} evidence · signing key {}…]",
        key.tee,
        &key.signing_key.to_hex()[..16]
    );
}

fn write_proof(path: &std::path::Path, session: &Session, run: &Execution) -> anyhow::Result<()> {
    let (quote, _) = session
        .verified
        .as_ref()
        .context("not a verifiable session")?;
    let proof = Proof {
        version: 1,
        session_id: session.id,
        session_pubkey: session.server_public.to_hex(),
        client_pubkey: session.client_public.to_hex(),
        quote: quote.clone(),
        receipt: run.receipt.clone().context("no receipt")?,
        result: base64::engine::general_purpose::STANDARD.encode(&run.plaintext),
    };
    std::fs::write(path, serde_json::to_string_pretty(&proof)?)
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!("proof written to {}", path.display());
    Ok(())
}
