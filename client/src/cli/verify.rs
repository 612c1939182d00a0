//! `attestation`, `verify`, `verify-evidence` and `measure`: check the host's evidence, a proof
//! bundle or raw hardware evidence against a policy, and print the hashes a verifier pins.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use hypervisor_client::Client;
use hypervisor_client::proof::Proof;
use hypervisor_client::verify::{self, VerifiedKey};

use super::policy::PolicyArgs;

/// `hypervisor-client attestation`: fetch and verify the host's attestation; for an
/// `https://` host (through a client made with the channel binding) also report what the
/// binding of the connection established.
pub fn attestation(client: &Client, policy: &PolicyArgs, json: bool) -> anyhow::Result<ExitCode> {
    let policy = policy.policy()?;
    let (provider, att) = client.attestation()?;
    let Some(att) = att else {
        anyhow::bail!("the host has no attestation provider (provider: {provider})");
    };
    let key = verify::verify_attestation(&att, &policy)?;
    let channel = client.channel();
    if json {
        let channel = channel.as_ref().map(|c| {
            serde_json::json!({
                "signing_key": hex::encode(c.key.signing_key.as_bytes()),
                "certificate_sha256": hex::encode(c.certificate_sha256),
                "certificate_generated": c.certificate_generated,
                "certificate_evidence": c.certificate_evidence.as_ref().map(key_json),
            })
        });
        println!(
            "{}",
            serde_json::json!({"key": key_json(&key), "channel": channel})
        );
    } else {
        print_key(&key);
        println!("verified          evidence → signing key binding");
        if let Some(c) = &channel {
            println!("tls certificate   {}", hex::encode(c.certificate_sha256));
            println!(
                "verified          TLS exporter of this connection + nonce + certificate, signed by {}",
                hex::encode(c.key.signing_key.as_bytes())
            );
            match &c.certificate_evidence {
                Some(_) => println!(
                    "verified          certificate's RA-TLS evidence → its public key + the signing key"
                ),
                None => println!(
                    "note              the certificate is the operator's (its key is outside the TEE); the channel binding alone authenticates the host"
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `hypervisor-client verify PROOF`: check a proof bundle offline.
pub fn proof(proof: &Path, policy: &PolicyArgs, json: bool) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(proof).with_context(|| format!("reading {}", proof.display()))?;
    let bundle: Proof = serde_json::from_str(&text).context("not a proof bundle")?;
    let key = bundle.verify(&policy.policy()?)?;
    if json {
        println!(
            "{}",
            serde_json::json!({"verified": true, "key": key_json(&key), "receipt": bundle.receipt})
        );
    } else {
        print_key(&key);
        println!("program           {}", bundle.receipt.program_sha256);
        println!("commitment        {}", bundle.receipt.result_commitment);
        println!("verified          evidence → key → session → receipt → result commitment");
    }
    Ok(ExitCode::SUCCESS)
}

/// `hypervisor-client verify-evidence`: check a TDX quote or an SEV-SNP report offline and
/// print its claims.
pub fn evidence(
    tdx_quote: Option<PathBuf>,
    snp_report: Option<PathBuf>,
    policy: &PolicyArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let policy = policy.policy()?;
    if !policy.reference_values.is_empty() {
        anyhow::bail!(
            "verify-evidence checks raw evidence against the vendor's root only: without the \
             event log it cannot check --reference-values; verify the host's attestation \
             (`attestation`) or a proof (`verify`) against them instead"
        );
    }
    let claims = if let Some(q) = tdx_quote {
        let quote = std::fs::read(&q).with_context(|| format!("reading {}", q.display()))?;
        let c = match (&policy.tdx_collateral, &policy.pccs_url) {
            (Some(collateral), _) => verify::verify_tdx_quote(&quote, collateral, &policy)?,
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
        let report = std::fs::read(&r).with_context(|| format!("reading {}", r.display()))?;
        let vcek = match (&policy.snp_vcek, &policy.snp_kds_url) {
            (Some(vcek), _) => vcek.clone(),
            (None, Some(kds)) => verify::fetch_vcek(kds, &report)?,
            (None, None) => anyhow::bail!("--vcek FILE or --kds URL is required for an SNP report"),
        };
        let c = verify::verify_snp_report(&report, &vcek, &policy)?;
        serde_json::json!({
            "tee": "sev-snp", "product": c.product, "report_data": hex::encode(c.report_data),
            "measurement": hex::encode(c.measurement), "debug_allowed": c.debug_allowed,
            "reported_tcb": c.reported_tcb.to_string(),
            "min_tcb": policy.min_snp_tcb.map(|t| t.to_string()),
        })
    } else {
        anyhow::bail!("give --tdx-quote FILE or --snp-report FILE");
    };
    if json {
        println!("{claims}");
    } else {
        println!("{}", serde_json::to_string_pretty(&claims)?);
        println!("verified against the vendor's root");
    }
    Ok(ExitCode::SUCCESS)
}

/// `hypervisor-client reference-values`: a reference set drafted from the host's evidence.
pub fn reference_values(client: &Client, name: &str) -> anyhow::Result<ExitCode> {
    let (provider, att) = client.attestation()?;
    let Some(att) = att else {
        anyhow::bail!("the host has no attestation provider (provider: {provider})");
    };
    let measured = verify::measured_unverified(&att)?;
    let set = hypervisor_protocol::reference::ReferenceValues::from_measured(name, &measured);
    if let Err(e) = set.decode(0) {
        anyhow::bail!("the host's evidence cannot make a reference set: {e}");
    }
    eprintln!(
        "NOTE: drafted from evidence that was NOT verified (trust on first use); compare it with \
         values rebuilt from source before pinning it{}",
        if measured.tee == "simulated" {
            ". The evidence is SIMULATED: it proves nothing"
        } else {
            ""
        }
    );
    println!("{}", serde_json::to_string_pretty(&set)?);
    Ok(ExitCode::SUCCESS)
}

/// `hypervisor-client measure FILE…`: the SHA-256 of each file.
pub fn measure(files: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    for f in files {
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        out.push((
            f.display().to_string(),
            hex::encode(hypervisor_protocol::sha256(&bytes)),
        ));
    }
    if json {
        let map: serde_json::Map<_, _> = out.into_iter().map(|(k, v)| (k, v.into())).collect();
        println!("{}", serde_json::Value::Object(map));
    } else {
        for (name, h) in out {
            println!("{h}  {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
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
    if !key.advisory_ids.is_empty() {
        println!("advisories        {}", key.advisory_ids.join(", "));
    }
    println!("evidence sha256   {}", hex::encode(key.evidence_sha256));
    match &key.reference {
        Some(r) => println!("reference set     {r} (platform measurements and app identity match)"),
        None => eprintln!(
            "WARNING: no reference set pinned (--accept-any-measurement): which code runs is unknown"
        ),
    }
}

fn key_json(key: &VerifiedKey) -> serde_json::Value {
    serde_json::json!({
        "tee": key.tee,
        "simulated": key.simulated,
        "signing_key": key.signing_key.to_hex(),
        "host_measurement": hex::encode(key.host_measurement),
        "tcb_status": key.tcb_status,
        "advisory_ids": key.advisory_ids,
        "platform_measurement": key.platform_measurement,
        "evidence_sha256": hex::encode(key.evidence_sha256),
        "reference": key.reference,
        "compose_hash": key.measured.compose_hash.as_ref().map(hex::encode),
        "host_event": key.measured.host_event.map(hex::encode),
    })
}
