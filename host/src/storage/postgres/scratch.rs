//! A throwaway PostgreSQL server for tests, benchmarks and `scripts/cluster.sh`'s users: the
//! installed server binaries (`/usr/lib/postgresql/<version>/bin`, or `HYPERVISOR_PG_BIN`),
//! a cluster initialised in a temporary directory, run as the `postgres` system user when this
//! process is root (PostgreSQL refuses to run as root), listening on a private loopback port
//! only, with `fsync = off` (nothing here outlives the test). Stopped and deleted on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running throwaway server.
pub struct ScratchPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

/// Where the server binaries are: `HYPERVISOR_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin` with `initdb` and `pg_ctl`.
pub fn binaries() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("HYPERVISOR_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    // The effective uid is in /proc/self/status ("Uid: real effective saved fs").
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// `program args…`, as the `postgres` user when root.
fn run(program: &Path, args: &[&str]) -> Result<Output, String> {
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let output = command
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{} {} failed: {}{}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

impl ScratchPostgres {
    /// Initialises and starts a server (about a second).
    ///
    /// # Errors
    /// No server binaries, or initdb or the start failed (the message says which).
    pub fn start() -> Result<Self, String> {
        let bin = binaries().ok_or_else(|| {
            "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin, or HYPERVISOR_PG_BIN)"
                .to_string()
        })?;
        let dir = tempfile::Builder::new()
            .prefix("hypervisor-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        std::fs::create_dir(dir.path().join("sock")).map_err(|e| e.to_string())?;
        if is_root() {
            let chown = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .map_err(|e| e.to_string())?;
            if !chown.success() {
                return Err("cannot give the directory to the postgres user".into());
            }
        }
        let data = dir.path().join("data");
        run(
            &bin.join("initdb"),
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
        )?;
        let scratch = Self {
            dir,
            bin,
            port: free_port()?,
        };
        scratch.start_server()?;
        Ok(scratch)
    }

    /// Starts the server again after [`Self::stop`] (same port, same data).
    ///
    /// # Errors
    /// The start failed.
    pub fn start_server(&self) -> Result<(), String> {
        let options = format!(
            "-h 127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().join("sock").display()
        );
        run(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.dir.path().join("data").to_string_lossy(),
                "-l",
                &self.dir.path().join("log").to_string_lossy(),
                "-w",
                "-o",
                &options,
                "start",
            ],
        )
        .map(|_| ())
    }

    /// Stops the server (fast shutdown: open connections are cut).
    ///
    /// # Errors
    /// The stop failed.
    /// The directory holding the cluster's files (its data directory, logs and socket).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the server.
    ///
    /// # Errors
    /// If `pg_ctl stop` fails.
    pub fn stop(&self) -> Result<(), String> {
        run(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.dir.path().join("data").to_string_lossy(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        )
        .map(|_| ())
    }

    /// Creates database `name`.
    ///
    /// # Errors
    /// `createdb` failed.
    pub fn create_database(&self, name: &str) -> Result<(), String> {
        run(
            &self.bin.join("createdb"),
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                name,
            ],
        )
        .map(|_| ())
    }

    /// Runs `sql` on database `name` with `psql` (unaligned, tuples only): its output.
    ///
    /// # Errors
    /// `psql` failed.
    pub fn psql(&self, name: &str, sql: &str) -> Result<String, String> {
        run(
            &self.bin.join("psql"),
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                name,
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        )
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// A connection URL for database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for ScratchPostgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
