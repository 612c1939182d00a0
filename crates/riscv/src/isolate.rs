//! Linking in a child process. PolkaVM's linker trusts its input: on a malformed ELF file it
//! panics (found by `fuzz/fuzz_targets/riscv_program.rs` within seconds, e.g. `unable to map
//! section index`), and nothing promises that it cannot also overflow its stack, abort, loop or
//! take all memory, none of which `catch_unwind` contains. So the host links in a short-lived
//! child process of its own binary: it reads the ELF on standard input and writes the blob (or
//! why not) on standard output, under a data limit (`RLIMIT_DATA`) and a CPU-time limit
//! (`RLIMIT_CPU`), both set before it starts, and a wall-clock timeout. A crash costs the
//! request a refusal, never the host.
//!
//! The child's answer on standard output: `0x00` and the blob, or `0x01` and the linker's
//! error (UTF-8). Its exit code is 0 either way; anything else (a signal, a limit, a panic) is
//! a crash.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use std::os::unix::process::CommandExt;

use rustix::process::{Pid, Resource, Rlimit};

#[cfg(feature = "link")]
use crate::program::link;
use crate::program::{IntakeError, check_elf_header};

/// The child side: reads an ELF file on standard input (at most `max_elf_bytes`), links it,
/// answers on standard output. Call it first thing in `main` when the process was started as
/// the linker.
#[cfg(feature = "link")]
pub fn serve_link_request(max_elf_bytes: u64) -> std::process::ExitCode {
    let mut elf = Vec::new();
    if std::io::stdin()
        .take(max_elf_bytes.saturating_add(1))
        .read_to_end(&mut elf)
        .is_err()
    {
        return std::process::ExitCode::from(3);
    }
    let answer = if elf.len() as u64 > max_elf_bytes {
        Err(IntakeError::Link(format!(
            "the file is larger than {max_elf_bytes} bytes"
        )))
    } else {
        link(&elf)
    };
    let mut out = std::io::stdout().lock();
    let written = match answer {
        Ok(blob) => out.write_all(&[0]).and_then(|()| out.write_all(&blob)),
        Err(e) => out
            .write_all(&[1])
            .and_then(|()| out.write_all(e.to_string().as_bytes())),
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) => std::process::ExitCode::from(3),
    }
}

/// The limits of one linking child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkLimits {
    /// Wall-clock time before the child is killed.
    pub timeout: Duration,
    /// CPU seconds (`RLIMIT_CPU`).
    pub cpu_seconds: u64,
    /// Data bytes the child may map beyond what it has when it starts (`RLIMIT_DATA`), plus
    /// this many times the ELF file's size.
    pub data_bytes: u64,
    /// Per byte of ELF file.
    pub data_per_elf_byte: u64,
}

impl Default for LinkLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            cpu_seconds: 20,
            data_bytes: 256 << 20,
            data_per_elf_byte: 32,
        }
    }
}

/// Links in a child process: `program args…` must run [`serve_link_request`].
#[derive(Debug, Clone)]
pub struct IsolatedLinker {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// The child's limits.
    pub limits: LinkLimits,
}

