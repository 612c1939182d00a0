//! `hypervisor-client mcp list|call`: the host's agents as MCP tools (`POST /mcp`, revision
//! 2026-07-28), as any MCP client sees them.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use hypervisor_client::Client;
use hypervisor_client::x402::Payer;

use super::pay::PayArgs;

/// `mcp` subcommands.
#[derive(Subcommand)]
pub enum McpCommand {
    /// List the tools (`tools/list`).
    List,
    /// Call a tool (`tools/call`) and print its result; exits 1 when the tool reports an error
    /// (`isError`), 2 when the call fails (an unknown tool, a transport error).
    Call {
        /// The tool (an agent's name).
        name: String,
        /// The arguments, a JSON object (the agent's event).
        #[arg(long, default_value = "{}")]
        arguments: String,
        /// Pay a priced tool (the x402 MCP binding) within --max-price.
        #[command(flatten)]
        pay: PayArgs,
    },
}

/// Runs an `mcp` subcommand.
pub fn run(client: &Client, json: bool, command: McpCommand) -> anyhow::Result<ExitCode> {
    match command {
        McpCommand::List => {
            let tools = client.mcp_tools()?;
            if json {
                println!("{}", serde_json::Value::Array(tools));
            } else {
                for t in &tools {
                    println!(
                        "{:<24} {}",
                        t["name"].as_str().unwrap_or_default(),
                        t["description"].as_str().unwrap_or_default()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        McpCommand::Call {
            name,
            arguments,
            pay,
        } => {
            let arguments: serde_json::Value =
                serde_json::from_str(&arguments).context("--arguments is not JSON")?;
            let payment = pay.payer()?;
            let payer = payment
                .as_ref()
                .map(|(wallet, limit)| Payer { wallet, limit });
            let result = client.mcp_call_paying(&name, arguments, payer.as_ref())?;
            let failed = result["isError"] == true;
            if json {
                println!("{result}");
            } else {
                match result.get("structuredContent") {
                    Some(structured) if !failed => {
                        println!("{}", serde_json::to_string_pretty(structured)?);
                    }
                    _ => {
                        for block in result["content"].as_array().into_iter().flatten() {
                            println!("{}", block["text"].as_str().unwrap_or_default());
                        }
                    }
                }
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
