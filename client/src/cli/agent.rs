//! `hypervisor-client agent …`: deploy once (`deploy.rs`), list (`listing.rs`), invoke many
//! times.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use hypervisor_client::Client;
use hypervisor_protocol::grants::Grants;

/// Agent subcommands.
#[derive(Subcommand)]
pub enum AgentCommand {
    /// Deploy a component as an agent (in the clear, signed with your key; `--private` seals it
    /// to a session instead and only sealed invocations are accepted), or JavaScript/TypeScript
    /// modules (`--js main.ts utils.ts`: a handler agent set up once by the host).
    Deploy(super::deploy::DeployArgs),
    /// List the deployed agents (environments set up through `/environments/*` only with
    /// `--environments`).
    List {
        /// Show the environments too (Assist-compatible set-ups, `env-<id>`).
        #[arg(long)]
        environments: bool,
    },
    /// Show an agent and its versions.
    Show {
        /// Agent name.
        name: String,
    },
    /// Invoke a handler agent with a JSON event, or a CLI agent with arguments and standard
    /// input. With `--key` (or HYPERVISOR_CLIENT_KEY), `--sealed`, or a private agent, the
    /// invocation is sealed to a session of your key: you are the caller, nobody on the way
    /// reads the input or the output, and the output is checked against the agent's code.
    /// Otherwise it is sent in the clear, anonymously.
    Invoke {
        /// Agent name.
        name: String,
        /// Handler agents: the event, JSON (default `null`).
        #[arg(long)]
        event: Option<String>,
        /// CLI agents: a file whose content is the agent's standard input (`-`: this
        /// process's standard input).
        #[arg(long, value_name = "FILE")]
        stdin: Option<PathBuf>,
        /// Seal the invocation to a session of your key even without `--key`.
        #[arg(long)]
        sealed: bool,
        /// CLI agents: arguments. Options are recognised wherever they stand; an argument that
        /// starts with `-` goes after `--`.
        args: Vec<String>,
        /// Pay a priced agent (x402) within --max-price.
        #[command(flatten)]
        pay: super::pay::PayArgs,
    },
    /// Delete an agent (you must be its owner).
    Delete {
        /// Agent name.
        name: String,
    },
    /// Read an agent's recent logs (you must be its owner): the newest 100 entries, oldest
    /// first; with `--follow`, then every new entry as it comes, until interrupted.
    Logs {
        /// Agent name.
        name: String,
        /// Keep reading: print new entries as they come (polls once a second).
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Read an agent's grants, or replace them with `--set FILE` (you must be its owner).
    Grants {
        /// Agent name.
        name: String,
        /// The new grants, a JSON file (as for `deploy --grants`).
        #[arg(long, value_name = "FILE")]
        set: Option<PathBuf>,
    },
    /// List an agent's outgoing calls and payments, newest first (you must be its owner).
    Calls {
        /// Agent name.
        name: String,
    },
    /// Read an agent's wallet, or attach one with `--wallet-key` and `--policy` (you must be its
    /// owner): the host pays the agent's callees from it, within the policy. `keygen --wallet
    /// FILE` creates a wallet key.
    Wallet {
        /// Agent name.
        name: String,
        /// A file holding the wallet's secp256k1 key (hex; `keygen --wallet FILE` makes one);
        /// sealed to a session on the way. (`--key` stays your own key, the owner's.)
        #[arg(long, value_name = "FILE", requires = "policy")]
        wallet_key: Option<PathBuf>,
        /// The spending policy, a JSON file (`{"networks","assets","max_per_call",
        /// "max_per_day","max_total","payees"?}`).
        #[arg(long, value_name = "FILE", requires = "wallet_key")]
        policy: Option<PathBuf>,
    },
    /// Read an agent's configuration (names, versions and hashes; never a value), or change
    /// it (you must be its owner): the values, sealed to a session of your key and signed,
    /// reach the agent through `wasi:config` from its next invocation.
    Config {
        /// Agent name.
        name: String,
        /// Set a value: `NAME=VALUE` (repeatable).
        #[arg(long, value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Set a value from a file's content, trailing newline removed (`-`: standard input),
        /// keeping secrets out of the shell's history: `NAME=FILE` (repeatable).
        #[arg(long, value_name = "NAME=FILE")]
        set_file: Vec<String>,
        /// Remove a name (repeatable).
        #[arg(long, value_name = "NAME")]
        remove: Vec<String>,
        /// Allow empty values (refused otherwise: `--set KEY=$VAR` with `VAR` unset stores
        /// nothing by mistake).
        #[arg(long)]
        allow_empty: bool,
    },
    /// Export, import or wipe an agent's key-value state (you must be its owner).
    State {
        /// What to do.
        #[command(subcommand)]
        command: super::state::StateCommand,
    },
}

/// Unix seconds now, the time a payment is signed at.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads a file, or this process's standard input for `-`.
fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut input = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut input)
            .context("reading standard input")?;
        Ok(input)
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    }
}

