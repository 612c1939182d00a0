//! `hypervisor-client agent deploy`: a component, a RISC-V program or JavaScript/TypeScript
//! modules, in the clear (signed with your key) or sealed to a session.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use hypervisor_client::Client;
use hypervisor_client::agents::Deployment;
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::ChargeRule;
use hypervisor_protocol::grants::Grants;
use hypervisor_protocol::wire::Limits;

use super::agent::{print, read_grants};

// The arguments of `agent deploy` (a plain comment: a doc comment here would replace the
// subcommand's help text).
#[derive(Args)]
pub struct DeployArgs {
    /// Agent name (a-z, 0-9, '-').
    name: String,
    /// The component (.wasm): a handler agent, a wasi:http proxy or a CLI command; or a
    /// RISC-V ELF file (a CLI agent).
    #[arg(required_unless_present = "js", conflicts_with = "js")]
    wasm: Option<PathBuf>,
    /// What the file is: wasm or riscv (default: the host recognises it).
    #[arg(long, value_name = "KIND", conflicts_with = "js")]
    program_kind: Option<super::args::ProgramKindArg>,
    /// JavaScript or TypeScript modules instead of a component: the main module first
    /// (it exports `handler`), then the modules it imports. Each is named in the modules
    /// map by its path relative to the main module's directory.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    js: Vec<PathBuf>,
    /// With --js: the engine that sets the modules up and runs them, `boa` (the default: the
    /// host's runtime, its whole web platform) or `starlingmonkey` (SpiderMonkey: an order of
    /// magnitude faster on CPU-bound code, larger agents).
    #[arg(long, value_name = "boa|starlingmonkey", requires = "js", value_parser = parse_engine)]
    js_engine: Option<hypervisor_protocol::agents::JsEngine>,
    /// What it does (searched).
    #[arg(long, default_value = "")]
    description: String,
    /// Tags (repeatable; searched).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Seal the component to a session: a private agent (only sealed invocations), unless
    /// `--public`.
    #[arg(long)]
    private: bool,
    /// With --private: sealed on the way and at rest, but anyone may invoke it (an HTTP
    /// agent deployed sealed needs this, or `--caller`).
    #[arg(long, requires = "private")]
    public: bool,
    /// The only agents allowed to call this one, `NAME=OWNER_KEY` (repeatable; added to
    /// the grants' `callers`). A private HTTP agent is reached through these alone.
    #[arg(long = "caller", value_name = "NAME=OWNER_KEY")]
    callers: Vec<String>,
    /// Price per invocation, atomic units of the host's payment asset (x402).
    #[arg(long)]
    price: Option<String>,
    /// Remove the agent after this many seconds.
    #[arg(long)]
    ttl_seconds: Option<u64>,
    /// Default time limit of its invocations, milliseconds.
    #[arg(long)]
    time_ms: Option<u64>,
    /// With --price: charge every run (`always`) instead of only successful ones
    /// (`success`, the default).
    #[arg(long, value_name = "success|always")]
    charge: Option<ChargeRule>,
    /// With --price: meter each run (x402 `upto`, handler and CLI agents): atomic units charged
    /// fixed, per million fuel, per millisecond and per KiB of answer; --price is then the most
    /// a run costs (e.g. `--tariff 100,50,0,10`).
    #[arg(long, value_name = "FIXED,PER_MILLION_FUEL,PER_MS,PER_KIB_OUT", value_parser = parse_tariff)]
    tariff: Option<hypervisor_protocol::tariff::Tariff>,
    /// HTTP agents: the media type of their answers, declared in payment challenges.
    #[arg(long, value_name = "TYPE")]
    content_type: Option<String>,
    /// What it may reach and who may call it: a JSON file of grants
    /// (`{"agents":[{"name","owner_key"}],"origins":[…],"search":true,"callers":[…]}`).
    #[arg(long, value_name = "FILE")]
    grants: Option<PathBuf>,
    /// Handler agents: a JSON Schema file of the event (an object schema): the MCP tool's
    /// `inputSchema`, which tells MCP clients and LLMs what arguments the tool takes.
    #[arg(long, value_name = "FILE")]
    input_schema: Option<PathBuf>,
    /// Handler agents: a JSON Schema file of the result (an object schema): the MCP tool's
    /// `outputSchema`.
    #[arg(long, value_name = "FILE")]
    output_schema: Option<PathBuf>,
}

