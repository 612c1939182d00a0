//! The example guest: prints "Hello" followed by its arguments, one line.
//!
//! With stdin it also echoes it back, so `hello` exercises every captured stream.

use std::io::Read;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        println!("Hello");
    } else {
        println!("Hello {}", args.join(" "));
    }
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_ok() && !input.is_empty() {
        print!("stdin: {input}");
    }
    if args.iter().any(|a| a == "--fail") {
        eprintln!("failing on request");
        // WASI 0.2 reports only success/failure: the host sees exit code 1.
        std::process::exit(3);
    }
}
