//! Misbehaving guest: writes far more output than the host captures (64 MiB to stdout,
//! 8 MiB to stderr). The host must cut it, flag it, and not run out of memory.

use std::io::Write;

fn main() {
    let line = [b'x'; 1024];
    let mut out = std::io::stdout().lock();
    for _ in 0..64 * 1024 {
        if out.write_all(&line).is_err() {
            break;
        }
    }
    let _ = out.flush();
    let mut err = std::io::stderr().lock();
    for _ in 0..8 * 1024 {
        if err.write_all(&line).is_err() {
            break;
        }
    }
}
