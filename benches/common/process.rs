//! Server processes for the benchmarks: configure and start the release binary (or another
//! server), read its address, its CPU time and resident memory from `/proc`, stop it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The server binary: `HYPERVISOR_BIN`, else the release binary cargo built for this benchmark.
pub fn hypervisor_bin() -> String {
    std::env::var("HYPERVISOR_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_hypervisor").into())
}

/// A server process, killed when dropped.
pub struct Server {
    /// The process.
    pub child: Child,
    /// `http://IP:PORT`.
    pub base: String,
    /// From spawn to the announcement of the listening address.
    pub ready_after: Duration,
}

impl Server {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU time of the whole process so far.
    pub fn cpu_time(&self) -> Duration {
        cpu_time_of(&self.pid().to_string())
    }

    /// SIGTERM, then waits for the exit; returns how long it took.
    pub fn stop(mut self) -> Duration {
        let t = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let _ = self.child.wait();
        t.elapsed()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User + system CPU time of process `pid` (or `self`) so far, all threads.
pub fn cpu_time_of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of proc(5) (utime, stime), counted from `state` (field 3).
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / clock_ticks())
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Reads `stream` until a line containing `marker`, returns what follows it on that line, and
/// keeps draining the stream in the background (a full pipe would block the server).
pub fn wait_for_line(stream: impl Read + Send + 'static, marker: &str, what: &str) -> String {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "{what} exited before announcing its address");
        if let Some(at) = line.find(marker) {
            let rest = line[at + marker.len()..].trim().trim_end_matches('/');
            let rest = rest.to_string();
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
            return rest;
        }
    }
}

/// Spawns `command` (stdin closed; exactly one of stdout and stderr piped, the other sent to
/// a log) and waits until the piped stream announces the listening address after `marker`.
/// `what` names the server in the panic if it exits before that.
pub fn spawn_server(command: &mut Command, marker: &str, what: &str) -> Server {
    let t = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", command.get_program().display()));
    let announcements: Box<dyn Read + Send> = match (child.stdout.take(), child.stderr.take()) {
        (Some(stdout), None) => Box::new(stdout),
        (None, Some(stderr)) => Box::new(stderr),
        _ => panic!("{what}: pipe exactly one of stdout and stderr"),
    };
    let addr = wait_for_line(announcements, marker, what);
    Server {
        child,
        base: format!("http://{addr}"),
        ready_after: t.elapsed(),
    }
}

/// Writes a server configuration for `data_dir` next to it (`<data_dir>.toml`): loopback, any
/// port, data in `data_dir`, then `rest` (TOML); returns its path.
pub fn write_config(data_dir: &Path, rest: &str) -> PathBuf {
    let path = data_dir.with_extension("toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n{rest}",
            data_dir.display().to_string()
        ),
    )
    .unwrap();
    path
}

/// Starts `hypervisor serve --config <config>`; its log goes to `<config>.log`.
pub fn start_hypervisor(config: &Path) -> Server {
    start_hypervisor_bin(&hypervisor_bin(), config)
}

/// [`start_hypervisor`] with the binary `bin` (a baseline build to compare with).
pub fn start_hypervisor_bin(bin: &str, config: &Path) -> Server {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.with_extension("log"))
        .unwrap();
    spawn_server(
        Command::new(bin)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(log),
        "hypervisor listening on http://",
        "hypervisor",
    )
}

/// Resident memory of process `pid` (`VmRSS`), bytes.
pub fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Samples the resident memory of `pid` every `every` until `stop`; the thread returns the
/// samples.
pub fn sample_rss(pid: u32, every: Duration, stop: Arc<AtomicBool>) -> JoinHandle<Vec<u64>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            out.push(rss_of(pid));
            std::thread::sleep(every);
        }
        out
    })
}
