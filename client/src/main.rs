//! `hypervisor-client`: talk to a WASM Hypervisor from the command line.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

mod cli;

use anyhow::Context;
use base64::Engine as _;
use clap::{Args, Parser, Subcommand};
use hypervisor_client::proof::Proof;
use hypervisor_client::verify::{self, Policy, VerifiedKey};
use hypervisor_client::{Client, ExecuteInput, Execution, Session, keyfile};
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
    /// Encrypt and execute a WebAssembly component (or, with --python, a Python script), print
    /// its decrypted output.
    Exec {
        /// The component (.wasm), or the script (.py) with --python.
        wasm: PathBuf,
        /// Run the file as a Python script on the Python routes
        /// (/test/policy/unsafe/python, or .../attest with --verifiable).
        #[arg(long)]
        python: bool,
        /// Pay with x402 (the /x402_* routes): a file holding the hex secp256k1 private key of
        /// the paying account. On a 402 the client signs an EIP-3009 authorization for the
        /// offered price and retries.
        #[arg(long, value_name = "FILE", env = "HYPERVISOR_WALLET_KEY_FILE")]
        pay_with: Option<PathBuf>,
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
        /// Use the verifiable routes: verify the host's evidence chain before sending anything,
        /// and the signed receipt of the result.
        #[arg(long)]
        verifiable: bool,
        /// With --verifiable: write a proof bundle (evidence, receipt, plaintext result) that
        /// `hypervisor-client verify` can check offline.
        #[arg(long, value_name = "FILE")]
        save_proof: Option<PathBuf>,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Fetch and verify the host's attestation (GET /attestation).
    Attestation {
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Verify a proof bundle offline (from `exec --verifiable --save-proof`).
    Verify {
        /// The proof file.
        proof: PathBuf,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Verify raw hardware evidence offline: a TDX quote with its collateral, or an SEV-SNP
    /// report with its VCEK. Prints the claims (REPORTDATA, measurements, TCB status).
    VerifyEvidence {
        /// A TDX quote (binary).
        #[arg(long, conflicts_with = "snp_report")]
        tdx_quote: Option<PathBuf>,
        /// An SEV-SNP attestation report (binary or hex).
        #[arg(long)]
        snp_report: Option<PathBuf>,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Agents: deploy once, invoke many times.
    Agent {
        #[command(subcommand)]
        command: cli::agent::AgentCommand,
    },
    /// Search the deployed agents (ranked full-text search over name, description, tags).
    Search {
        /// Words to look for.
        query: String,
        /// Most results.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Print the SHA-256 of files a verifier should pin: the host binary
    /// (`--expect-host-measurement`) and components (the receipts' `program_sha256`).
    Measure {
        /// Files to measure.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// What a verifier accepts.
#[derive(Args, Clone, Default)]
struct PolicyArgs {
    /// Accept SIMULATED evidence (development only: it proves nothing).
    #[arg(long)]
    allow_simulated: bool,
    /// TDX: DCAP collateral (QuoteCollateralV3 JSON) for offline verification.
    #[arg(long, value_name = "FILE")]
    collateral: Option<PathBuf>,
    /// TDX: fetch the collateral from this PCCS / Intel PCS base URL (when no --collateral).
    #[arg(long, value_name = "URL")]
    pccs: Option<String>,
    /// SEV-SNP: the chip's VCEK certificate (DER).
    #[arg(long, value_name = "FILE")]
    vcek: Option<PathBuf>,
    /// Accept this TCB status (repeatable). Default: UpToDate only.
    #[arg(long = "tcb-status", value_name = "STATUS")]
    tcb_status: Vec<String>,
    /// Accept TEEs in debug mode (never in production).
    #[arg(long)]
    allow_debug: bool,
    /// TDX: expected MRTD (hex).
    #[arg(long, value_name = "HEX")]
    expect_mrtd: Option<String>,
    /// TDX: expected RTMR, as N=HEX (repeatable).
    #[arg(long = "expect-rtmr", value_name = "N=HEX")]
    expect_rtmr: Vec<String>,
    /// SEV-SNP: expected launch measurement (hex).
    #[arg(long, value_name = "HEX")]
    expect_snp_measurement: Option<String>,
    /// Expected SHA-256 of the host binary (see `measure`).
    #[arg(long, value_name = "HEX")]
    expect_host_measurement: Option<String>,
    /// Verify as of this Unix time (default: now).
    #[arg(long, value_name = "UNIX_SECONDS")]
    at: Option<u64>,
}

impl PolicyArgs {
    fn policy(&self) -> anyhow::Result<Policy> {
        let hexarg =
            |name: &str, v: &str| hex::decode(v).with_context(|| format!("{name} is not hex"));
        let mut p = Policy {
            allow_simulated: self.allow_simulated,
            allow_debug: self.allow_debug,
            now: self.at,
            pccs_url: self.pccs.clone(),
            ..Policy::default()
        };
        if let Some(f) = &self.collateral {
            p.tdx_collateral = Some(
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
            );
        }
        if let Some(f) = &self.vcek {
            p.snp_vcek =
                Some(std::fs::read(f).with_context(|| format!("reading {}", f.display()))?);
        }
        if !self.tcb_status.is_empty() {
            p.accepted_tcb_statuses = self.tcb_status.clone();
        }
        if let Some(v) = &self.expect_mrtd {
            p.expected_mrtd = Some(hexarg("--expect-mrtd", v)?);
        }
        for r in &self.expect_rtmr {
            let (n, v) = r.split_once('=').context("--expect-rtmr takes N=HEX")?;
            let n: usize = n
                .parse()
                .ok()
                .filter(|n| *n < 4)
                .context("--expect-rtmr N must be 0..3")?;
            p.expected_rtmrs[n] = Some(hexarg("--expect-rtmr", v)?);
        }
        if let Some(v) = &self.expect_snp_measurement {
            p.expected_snp_measurement = Some(hexarg("--expect-snp-measurement", v)?);
        }
        if let Some(v) = &self.expect_host_measurement {
            let m = hexarg("--expect-host-measurement", v)?;
            p.expected_host_measurement = Some(
                m.try_into()
                    .ok()
                    .context("--expect-host-measurement is 32 bytes")?,
            );
        }
        Ok(p)
    }
}

fn print_key(key: &VerifiedKey) {
    if key.simulated {
        eprintln!(
            "WARNING: the host's evidence is SIMULATED. It proves nothing about where code runs."
        );
    }
    println!("tee               {}", key.tee);
    println!("signing key       {}", key.signing_key.to_hex());
    println!("host measurement  {}", hex::encode(key.host_measurement));
    if let Some(s) = &key.tcb_status {
        println!("tcb status        {s}");
    }
    if let Some(m) = &key.platform_measurement {
        println!("platform measure  {m}");
    }
}

fn key_json(key: &VerifiedKey) -> serde_json::Value {
    serde_json::json!({
        "tee": key.tee,
        "simulated": key.simulated,
        "signing_key": key.signing_key.to_hex(),
        "host_measurement": hex::encode(key.host_measurement),
        "tcb_status": key.tcb_status,
        "platform_measurement": key.platform_measurement,
    })
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
        Command::Agent { command } => {
            return cli::agent::run(&client, &key_path, cli.json, command);
        }
        Command::Search { query, limit } => {
            return cli::agent::search(&client, cli.json, &query, limit);
        }
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
        Command::Attestation { policy } => {
            let (provider, att) = client.attestation()?;
            let Some(att) = att else {
                anyhow::bail!("the host has no attestation provider (provider: {provider})");
            };
            let key = verify::verify_attestation(&att, &policy.policy()?)?;
            if cli.json {
                println!("{}", key_json(&key));
            } else {
                print_key(&key);
                println!("verified          evidence → signing key binding");
            }
        }
        Command::Verify { proof, policy } => {
            let text = std::fs::read_to_string(&proof)
                .with_context(|| format!("reading {}", proof.display()))?;
            let bundle: Proof = serde_json::from_str(&text).context("not a proof bundle")?;
            let key = bundle.verify(&policy.policy()?)?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"verified": true, "key": key_json(&key), "receipt": bundle.receipt})
                );
            } else {
                print_key(&key);
                println!("program           {}", bundle.receipt.program_sha256);
                println!("commitment        {}", bundle.receipt.result_commitment);
                println!(
                    "verified          evidence → key → session → receipt → result commitment"
                );
            }
        }
        Command::VerifyEvidence {
            tdx_quote,
            snp_report,
            policy,
        } => {
            let policy = policy.policy()?;
            let claims = if let Some(q) = tdx_quote {
                let quote =
                    std::fs::read(&q).with_context(|| format!("reading {}", q.display()))?;
                let c = match (&policy.tdx_collateral, &policy.pccs_url) {
                    (Some(json), _) => verify::verify_tdx_quote(&quote, json, &policy)?,
                    (None, Some(url)) => {
                        let collateral = verify::fetch_tdx_collateral(url, &quote)?;
                        verify::verify_tdx_quote_with(&quote, &collateral, &policy)?
                    }
                    (None, None) => {
                        anyhow::bail!("a TDX quote needs --collateral FILE or --pccs URL")
                    }
                };
                serde_json::json!({
                    "tee": "tdx", "tcb_status": c.tcb_status, "advisory_ids": c.advisory_ids,
                    "report_data": hex::encode(c.report_data), "mrtd": hex::encode(c.mrtd),
                    "rtmrs": c.rtmrs.iter().map(hex::encode).collect::<Vec<_>>(),
                    "td_attributes": hex::encode(c.td_attributes),
                })
            } else if let Some(r) = snp_report {
                let report =
                    std::fs::read(&r).with_context(|| format!("reading {}", r.display()))?;
                let vcek = policy
                    .snp_vcek
                    .as_deref()
                    .context("--vcek FILE is required for an SNP report")?;
                let c = verify::verify_snp_report(&report, vcek, &policy)?;
                serde_json::json!({
                    "tee": "sev-snp", "product": c.product, "report_data": hex::encode(c.report_data),
                    "measurement": hex::encode(c.measurement), "debug_allowed": c.debug_allowed,
                })
            } else {
                anyhow::bail!("give --tdx-quote FILE or --snp-report FILE");
            };
            if cli.json {
                println!("{claims}");
            } else {
                println!("{}", serde_json::to_string_pretty(&claims)?);
                println!("verified against the vendor's root");
            }
        }
        Command::Measure { files } => {
            let mut out = Vec::new();
            for f in &files {
                let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
                out.push((
                    f.display().to_string(),
                    hex::encode(hypervisor_protocol::sha256(&bytes)),
                ));
            }
            if cli.json {
                let map: serde_json::Map<_, _> =
                    out.into_iter().map(|(k, v)| (k, v.into())).collect();
                println!("{}", serde_json::Value::Object(map));
            } else {
                for (name, h) in out {
                    println!("{h}  {name}");
                }
            }
        }
        Command::Exec {
            wasm,
            python,
            pay_with,
            args,
            stdin,
            time_ms,
            memory_bytes,
            fuel,
            verifiable,
            save_proof,
            policy,
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
            if !verifiable {
                if save_proof.is_some() {
                    anyhow::bail!("--save-proof needs --verifiable");
                }
                let session = client.create_session(&key)?;
                let run = if let Some(wallet) = wallet(&pay_with)? {
                    client.execute_paid(&session, &input, python, &wallet)?
                } else if python {
                    client.execute_python(&session, &input)?
                } else {
                    client.execute(&session, &input)?
                };
                return report(&run, session.id, cli.json);
            }
            let session = client.create_verifiable_session(&key, &policy.policy()?)?;
            if let Some((_, k)) = &session.verified
                && !cli.json
            {
                print_key_to_stderr(k);
            }
            let run = if let Some(wallet) = wallet(&pay_with)? {
                if python {
                    anyhow::bail!("the paid Python route is not verifiable: drop --verifiable");
                }
                client.execute_paid(&session, &input, false, &wallet)?
            } else if python {
                client.execute_python(&session, &input)?
            } else {
                client.execute_verifiable(&session, &input)?
            };
            if let Some(path) = &save_proof {
                write_proof(path, &session, &run)?;
            }
            return report(&run, session.id, cli.json);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The paying wallet from `--pay-with`.
fn wallet(path: &Option<PathBuf>) -> anyhow::Result<Option<hypervisor_client::x402::Wallet>> {
    let Some(path) = path else { return Ok(None) };
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let wallet = hypervisor_client::x402::Wallet::from_hex(&text)?;
    eprintln!("[paying from {}]", wallet.address().to_checksum(None));
    Ok(Some(wallet))
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
            "returned": r.returned,
            "exception": r.exception,
            "error": run.stopped.as_ref().map(|e| serde_json::json!({"code": e.code, "message": e.message})),
            "result_commitment": hex::encode(run.commitment),
            "commitment_verified": true,
            "receipt": run.receipt,
            "settlement": run.settlement,
        });
        println!("{doc}");
    } else {
        std::io::stdout().write_all(&stdout)?;
        if let Some(value) = &r.returned {
            println!("{value}");
        }
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
        if let Some(s) = &run.settlement {
            eprintln!(
                "[payment settled: success={} payer={} transaction={}]",
                s["success"], s["payer"], s["transaction"]
            );
        }
        if let Some(e) = &r.exception {
            eprint!("{}", e.traceback);
        }
    }
    Ok(ExitCode::from(code))
}