pub(super) fn read_grants(path: &Path) -> anyhow::Result<Grants> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not grants JSON", path.display()))
}

pub(super) fn print(json: bool, value: &serde_json::Value, human: impl FnOnce()) {
    if json {
        println!("{value}");
    } else {
        human();
    }
}

/// Runs an agent subcommand.
pub fn run(
    client: &Client,
    key_path: &Path,
    caller_key_given: bool,
    json: bool,
    command: AgentCommand,
) -> anyhow::Result<ExitCode> {
    let owner = || {
        hypervisor_client::keyfile::load_or_create(key_path)
            .map(|(k, _)| k)
            .with_context(|| format!("key file {}", key_path.display()))
    };
    match command {
        AgentCommand::Deploy(args) => super::deploy::run(client, owner, json, args)?,
        AgentCommand::List { environments } => super::listing::list(client, json, environments)?,
        AgentCommand::Show { name } => {
            let agent = client.get_json(&format!("/agents/{name}"))?;
            println!("{}", serde_json::to_string_pretty(&agent)?);
        }
        AgentCommand::Invoke {
            name,
            event,
            stdin,
            sealed,
            args,
            pay,
        } => {
            let payment = pay.payer()?;
            // Captures a shared reference only, so it is `Copy`: each attempt below takes its
            // own copy as the `&mut` payer the client asks for.
            let pay_fn = |offer: &hypervisor_client::x402::Offer| match &payment {
                Some((wallet, limit)) => Ok(wallet.pay(offer, limit, unix_now())?),
                None => hypervisor_client::agents::payment_required(offer),
            };
            let agent = client.get_json(&format!("/agents/{name}"))?;
            let handler = agent["latest"]["kind"] == "handler";
            if handler && (stdin.is_some() || !args.is_empty()) {
                anyhow::bail!(
                    "{name} is a handler agent: send --event JSON, not arguments or --stdin"
                );
            }
            if !handler && event.is_some() {
                anyhow::bail!("{name} is a command: send arguments and --stdin, not --event");
            }
            let input = match &stdin {
                Some(path) => Some(read_input(path)?),
                None => None,
            };
            if sealed || caller_key_given || agent["public"] == false {
                let sessions = client.open_renewing(owner()?, None)?;
                let code_hash = agent["latest"]["code_hash"].as_str().unwrap_or_default();
                let event = event.unwrap_or_else(|| "null".into());
                if handler {
                    serde_json::from_str::<serde_json::Value>(&event)
                        .context("--event is not JSON")?;
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                // Behind a load balancer the invocation may land on another replica than the
                // session: the client opens one there and sends again.
                let run = client.with_session(&sessions, |session| {
                    let mut pay_fn = pay_fn;
                    if handler {
                        client.invoke_sealed_paying(
                            session,
                            &name,
                            code_hash,
                            event.as_bytes(),
                            &mut pay_fn,
                        )
                    } else {
                        client.invoke_command_sealed_paying(
                            session,
                            &name,
                            code_hash,
                            &args,
                            input.as_deref().unwrap_or_default(),
                            &mut pay_fn,
                        )
                    }
                })?;
                return super::report::report(&run, sessions.current().id, json);
            }
            let mut pay_fn = pay_fn;
            let (out, settlement) = if handler {
                let event: serde_json::Value = match event {
                    Some(e) => serde_json::from_str(&e).context("--event is not JSON")?,
                    None => serde_json::Value::Null,
                };
                client.invoke_paying(&name, event, &mut pay_fn)?
            } else {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let stdin = input.map(String::from_utf8).transpose().context(
                    "a clear invocation's --stdin must be UTF-8 (seal it with --sealed)",
                )?;
                client.invoke_cli_paying(&name, &args, stdin.as_deref(), &mut pay_fn)?
            };
            if let Some(settlement) = &settlement {
                eprintln!("[paid: {settlement}]");
            }
            let mut value = serde_json::to_value(&out)?;
            if let Some(settlement) = settlement {
                value["payment_response"] = settlement;
            }
            print(json, &value, || {
                if let Some(r) = out.result_json() {
                    println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
                }
                if let Some(e) = &out.error {
                    eprintln!("error {}: {}", e.code, e.message);
                }
                if let Some(s) = &out.stdout {
                    print!("{s}");
                }
                eprint!("{}", out.stderr);
            });
            if !out.ok {
                return Ok(ExitCode::from(1));
            }
        }
        AgentCommand::Delete { name } => {
            client.delete_agent(&owner()?, &name)?;
            print(json, &serde_json::json!({ "deleted": name }), || {
                println!("deleted {name}");
            });
        }
        AgentCommand::Grants { name, set } => {
            let owner = owner()?;
            let grants = match set {
                Some(path) => client.set_agent_grants(&owner, &name, &read_grants(&path)?)?,
                None => client.agent_grants(&owner, &name)?,
            };
            println!("{}", serde_json::to_string_pretty(&grants)?);
        }
        AgentCommand::Calls { name } => {
            let calls = client.agent_calls(&owner()?, &name)?;
            print(json, &serde_json::to_value(&calls)?, || {
                for c in &calls {
                    let paid = c
                        .settlement
                        .as_ref()
                        .map(|s| match s["transaction"].as_str() {
                            Some(t) if !t.is_empty() => format!(" paid, transaction {t}"),
                            // Verify-only mode: recorded for the operator to settle.
                            _ => " paid (not settled on chain yet)".to_string(),
                        })
                        .unwrap_or_default();
                    println!(
                        "{} {} {}{} -> {} ({}){paid}",
                        super::when::rfc3339(c.at_ms),
                        c.caller_execution,
                        c.callee,
                        c.path,
                        c.status,
                        c.callee_execution.as_deref().unwrap_or("-"),
                    );
                }
            });
        }
        AgentCommand::Wallet {
            name,
            wallet_key,
            policy,
        } => {
            let owner = owner()?;
            let info = match (wallet_key, policy) {
                (Some(key), Some(policy)) => {
                    let secret =
                        zeroize::Zeroizing::new(std::fs::read_to_string(&key).map_err(|e| {
                            match e.kind() {
                                std::io::ErrorKind::NotFound => anyhow::anyhow!(
                                    "{} does not exist: create a wallet key with \
                                 `hypervisor-client keygen --wallet {}` (and fund its address)",
                                    key.display(),
                                    key.display()
                                ),
                                _ => anyhow::Error::new(e)
                                    .context(format!("reading {}", key.display())),
                            }
                        })?);
                    let text = std::fs::read_to_string(&policy)
                        .with_context(|| format!("reading {}", policy.display()))?;
                    let policy = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not a policy", policy.display()))?;
                    let sessions = client.open_renewing(owner.clone(), None)?;
                    client.with_session(&sessions, |session| {
                        client.attach_wallet(&owner, session, &name, &secret, &policy)
                    })?
                }
                _ => client.agent_wallet(&owner, &name)?,
            };
            println!("{}", serde_json::to_string_pretty(&info)?);
        }
        AgentCommand::Config {
            name,
            set,
            set_file,
            remove,
            allow_empty,
        } => {
            let args = super::state::ConfigArgs {
                set,
                set_file,
                remove,
                allow_empty,
            };
            super::state::config(client, &owner()?, &name, args)?;
        }
        AgentCommand::State { command } => super::state::state(client, &owner()?, command)?,
        AgentCommand::Logs { name, follow } => {
            super::logs::run(client, &owner()?, &name, json, follow)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
