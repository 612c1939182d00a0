//! A local EVM chain with a real USDC contract and a real x402 facilitator, all on loopback and
//! started by the test itself (the scripts live in `tests/interop/x402-official/`):
//! - anvil (npm `@foundry-rs/anvil`) with chain id 84532 (Base Sepolia's, so both x402 network
//!   names apply);
//! - Circle's FiatTokenV2_2 deployed from its published bytecode (`deploy.mjs`), 100 USDC minted
//!   to a payer;
//! - the official x402 facilitator packages from npm serving `/verify` and `/settle`
//!   (`facilitator.mjs`), paying gas from their own account.
//!
//! Everything is killed on drop.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The Node project with the chain scripts and the official x402 packages.
pub fn interop_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/x402-official")
}

/// A child process killed (and reaped) on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Who is who on the local chain.
#[derive(Debug, Clone)]
pub struct Accounts {
    /// The FiatTokenV2_2 (proxy) address.
    pub token: String,
    /// Holds 100 USDC.
    pub payer: String,
    /// The payer's private key (hex).
    pub payer_key: String,
    /// The operator's address, where payments go.
    pub pay_to: String,
}

/// anvil + USDC + facilitator.
pub struct LocalChain {
    /// The chain's JSON-RPC URL.
    pub rpc: String,
    /// The facilitator's base URL.
    pub facilitator_url: String,
    /// The deployed accounts.
    pub accounts: Accounts,
    facilitator_key: String,
    facilitator: Option<Process>,
    /// Whether the facilitator also serves the `upto` scheme ([`Self::start_upto`]).
    upto: bool,
    _anvil: Process,
    /// Holds the facilitator's log.
    logs: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn node(script: &str) -> Command {
    let mut c = Command::new("node");
    c.arg(interop_dir().join(script));
    c
}

fn run_node(args: &mut Command) -> String {
    let out = args.output().expect("run node");
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

impl LocalChain {
    /// The host configuration that takes payments on this chain through its facilitator,
    /// paying `pay_to` in the deployed token.
    pub fn payments_table(&self) -> String {
        format!(
            "[payments]\nenabled = true\ncomponent = {:?}\nmode = \"facilitator\"\nfacilitator_url = {:?}\n\
             [payments.price]\npay_to = {:?}\nasset = {:?}\n",
            crate::harness::wasm_path("payments").display().to_string(),
            self.facilitator_url,
            self.accounts.pay_to,
            self.accounts.token,
        )
    }

    /// Starts anvil, deploys USDC, starts the facilitator.
    pub fn start() -> Self {
        let dir = interop_dir();
        let anvil_bin = dir.join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
        assert!(
            anvil_bin.is_file(),
            "{} is missing: run `npm ci --ignore-scripts` in {} (scripts/test.sh does)",
            anvil_bin.display(),
            dir.display()
        );
        let port = free_port();
        let anvil = Process(
            Command::new(&anvil_bin)
                .args([
                    "--chain-id",
                    "84532",
                    "--port",
                    &port.to_string(),
                    "--silent",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn anvil"),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "anvil did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let rpc = format!("http://127.0.0.1:{port}");
        let deployed: Value =
            serde_json::from_str(run_node(node("deploy.mjs").args(["--rpc", &rpc])).trim())
                .expect("deploy.mjs prints one JSON line");
        let text = |k: &str| deployed[k].as_str().expect(k).to_string();
        let accounts = Accounts {
            token: text("token"),
            payer: deployed["payer"]["address"].as_str().expect("payer").into(),
            payer_key: deployed["payer"]["private_key"]
                .as_str()
                .expect("payer key")
                .into(),
            pay_to: text("pay_to"),
        };
        let facilitator_key = text("facilitator_key");
        let mut chain = Self {
            rpc,
            facilitator_url: String::new(),
            accounts,
            facilitator_key,
            facilitator: None,
            upto: false,
            _anvil: anvil,
            logs: tempfile::tempdir().expect("tempdir"),
        };
        chain.start_facilitator(0);
        chain
    }

    /// [`Self::start`], with Permit2 and the x402 upto proxy placed at their canonical
    /// addresses (`upto-contracts.mjs`) and a facilitator that also settles `upto`.
    pub fn start_upto() -> Self {
        let mut chain = Self::start();
        let placed: Value = serde_json::from_str(
            run_node(node("upto-contracts.mjs").args(["--rpc", &chain.rpc])).trim(),
        )
        .expect("upto-contracts.mjs prints one JSON line");
        assert_eq!(placed["upto_proxy"]["canonical"], true, "{placed}");
        chain.upto = true;
        chain.start_facilitator(0);
        chain
    }

    /// The facilitator's address (its `/supported` `extra.facilitatorAddress` for `upto`).
    pub fn facilitator_address(&self) -> String {
        let secret: [u8; 32] = hex::decode(self.facilitator_key.trim_start_matches("0x"))
            .expect("hex key")
            .try_into()
            .expect("32 bytes");
        hypervisor_client::x402::Wallet::from_bytes(&secret)
            .expect("a key")
            .address()
            .to_checksum(None)
    }

    /// Runs a script of the official x402 packages (`tests/interop/x402-official`) and parses
    /// the JSON line it prints.
    pub fn run_script(&self, script: &str, args: &[&str]) -> Value {
        Self::run_script_without_chain(script, args)
    }

    /// [`Self::run_script`] for a script that needs no chain (a verify-only host's payer).
    pub fn run_script_without_chain(script: &str, args: &[&str]) -> Value {
        serde_json::from_str(run_node(node(script).args(args)).trim())
            .unwrap_or_else(|e| panic!("{script} prints one JSON line: {e}"))
    }

    /// Starts the facilitator on `port` (0: any free port).
    fn start_facilitator(&mut self, port: u16) {
        self.facilitator = None;
        let mut child = node("facilitator.mjs")
            .args(["--rpc", &self.rpc, "--key", &self.facilitator_key])
            .args(["--upto", if self.upto { "true" } else { "false" }])
            .args(["--port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.logs.path().join("facilitator.log"))
                    .expect("facilitator log"),
            )
            .spawn()
            .expect("spawn the facilitator");
        let stdout = child.stdout.take().expect("stdout");
        let process = Process(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        self.facilitator_url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the facilitator did not start");
        self.facilitator = Some(process);
    }

    /// Starts the facilitator again at the URL it had before [`Self::stop_facilitator`].
    pub fn restart_facilitator_at(&mut self, url: &str) {
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .expect("a facilitator URL with a port");
        self.start_facilitator(port);
        assert_eq!(self.facilitator_url, url);
    }

    /// What the facilitator logged (one line per request).
    pub fn facilitator_log(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("facilitator.log")).unwrap_or_default()
    }

    /// The facilitator's process id (to pause it with SIGSTOP).
    pub fn facilitator_pid(&self) -> u32 {
        self.facilitator
            .as_ref()
            .map(|p| p.0.id())
            .expect("the facilitator is running")
    }

    /// Stops the facilitator (its URL now refuses connections).
    pub fn stop_facilitator(&mut self) {
        self.facilitator = None;
    }

    /// The token balance of `address`, atomic units.
    pub fn balance(&self, address: &str) -> u128 {
        run_node(node("balance.mjs").args([
            "--rpc",
            &self.rpc,
            "--token",
            &self.accounts.token,
            "--address",
            address,
        ]))
        .trim()
        .parse()
        .expect("balance.mjs prints a number")
    }
}
