//! `hypervisor-client a2a card|send|get|cancel`: the host's agents over A2A 1.0
//! (`docs/PROTOCOL.md` §21), as any A2A client sees them, with the card's signature and each
//! task's receipt checked against the host's verified signing key.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use hypervisor_client::Client;
use hypervisor_client::a2a::{Caller, Content, verify_card, verify_task_receipt};
use hypervisor_client::verify::{self, VerifiedKey};
use hypervisor_client::x402::Payer;
use serde_json::Value;

use super::pay::PayArgs;
use super::policy::PolicyArgs;

/// Who the client is to the A2A front.
#[derive(Args, Clone, Default)]
pub struct CallerArgs {
    /// A secret naming the caller (sent as `Authorization: Bearer`): tasks are visible only to
    /// the secret that created them. Without it the caller is anonymous.
    #[arg(long, value_name = "SECRET", env = "HYPERVISOR_A2A_SECRET")]
    caller: Option<String>,
}

/// `a2a` subcommands.
#[derive(Subcommand)]
pub enum A2aCommand {
    /// Fetch an agent's card (or the host's, without AGENT) and check its signature against
    /// the host's verified signing key.
    Card {
        /// The agent (omit for the host's card).
        agent: Option<String>,
        #[command(flatten)]
        policy: PolicyArgs,
        #[command(flatten)]
        unattested: UnattestedArgs,
    },
    /// Send a message to an agent and print the task when it ends (paying a priced agent with
    /// --pay-with, within --max-price); the task's receipt is checked. Exits 1 when the task
    /// does not complete.
    Send {
        /// The agent.
        agent: String,
        /// A text part (a handler's event `{"text": …}`, a CLI agent's stdin).
        #[arg(long, conflicts_with = "data", required_unless_present = "data")]
        text: Option<String>,
        /// A data part, JSON (a handler's event).
        #[arg(long)]
        data: Option<String>,
        #[command(flatten)]
        caller: CallerArgs,
        #[command(flatten)]
        pay: PayArgs,
        #[command(flatten)]
        policy: PolicyArgs,
        #[command(flatten)]
        unattested: UnattestedArgs,
    },
    /// Print a task.
    Get {
        /// The agent.
        agent: String,
        /// The task id.
        id: String,
        #[command(flatten)]
        caller: CallerArgs,
    },
    /// Cancel a task that has not finished.
    Cancel {
        /// The agent.
        agent: String,
        /// The task id.
        id: String,
        #[command(flatten)]
        caller: CallerArgs,
    },
}

/// Whether a host without attestation is expected (a development host).
#[derive(Args, Clone, Default)]
pub struct UnattestedArgs {
    /// A host without an attestation provider is expected (a development host outside a
    /// TEE): its cards are unsigned and its tasks carry no receipt, and the client says so
    /// in the output instead of warning.
    #[arg(long)]
    allow_unattested: bool,
}

/// The host's signing key, its evidence verified under `policy`; `None` on a host without an
/// attestation provider, whose cards are unsigned and tasks carry no receipt (a warning,
/// unless `--allow-unattested` says it is expected).
fn host_key(
    client: &Client,
    policy: &PolicyArgs,
    unattested: &UnattestedArgs,
) -> anyhow::Result<Option<VerifiedKey>> {
    let (provider, attestation) = client.attestation()?;
    let Some(attestation) = attestation else {
        if !unattested.allow_unattested {
            eprintln!(
                "WARNING: the host has no attestation provider ({provider}): nothing it says is \
                 verified (unsigned cards, no receipts); --allow-unattested if that is expected"
            );
        }
        return Ok(None);
    };
    let key = verify::verify_attestation(&attestation, &policy.policy()?)?;
    if key.simulated {
        eprintln!(
            "WARNING: the host's evidence is SIMULATED. It proves nothing about where code runs."
        );
    }
    Ok(Some(key))
}

