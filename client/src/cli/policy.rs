//! The verification policy options shared by every subcommand that checks evidence, and their
//! translation into a [`Policy`].

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use hypervisor_client::verify::Policy;

/// What a verifier accepts.
#[derive(Args, Clone, Default)]
pub struct PolicyArgs {
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
    /// SEV-SNP: fetch the VCEK from AMD's key distribution service (or a cache of it) at this
    /// URL when no --vcek is given (e.g. https://kdsintf.amd.com).
    #[arg(long, value_name = "URL")]
    kds: Option<String>,
    /// SEV-SNP: the lowest TCB accepted, BOOTLOADER,TEE,SNP,MICROCODE (each component of the
    /// report's reported TCB must be at least this).
    #[arg(long, value_name = "BL,TEE,SNP,UCODE")]
    snp_min_tcb: Option<hypervisor_client::verify::SnpTcb>,
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
    /// Reference value sets (JSON: one set or a list; docs/PROTOCOL.md §12b): the platform's
    /// measurements must match one. Repeatable. The pin that says which code runs.
    #[arg(
        long = "reference-values",
        value_name = "FILE",
        env = "HYPERVISOR_REFERENCE_VALUES"
    )]
    reference_values: Vec<PathBuf>,
    /// Also require the host's claimed binary SHA-256 to be one of these (see `measure`);
    /// repeatable. Not a pin on its own: the host writes this value itself.
    #[arg(
        long,
        value_name = "HEX",
        env = "HYPERVISOR_EXPECT_HOST_MEASUREMENT",
        value_delimiter = ','
    )]
    expect_host_measurement: Vec<String>,
    /// Accept a host whatever it runs when no reference set is pinned. Without one,
    /// verification fails: evidence of an unknown program proves nothing.
    #[arg(long)]
    accept_any_measurement: bool,
    /// Verify as of this Unix time (default: now).
    #[arg(long, value_name = "UNIX_SECONDS")]
    at: Option<u64>,
    /// https:// hosts: accept only this deployment, by its audience (`GET /host`, signed in
    /// the TLS channel binding; shared by a deployment's replicas). Without it, any host
    /// whose evidence passes is accepted.
    #[arg(long, value_name = "HEX", env = "HYPERVISOR_EXPECT_AUDIENCE")]
    expect_audience: Option<String>,
}

impl PolicyArgs {
    pub fn policy(&self) -> anyhow::Result<Policy> {
        let hexarg =
            |name: &str, v: &str| hex::decode(v).with_context(|| format!("{name} is not hex"));
        let mut p = Policy {
            allow_simulated: self.allow_simulated,
            allow_debug: self.allow_debug,
            now: self.at,
            pccs_url: self.pccs.clone(),
            accept_any_measurement: self.accept_any_measurement,
            snp_kds_url: self.kds.clone(),
            min_snp_tcb: self.snp_min_tcb,
            expected_audience: self.expect_audience.clone(),
            ..Policy::default()
        };
        if self.accept_any_measurement {
            eprintln!(
                "WARNING: --accept-any-measurement: the host is accepted whatever program it \
                 runs; its evidence proves only that some TEE signed it"
            );
        }
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
        for f in &self.reference_values {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            p.reference_values.extend(
                hypervisor_protocol::reference::parse_document(&text)
                    .with_context(|| format!("reference values in {}", f.display()))?,
            );
        }
        for v in &self.expect_host_measurement {
            let m = hexarg("--expect-host-measurement", v)?;
            p.expected_host_measurements.push(
                m.try_into()
                    .ok()
                    .context("--expect-host-measurement is 32 bytes")?,
            );
        }
        Ok(p)
    }
}
