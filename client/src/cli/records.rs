//! `hypervisor-client executions [ID]`: the execution records your key may read (those it ran,
//! and those of the agents it owns), signed reads of `GET /executions[/{id}]`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use hypervisor_client::Client;

// The arguments of `executions` (a plain comment: a doc comment would replace the
// subcommand's help text).
#[derive(Args)]
pub struct ExecutionsArgs {
    /// One record: its id (`exec` prints it; an invocation's `execution_id`). Without it, the
    /// records are listed, oldest first.
    pub id: Option<String>,
    /// List the records started since then: a duration ago (`90s`, `10m`, `2h`, `7d`) or Unix
    /// milliseconds.
    #[arg(long, default_value = "1d", value_name = "WHEN")]
    pub since: String,
    /// List at most this many records (1–1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
}

/// Runs `executions`.
pub fn run(
    client: &Client,
    key_path: &Path,
    json: bool,
    args: ExecutionsArgs,
) -> anyhow::Result<ExitCode> {
    let (key, _) = hypervisor_client::keyfile::load_or_create(key_path)?;
    if let Some(id) = &args.id {
        let record = client.execution(&key, id)?;
        if json {
            println!("{record}");
        } else {
            println!("{}", serde_json::to_string_pretty(&record)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let since_ms = since_ms(&args.since, now_ms)?;
    let records = client.executions(&key, since_ms, args.limit)?;
    if json {
        println!("{}", serde_json::json!({ "executions": records }));
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        eprintln!(
            "no execution records since {} for this key",
            super::when::rfc3339(since_ms)
        );
    }
    for r in &records {
        let ended = match (r["status"].as_str(), r["exit_code"].as_i64()) {
            (Some("exited"), Some(code)) => format!("exit {code}"),
            (Some(status), _) => status.to_string(),
            (None, _) => "-".to_string(),
        };
        let what = match r["agent"].as_str() {
            Some(agent) => format!("{agent} v{}", r["agent_version"]),
            None => r["route"].as_str().unwrap_or_default().to_string(),
        };
        println!(
            "{}  {}  {:<28} {:<10} {:>9.1} ms{}",
            super::when::rfc3339(r["started_ms"].as_u64().unwrap_or_default()),
            r["id"].as_str().unwrap_or_default(),
            what,
            ended,
            r["duration_us"].as_f64().unwrap_or_default() / 1000.0,
            r["payment"]
                .as_str()
                .map_or_else(String::new, |p| format!("  paid {p}")),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `--since`: Unix milliseconds, or a duration before `now_ms` (`90s`, `10m`, `2h`, `7d`).
fn since_ms(text: &str, now_ms: u64) -> anyhow::Result<u64> {
    let text = text.trim();
    let bad = || {
        anyhow::anyhow!(
            "--since {text}: give a duration ago (90s, 10m, 2h, 7d) or Unix milliseconds"
        )
    };
    let unit_ms = match text.chars().last() {
        Some('s') => 1_000,
        Some('m') => 60_000,
        Some('h') => 3_600_000,
        Some('d') => 86_400_000,
        Some(c) if c.is_ascii_digit() => return text.parse().map_err(|_| bad()),
        _ => return Err(bad()),
    };
    let count: u64 = text[..text.len() - 1].parse().map_err(|_| bad())?;
    let ago = count.checked_mul(unit_ms).ok_or_else(bad)?;
    Ok(now_ms.saturating_sub(ago))
}

#[cfg(test)]
mod tests {
    use super::since_ms;

    #[test]
    fn since_reads_durations_and_timestamps() {
        let now = 10_000_000_000;
        assert_eq!(since_ms("90s", now).unwrap(), now - 90_000);
        assert_eq!(since_ms("10m", now).unwrap(), now - 600_000);
        assert_eq!(since_ms("2h", now).unwrap(), now - 7_200_000);
        assert_eq!(since_ms("1d", now).unwrap(), now - 86_400_000);
        assert_eq!(since_ms("1234", now).unwrap(), 1234);
        assert_eq!(since_ms("999999d", 5).unwrap(), 0);
        for bad in ["", "m", "5w", "-5s", "1.5h", "18446744073709551615d"] {
            assert!(since_ms(bad, now).is_err(), "{bad}");
        }
    }
}