/// Runs an `a2a` subcommand.
pub fn run(client: &Client, json: bool, command: A2aCommand) -> anyhow::Result<ExitCode> {
    match command {
        A2aCommand::Card {
            agent,
            policy,
            unattested,
        } => {
            let card = client.a2a_card(agent.as_deref())?;
            let key = host_key(client, &policy, &unattested)?;
            if let Some(key) = &key {
                verify_card(&card, key)?;
            }
            if json {
                println!("{card}");
            } else {
                println!(
                    "{}  (version {})",
                    card["name"].as_str().unwrap_or_default(),
                    card["version"].as_str().unwrap_or_default()
                );
                for i in card["supportedInterfaces"].as_array().into_iter().flatten() {
                    println!(
                        "interface         {} {} {}",
                        i["protocolBinding"].as_str().unwrap_or_default(),
                        i["protocolVersion"].as_str().unwrap_or_default(),
                        i["url"].as_str().unwrap_or_default()
                    );
                }
                for s in card["skills"].as_array().into_iter().flatten() {
                    println!("skill             {}", s["id"].as_str().unwrap_or_default());
                }
                match &key {
                    Some(key) => println!(
                        "verified          card signed by the attested key {} ({})",
                        key.signing_key.to_hex(),
                        key.tee
                    ),
                    None => println!("unverified        the card is not signed"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        A2aCommand::Send {
            agent,
            text,
            data,
            caller,
            pay,
            policy,
            unattested,
        } => {
            let content = match (text, data) {
                (Some(t), _) => Content::Text(t),
                (None, Some(d)) => {
                    Content::Data(serde_json::from_str(&d).context("--data is not JSON")?)
                }
                (None, None) => anyhow::bail!("give --text or --data"),
            };
            let key = host_key(client, &policy, &unattested)?;
            let payment = pay.payer()?;
            let payer = payment
                .as_ref()
                .map(|(wallet, limit)| Payer { wallet, limit });
            let task = client.a2a_send(&agent, &Caller(caller.caller), &content, payer.as_ref())?;
            let receipt = match key.as_ref().map(|k| verify_task_receipt(&task, k)) {
                None => false,
                Some(Ok(_)) => true,
                // A task that did not run (waiting for payment, refused) has none.
                Some(Err(_)) if task["metadata"].get("wasm-hypervisor/receipt").is_none() => false,
                Some(Err(e)) => return Err(e).context("the task's receipt does not check"),
            };
            print_task(&task, json, receipt);
            Ok(exit(&task))
        }
        A2aCommand::Get { agent, id, caller } => {
            let task = client.a2a_get(&agent, &Caller(caller.caller), &id)?;
            print_task(&task, json, false);
            Ok(ExitCode::SUCCESS)
        }
        A2aCommand::Cancel { agent, id, caller } => {
            let task = client.a2a_cancel(&agent, &Caller(caller.caller), &id)?;
            print_task(&task, json, false);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn exit(task: &Value) -> ExitCode {
    if task["status"]["state"] == "TASK_STATE_COMPLETED" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_task(task: &Value, json: bool, receipt_checked: bool) {
    if json {
        println!("{task}");
        return;
    }
    let status = &task["status"];
    println!(
        "task              {}",
        task["id"].as_str().unwrap_or_default()
    );
    println!(
        "state             {}",
        status["state"].as_str().unwrap_or_default()
    );
    for part in status["message"]["parts"].as_array().into_iter().flatten() {
        if let Some(t) = part["text"].as_str() {
            println!("message           {t}");
        }
    }
    let meta = &status["message"]["metadata"];
    if let Some(p) = meta["x402.payment.status"].as_str() {
        println!("payment           {p}");
    }
    if let Some(e) = meta["x402.payment.error"].as_str() {
        println!("payment error     {e}");
    }
    for artifact in task["artifacts"].as_array().into_iter().flatten() {
        for part in artifact["parts"].as_array().into_iter().flatten() {
            match (part.get("data"), part.get("text")) {
                (Some(d), _) => println!("{}", serde_json::to_string_pretty(d).unwrap_or_default()),
                (None, Some(t)) => println!("{}", t.as_str().unwrap_or_default()),
                _ => {}
            }
        }
    }
    if receipt_checked {
        println!("verified          receipt: the attested key signed this run of this task");
    }
}