/// A JSON Schema file.
fn read_schema(path: &Path) -> anyhow::Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// The modules map of `files` (the main module first), each named by its path relative to the
/// main module's directory with `/` separators.
fn js_source(
    files: &[PathBuf],
    engine: hypervisor_protocol::agents::JsEngine,
) -> anyhow::Result<hypervisor_protocol::agents::JsSource> {
    let main = &files[0];
    let base = main.parent().unwrap_or_else(|| Path::new(""));
    let name_of = |file: &Path| -> anyhow::Result<String> {
        let relative = file.strip_prefix(base).map_err(|_| {
            anyhow::anyhow!(
                "{} is not under {}, the main module's directory",
                file.display(),
                if base.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    base
                }
                .display()
            )
        })?;
        let parts = relative
            .components()
            .map(|c| match c {
                std::path::Component::Normal(p) => p.to_str().map(str::to_string),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| anyhow::anyhow!("{}: not a plain relative path", file.display()))?;
        Ok(parts.join("/"))
    };
    let mut modules = std::collections::BTreeMap::new();
    for file in files {
        let source = std::fs::read_to_string(file)
            .with_context(|| format!("reading {} (UTF-8 source)", file.display()))?;
        if modules.insert(name_of(file)?, source).is_some() {
            anyhow::bail!("{} is given twice", file.display());
        }
    }
    Ok(hypervisor_protocol::agents::JsSource {
        engine,
        main: name_of(main)?,
        modules,
    })
}

/// Runs `agent deploy`.
pub fn run(
    client: &Client,
    owner: impl FnOnce() -> anyhow::Result<ClientSecret>,
    json: bool,
    args: DeployArgs,
) -> anyhow::Result<()> {
    let DeployArgs {
        name,
        wasm,
        program_kind,
        js,
        js_engine,
        description,
        tags,
        private,
        public,
        callers,
        price,
        ttl_seconds,
        time_ms,
        charge,
        tariff,
        content_type,
        grants,
        input_schema,
        output_schema,
    } = args;
    let mut grants = grants.as_deref().map(read_grants).transpose()?;
    if !callers.is_empty() {
        let list = grants
            .get_or_insert_with(Grants::default)
            .callers
            .get_or_insert_with(Vec::new);
        for caller in &callers {
            let (name, owner_key) = caller.split_once('=').with_context(|| {
                format!(
                    "--caller {caller}: write NAME=OWNER_KEY (the caller's owner's public key, hex)"
                )
            })?;
            list.push(hypervisor_protocol::grants::AgentRef {
                name: name.to_string(),
                owner_key: owner_key.to_string(),
            });
        }
    }
    let component = match &wasm {
        Some(wasm) => super::program::read(wasm, super::program::Use::Deploy)?,
        None => Vec::new(),
    };
    let source = (!js.is_empty())
        .then(|| js_source(&js, js_engine.unwrap_or_default()))
        .transpose()?;
    let schemas = if input_schema.is_some() || output_schema.is_some() {
        Some(hypervisor_protocol::agents::ToolSchemas {
            input: input_schema.as_deref().map(read_schema).transpose()?,
            output: output_schema.as_deref().map(read_schema).transpose()?,
        })
    } else {
        None
    };
    let owner = owner()?;
    let d = Deployment {
        name: &name,
        description: &description,
        tags,
        component: &component,
        program_kind: program_kind.map(Into::into),
        public: public.then_some(true),
        limits: time_ms.map(|t| Limits {
            time_ms: Some(t),
            ..Limits::default()
        }),
        price,
        ttl_seconds,
        charge,
        tariff,
        content_type,
        grants,
        schemas,
    };
    let agent = match (&source, private) {
        (Some(source), true) => {
            let sessions = client.open_renewing(owner.clone(), None)?;
            client.with_session(&sessions, |session| {
                client.deploy_js_sealed(&owner, session, &d, source)
            })?
        }
        (Some(source), false) => client.deploy_js(&owner, &d, source)?,
        (None, true) => {
            let sessions = client.open_renewing(owner.clone(), None)?;
            client.with_session(&sessions, |session| {
                client.deploy_agent_sealed(&owner, session, &d)
            })?
        }
        (None, false) => client.deploy_agent(&owner, &d)?,
    };
    print(json, &agent, || {
        let latest = &agent["latest"];
        println!(
            "deployed {} v{} ({} agent, {}) code {}",
            agent["name"].as_str().unwrap_or_default(),
            latest["version"],
            latest["kind"].as_str().unwrap_or_default(),
            if agent["public"] == true {
                "public"
            } else {
                "private"
            },
            latest["code_hash"].as_str().unwrap_or_default()
        );
    });
    Ok(())
}

/// `--js-engine boa|starlingmonkey`.
fn parse_engine(s: &str) -> Result<hypervisor_protocol::agents::JsEngine, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("{s:?}: write boa or starlingmonkey"))
}

/// `--tariff FIXED,PER_MILLION_FUEL,PER_MS,PER_KIB_OUT`: four decimal amounts (the host checks
/// them against the price).
fn parse_tariff(s: &str) -> Result<hypervisor_protocol::tariff::Tariff, String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [fixed, per_million_fuel, per_ms, per_kib_out] = parts.as_slice() else {
        return Err("four amounts: FIXED,PER_MILLION_FUEL,PER_MS,PER_KIB_OUT".into());
    };
    let tariff = hypervisor_protocol::tariff::Tariff {
        fixed: (*fixed).to_string(),
        per_million_fuel: (*per_million_fuel).to_string(),
        per_ms: (*per_ms).to_string(),
        per_kib_out: (*per_kib_out).to_string(),
    };
    tariff.rates()?;
    Ok(tariff)
}
