//! The RISC-V twin of guests/grep: prints the lines of standard input that match the regular
//! expression given as the first argument (regex-automata, the engine beneath the `regex`
//! crate, in its `no_std` form with the same optimisations: literal prefilters, lazy DFA), then
//! a count on standard error.
#![no_std]
#![no_main]

extern crate alloc;

use regex_automata::meta::Regex;
use riscv_sdk::eprintln;

riscv_sdk::main!(run);

fn run() -> i32 {
    let args = riscv_sdk::args();
    let Some(pattern) = args.get(1) else {
        eprintln!("usage: grep PATTERN < input");
        return 2;
    };
    let re = match Regex::new(pattern) {
        Ok(re) => re,
        Err(e) => {
            eprintln!("invalid pattern: {e}");
            return 2;
        }
    };
    let input = riscv_sdk::stdin_to_end();
    let mut out = alloc::vec::Vec::with_capacity(input.len().min(1 << 20));
    let mut matches = 0usize;
    for line in input.split(|b| *b == b'\n') {
        // A final newline ends the last line; it does not start an empty one.
        if line.is_empty() && core::ptr::eq(line.as_ptr(), input.as_ptr().wrapping_add(input.len())) {
            continue;
        }
        let Ok(text) = core::str::from_utf8(line) else {
            break;
        };
        if re.is_match(text) {
            matches += 1;
            out.extend_from_slice(line);
            out.push(b'\n');
            if out.len() >= 1 << 16 {
                riscv_sdk::write_stdout(&out);
                out.clear();
            }
        }
    }
    riscv_sdk::write_stdout(&out);
    eprintln!("{matches} matching lines");
    0
}
