//! Standard input, output and error.

use alloc::vec::Vec;

use crate::sys;

/// Reads standard input into `buf`: the bytes read, 0 at its end.
pub fn read_stdin(buf: &mut [u8]) -> usize {
    let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    // SAFETY: `buf` is `len` writable bytes.
    let n = unsafe { sys::fd_read(0, buf.as_mut_ptr(), len) };
    n as usize
}

/// All of standard input.
pub fn stdin_to_end() -> Vec<u8> {
    let mut all: Vec<u8> = Vec::new();
    loop {
        all.reserve(64 * 1024);
        let len = all.len();
        let room = all.capacity() - len;
        // SAFETY: the `room` bytes past `len` are allocated; the host writes at most `room`
        // and says how many, and only those become part of the vector.
        let n = unsafe {
            let n = sys::fd_read(0, all.as_mut_ptr().add(len), room as u32) as usize;
            all.set_len(len + n.min(room));
            n
        };
        if n == 0 {
            return all;
        }
    }
}

fn write(fd: u32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        // SAFETY: `bytes` is `len` readable bytes.
        let n = unsafe { sys::fd_write(fd, bytes.as_ptr(), len) } as usize;
        if n == 0 || n > bytes.len() {
            return;
        }
        bytes = &bytes[n..];
    }
}

/// Writes to standard output (the host keeps up to its cap, and marks the rest as cut).
pub fn write_stdout(bytes: &[u8]) {
    write(1, bytes);
}

/// Writes to standard error.
pub fn write_stderr(bytes: &[u8]) {
    write(2, bytes);
}

/// Standard output, for `core::fmt::Write` (`write!`).
pub struct Stdout;

impl core::fmt::Write for Stdout {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write_stdout(s.as_bytes());
        Ok(())
    }
}

/// Standard error, for `core::fmt::Write`.
pub struct Stderr;

impl core::fmt::Write for Stderr {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write_stderr(s.as_bytes());
        Ok(())
    }
}

/// `print!` to standard output.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {{
        let _ = core::fmt::Write::write_fmt(&mut $crate::Stdout, format_args!($($arg)*));
    }};
}

/// `println!` to standard output.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => {{
        $crate::print!($($arg)*);
        $crate::print!("\n");
    }};
}

/// `eprint!` to standard error.
#[macro_export]
macro_rules! eprint {
    ($($arg:tt)*) => {{
        let _ = core::fmt::Write::write_fmt(&mut $crate::Stderr, format_args!($($arg)*));
    }};
}

/// `eprintln!` to standard error.
#[macro_export]
macro_rules! eprintln {
    () => { $crate::eprint!("\n") };
    ($($arg:tt)*) => {{
        $crate::eprint!($($arg)*);
        $crate::eprint!("\n");
    }};
}
