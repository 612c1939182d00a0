//! `hypervisor-client agent logs NAME [--follow]`: the owner reads an agent's stderr, and with
//! `--follow` keeps reading, printing each entry once, as `tail -f` does.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use hypervisor_client::Client;
use hypervisor_protocol::ClientSecret;

/// How often `--follow` asks.
const POLL: Duration = Duration::from_secs(1);

/// The host returns the newest 100 entries: remembering a few more ids than that is enough to
/// print each entry once.
const REMEMBERED: usize = 512;

/// Runs `agent logs`.
pub fn run(
    client: &Client,
    owner: &ClientSecret,
    name: &str,
    json: bool,
    follow: bool,
) -> anyhow::Result<()> {
    let mut seen = Seen::default();
    loop {
        let logs = client.agent_logs(owner, name)?;
        let entries = logs["logs"].as_array().cloned().unwrap_or_default();
        if !follow && json {
            println!("{logs}");
            return Ok(());
        }
        for entry in entries {
            let id = entry["execution_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if !seen.insert(id.clone()) {
                continue;
            }
            if json {
                // One entry a line, so a reader can consume the stream as it comes.
                println!("{entry}");
            } else {
                let text = entry["stderr"].as_str().unwrap_or_default();
                println!(
                    "[{} {id}] {}",
                    super::when::rfc3339(entry["at_ms"].as_u64().unwrap_or_default()),
                    text.trim_end_matches('\n')
                );
            }
        }
        if !follow {
            return Ok(());
        }
        std::io::Write::flush(&mut std::io::stdout())?;
        std::thread::sleep(POLL);
    }
}

/// The ids printed, the oldest forgotten first.
#[derive(Default)]
struct Seen {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    /// Whether `id` is new (and remembers it).
    fn insert(&mut self, id: String) -> bool {
        if !self.set.insert(id.clone()) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_id_is_new_once_and_old_ones_are_forgotten() {
        let mut seen = super::Seen::default();
        assert!(seen.insert("a".into()));
        assert!(!seen.insert("a".into()));
        for i in 0..super::REMEMBERED {
            assert!(seen.insert(i.to_string()));
        }
        assert_eq!(seen.order.len(), super::REMEMBERED);
        assert!(
            seen.insert("a".into()),
            "forgotten after REMEMBERED newer ids"
        );
    }
}