impl IsolatedLinker {
    /// Links `elf` in a child process.
    ///
    /// # Errors
    /// [`IntakeError::NotElf`] or [`IntakeError::OtherMachine`] (checked here, before any child
    /// starts), [`IntakeError::Link`] when the linker refused the file, crashed on it, or passed
    /// a limit. `Err(String)` in the outer result when no child could be started or spoken to
    /// (a host-side failure).
    pub fn link(&self, elf: &[u8]) -> Result<Result<Vec<u8>, IntakeError>, String> {
        if let Err(e) = check_elf_header(elf) {
            return Ok(Err(e));
        }
        let data = self.limits.data_bytes.saturating_add(
            self.limits
                .data_per_elf_byte
                .saturating_mul(elf.len() as u64),
        );
        let cpu = self.limits.cpu_seconds;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .env_clear();
        // The limits hold from the child's first instruction: set after it started, they came
        // after its allocator had reserved (and counted) more than the data limit, and its next
        // allocation failed (an abort, seen under load).
        //
        // SAFETY: the closure runs in the forked child before `exec`; it only makes two
        // `setrlimit` system calls (no allocation, no lock), which is async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                set_own_limit(Resource::Cpu, cpu)?;
                set_own_limit(Resource::Data, data)
            });
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start the linker ({}): {e}", self.program.display()))?;
        let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the linker's pipes are missing".into());
        };
        let pid = i32::try_from(child.id())
            .ok()
            .and_then(Pid::from_raw)
            .ok_or("the linker's process id is not valid")?;

        // The killer: past the timeout, the child is killed; it cannot have been reaped yet,
        // since this thread waits for it only after the killer has ended.
        let (done, timed) = mpsc::channel::<()>();
        let timeout = self.limits.timeout;
        let killer = std::thread::spawn(move || {
            if timed.recv_timeout(timeout) == Err(mpsc::RecvTimeoutError::Timeout) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                return true;
            }
            false
        });
        let input = elf.to_vec();
        let writer = std::thread::spawn(move || {
            // A child that dies before reading it all closes the pipe: not an error here.
            let _ = stdin.write_all(&input);
        });
        let mut answer = Vec::new();
        // The blob is smaller than the ELF file: four times its size is far above any answer.
        let most = (elf.len() as u64).saturating_mul(4).saturating_add(1 << 20);
        let read = (&mut stdout).take(most).read_to_end(&mut answer);
        let _ = done.send(());
        let killed = killer.join().unwrap_or(true);
        let _ = writer.join();
        let status = child
            .wait()
            .map_err(|e| format!("cannot wait for the linker: {e}"))?;
        if killed {
            return Ok(Err(IntakeError::Link(format!(
                "the linker did not finish within {timeout:?}"
            ))));
        }
        if read.is_err() || !status.success() {
            use std::os::unix::process::ExitStatusExt;
            let how = match (status.signal(), status.code()) {
                (Some(9), _) => "was killed (a limit of its memory or CPU time)".to_string(),
                (Some(signal), _) => format!("crashed (signal {signal})"),
                (None, Some(code)) => format!("failed (exit code {code})"),
                (None, None) => "failed".to_string(),
            };
            return Ok(Err(IntakeError::Link(format!(
                "the linker {how} on this file"
            ))));
        }
        Ok(decode_answer(&answer))
    }
}

/// Sets this process's `resource` limit (soft and hard) to `value`.
fn set_own_limit(resource: Resource, value: u64) -> std::io::Result<()> {
    rustix::process::setrlimit(
        resource,
        Rlimit {
            current: Some(value),
            maximum: Some(value),
        },
    )
    .map_err(std::io::Error::from)
}

/// Reads a child's answer (see the module documentation).
///
/// # Errors
/// [`IntakeError::Link`] for the linker's refusal, or an answer that is neither.
pub fn decode_answer(answer: &[u8]) -> Result<Vec<u8>, IntakeError> {
    match answer.split_first() {
        Some((0, blob)) => Ok(blob.to_vec()),
        Some((1, message)) => Err(IntakeError::Link(
            String::from_utf8_lossy(message)
                .trim_start_matches("the RISC-V program cannot be linked: ")
                .chars()
                .take(1000)
                .collect(),
        )),
        _ => Err(IntakeError::Link(
            "the linker gave no answer on this file".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_decode() {
        assert_eq!(decode_answer(&[0, 1, 2]), Ok(vec![1, 2]));
        assert_eq!(
            decode_answer(b"\x01bad relocation"),
            Err(IntakeError::Link("bad relocation".into()))
        );
        assert!(matches!(decode_answer(b""), Err(IntakeError::Link(_))));
        assert!(matches!(decode_answer(b"\x07"), Err(IntakeError::Link(_))));
    }
}
