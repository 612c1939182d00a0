//! `hypervisor-client agent config …` and `hypervisor-client agent state …`: the owner's side
//! of an agent's configuration (variables and secrets, read by the agent through
//! `wasi:config`) and of its key-value state (`wasi:keyvalue`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use hypervisor_client::Client;
use hypervisor_client::state::change_of;
use hypervisor_protocol::ClientSecret;
use zeroize::Zeroizing;

/// `agent state` subcommands.
#[derive(Subcommand)]
pub enum StateCommand {
    /// Write everything the agent keeps (buckets, keys, values in base64) as JSON, sealed to a
    /// session of your key on the way.
    Export {
        /// Agent name.
        name: String,
        /// Write to this file (mode 0600) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Import state (a file `state export` wrote, of this agent or another) into the agent,
    /// sealed to a session of your key on the way: merged (its keys overwrite), or with
    /// `--replace` instead of everything the agent keeps. Checked whole first: an import over
    /// the agent's quotas writes nothing.
    Import {
        /// Agent name.
        name: String,
        /// The export's JSON file (`-`: standard input).
        file: PathBuf,
        /// Remove the keys the file does not name.
        #[arg(long)]
        replace: bool,
    },
    /// Remove everything the agent keeps.
    Wipe {
        /// Agent name.
        name: String,
    },
}

/// What `agent config` changes.
pub struct ConfigArgs {
    /// `NAME=VALUE` pairs.
    pub set: Vec<String>,
    /// `NAME=FILE` pairs: the value is the file's content (`-`: standard input), so a secret
    /// stays out of the shell's history.
    pub set_file: Vec<String>,
    /// Names to remove.
    pub remove: Vec<String>,
    /// Store empty values (refused otherwise: usually an unset shell variable).
    pub allow_empty: bool,
}

/// `agent config NAME [--set N=V]… [--set-file N=FILE]… [--remove N]…`: reads the names,
/// versions and hashes, or changes the configuration (sealed and signed).
pub fn config(
    client: &Client,
    owner: &ClientSecret,
    name: &str,
    args: ConfigArgs,
) -> anyhow::Result<()> {
    let info = if args.set.is_empty() && args.set_file.is_empty() && args.remove.is_empty() {
        client.agent_config(owner, name)?
    } else {
        let mut pairs: Vec<Zeroizing<String>> = args.set.into_iter().map(Zeroizing::new).collect();
        for pair in &args.set_file {
            let (key, path) = pair
                .split_once('=')
                .with_context(|| format!("{pair:?} is not NAME=FILE"))?;
            let value = if path == "-" {
                let mut v = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut v)
                    .context("reading standard input")?;
                v
            } else {
                std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?
            };
            let value = Zeroizing::new(value);
            pairs.push(Zeroizing::new(format!(
                "{key}={}",
                value.trim_end_matches('\n')
            )));
        }
        if !args.allow_empty {
            for pair in &pairs {
                if let Some(key) = pair.strip_suffix('=').filter(|k| !k.contains('=')) {
                    anyhow::bail!(
                        "{key} would be set to an empty value (an unset shell variable?): \
                         nothing was changed; pass --allow-empty to store an empty value"
                    );
                }
            }
        }
        let plain: Vec<String> = pairs.iter().map(|p| p.as_str().to_string()).collect();
        let change = change_of(&plain, &args.remove)?;
        let sessions = client.open_renewing(owner.clone(), None)?;
        client.with_session(&sessions, |session| {
            client.set_agent_config(owner, session, name, &change)
        })?
    };
    println!("{}", serde_json::to_string_pretty(&info)?);
    Ok(())
}

/// Runs an `agent state` subcommand.
pub fn state(client: &Client, owner: &ClientSecret, command: StateCommand) -> anyhow::Result<()> {
    match command {
        StateCommand::Export { name, out } => {
            let sessions = client.open_renewing(owner.clone(), None)?;
            let exported = client.with_session(&sessions, |session| {
                client.export_agent_state(owner, session, &name)
            })?;
            let text = Zeroizing::new(serde_json::to_string_pretty(&exported)?);
            match out {
                Some(path) => {
                    write_private(&path, text.as_bytes())
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!(
                        "{} keys in {} buckets written to {}",
                        exported.buckets.values().map(|b| b.len()).sum::<usize>(),
                        exported.buckets.len(),
                        path.display()
                    );
                }
                None => println!("{}", text.as_str()),
            }
        }
        StateCommand::Import {
            name,
            file,
            replace,
        } => {
            let text = Zeroizing::new(if file.as_os_str() == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                    .context("reading standard input")?;
                text
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            });
            let state: hypervisor_protocol::state::ExportedState = serde_json::from_str(&text)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{} is not a state export (`agent`, `exported_at_ms`, `buckets`): \
                         line {} column {}",
                        file.display(),
                        e.line(),
                        e.column()
                    )
                })?;
            let sessions = client.open_renewing(owner.clone(), None)?;
            let imported = client.with_session(&sessions, |session| {
                client.import_agent_state(owner, session, &name, &state, replace)
            })?;
            println!("{}", serde_json::to_string_pretty(&imported)?);
        }
        StateCommand::Wipe { name } => {
            let wiped = client.wipe_agent_state(owner, &name)?;
            println!("{}", serde_json::to_string_pretty(&wiped)?);
        }
    }
    Ok(())
}

/// Writes `data` to `path` (replacing it), readable by its owner only.
fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = hypervisor_client::keyfile::private_file();
    options.create(true).truncate(true);
    options.open(path)?.write_all(data)
}
