//! The command line's shape: global options and the top-level subcommands.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::a2a::A2aCommand;
use super::agent::AgentCommand;
use super::exec::ExecArgs;
use super::mcp::McpCommand;
use super::policy::PolicyArgs;

#[derive(Parser)]
#[command(
    name = "hypervisor-client",
    version,
    about = "Client for WASM Hypervisor: encrypted execution of WebAssembly components and RISC-V programs"
)]
pub struct Cli {
    /// Server base URL.
    #[arg(
        long,
        env = "HYPERVISOR_URL",
        default_value = "http://127.0.0.1:3000",
        global = true
    )]
    pub server: String,
    /// Private key file (created on first use). Default: $XDG_CONFIG_HOME/wasm-hypervisor/client.key.
    #[arg(long, env = "HYPERVISOR_CLIENT_KEY", global = true)]
    pub key: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Do not bind the TLS channel of an https:// server to its attested key (commands that
    /// verify the host: `attestation`, `exec --verifiable`). INSECURE: a TLS-terminating proxy
    /// in front of the host would go unnoticed, and the certificate must chain to a web root.
    #[arg(long, global = true)]
    pub no_channel_binding: bool,
    /// Trust only the certificate authorities of this PEM file (or the server's own
    /// certificate) for an `https://` server, instead of the web's roots.
    #[arg(long, value_name = "FILE", global = true, conflicts_with = "insecure")]
    pub cacert: Option<PathBuf>,
    /// Do not check an `https://` server's certificate at all. INSECURE: anyone on the way can
    /// read and change the traffic; for a throwaway test server only (warned on every use).
    #[arg(long, global = true)]
    pub insecure: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Check that the server answers.
    Ping,
    /// Make a new agent's project from a template (a Rust command, a Rust wasi:http agent, a
    /// Rust, Python, TypeScript or JavaScript handler agent), with a README on building,
    /// running, deploying and invoking it.
    New(super::new::NewArgs),
    /// Create the key file if missing and print the public key; with `--wallet FILE`, create a
    /// new wallet key file instead (the secp256k1 account that pays: `--pay-with`,
    /// `agent wallet --wallet-key`) and print its address.
    Keygen {
        /// Create a wallet key file here (never overwritten) and print its address.
        #[arg(long, value_name = "FILE")]
        wallet: Option<PathBuf>,
    },
    /// Open a session and print its id and the server's session key.
    Session,
    /// Encrypt and execute a WebAssembly component (or, with --python, a Python script), print
    /// its decrypted output.
    Exec(Box<ExecArgs>),
    /// Read execution records (hashes, times, statuses, commitments; never plaintext): those
    /// your key ran, and those of the agents it owns. With an id, one record.
    Executions(super::records::ExecutionsArgs),
    /// Fetch and verify the host's attestation (GET /attestation). For an https:// URL, also
    /// check that the TLS channel is bound to the attested key (GET /attestation/channel) and
    /// verify the certificate's RA-TLS evidence.
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
        command: AgentCommand,
    },
    /// The host's agents over A2A 1.0: cards (signature checked), messages (paid with x402
    /// when asked), tasks (receipt checked).
    A2a {
        #[command(subcommand)]
        command: A2aCommand,
    },
    /// The host's agents as MCP tools (POST /mcp): list them, call one.
    Mcp {
        #[command(subcommand)]
        command: McpCommand,
    },
    /// Search the deployed agents (ranked full-text search over name, description, tags).
    Search {
        /// Words to look for.
        query: String,
        /// Most results.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Print reference value sets (docs/PROTOCOL.md §12b). With --app-compose: a release's,
    /// computed from what was built (compose hash, the image it pins, the host binary inside
    /// that image, published dstack OS registers): no host is contacted. Without: drafted from
    /// the host's current evidence (its registers, the identity replayed from its event log,
    /// its claimed binary), NOT verified (trust on first use): pin that only after comparing
    /// it with values rebuilt from source or published for the release.
    ReferenceValues {
        /// A name for the set (shown in errors); with --app-compose, a prefix of each set's.
        #[arg(long, default_value = "")]
        name: String,
        /// The exact app-compose.json a dstack app is deployed with (deploy/dstack/).
        #[arg(long)]
        app_compose: Option<PathBuf>,
        /// With --app-compose: scripts/reproducible-image.sh's output directory (target/image:
        /// binaries/ and the OCI layout/); the compose file must pin that image.
        #[arg(long, requires = "app_compose", conflicts_with = "host_binary")]
        build: Option<PathBuf>,
        /// With --app-compose, instead of --build: the host binary.
        #[arg(long, requires = "app_compose")]
        host_binary: Option<PathBuf>,
        /// With --app-compose: the table of dstack OS images and VM shapes.
        #[arg(long, default_value = "deploy/dstack/os-measurements.json")]
        os_measurements: PathBuf,
        /// With --app-compose: only this table entry (repeatable; default: every entry).
        #[arg(long, requires = "app_compose")]
        os: Vec<String>,
    },
    /// Print the SHA-256 of files a verifier should pin: the host binary (a reference set's
    /// `host_measurements`) and components (the receipts' `program_sha256`).
    Measure {
        /// Files to measure.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// `--program-kind`: what a program file is (the host recognises it when not given).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ProgramKindArg {
    /// A WebAssembly component.
    Wasm,
    /// A RISC-V ELF file (built for PolkaVM's target, guests/riscv-sdk).
    Riscv,
}

impl From<ProgramKindArg> for hypervisor_protocol::wire::ProgramKind {
    fn from(kind: ProgramKindArg) -> Self {
        match kind {
            ProgramKindArg::Wasm => Self::Wasm,
            ProgramKindArg::Riscv => Self::Riscv,
        }
    }
}
