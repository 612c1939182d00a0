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
        // Room doubles from 4 KiB: an empty or short input costs little memory.
        all.reserve(all.len().clamp(4 << 10, 1 << 20));
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

/// Bytes held back until a line ends (as Rust's `std` buffers standard output): each host call
/// costs a round trip to the host, and `print!` of a formatted line makes a write per piece.
struct LineBuffer {
    fd: u32,
    bytes: core::cell::UnsafeCell<([u8; LINE_BUFFER], usize)>,
}

const LINE_BUFFER: usize = 8 << 10;

// SAFETY: a RISC-V program runs on one thread, and no function here calls back into another
// while it holds the buffer.
unsafe impl Sync for LineBuffer {}

impl LineBuffer {
    const fn new(fd: u32) -> Self {
        Self {
            fd,
            bytes: core::cell::UnsafeCell::new(([0; LINE_BUFFER], 0)),
        }
    }

    fn write(&self, mut bytes: &[u8]) {
        // SAFETY: see `Sync` above: no other reference to the buffer exists meanwhile.
        let (buf, len) = unsafe { &mut *self.bytes.get() };
        while !bytes.is_empty() {
            let room = LINE_BUFFER - *len;
            if *len == 0 && bytes.len() >= LINE_BUFFER {
                // Larger than the buffer: straight through, up to its last line's end.
                let cut = bytes.iter().rposition(|b| *b == b'\n').map_or(bytes.len(), |i| i + 1);
                write(self.fd, &bytes[..cut]);
                bytes = &bytes[cut..];
                continue;
            }
            let take = room.min(bytes.len());
            buf[*len..*len + take].copy_from_slice(&bytes[..take]);
            *len += take;
            bytes = &bytes[take..];
            let full = *len == LINE_BUFFER;
            if full || buf[*len - take..*len].contains(&b'\n') {
                write(self.fd, &buf[..*len]);
                *len = 0;
            }
        }
    }

    fn flush(&self) {
        // SAFETY: as in `write`.
        let (buf, len) = unsafe { &mut *self.bytes.get() };
        if *len > 0 {
            write(self.fd, &buf[..*len]);
            *len = 0;
        }
    }
}

static STDOUT: LineBuffer = LineBuffer::new(1);
static STDERR: LineBuffer = LineBuffer::new(2);

/// Writes to standard output (the host keeps up to its cap, and marks the rest as cut). Held
/// back until a line ends, the buffer fills, or the program ends.
pub fn write_stdout(bytes: &[u8]) {
    STDOUT.write(bytes);
}

/// Writes to standard error (held back like standard output).
pub fn write_stderr(bytes: &[u8]) {
    STDERR.write(bytes);
}

/// Writes out what standard output and error hold back (the program's end does it).
pub fn flush() {
    STDOUT.flush();
    STDERR.flush();
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
