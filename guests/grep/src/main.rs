//! A realistic guest with a real dependency: prints the lines of stdin that match the regular
//! expression given as the first argument (full Unicode support), then a count on stderr.
//! Its release build (~1 MB) is the "large component" of the compile benchmark.

use std::io::{BufRead, Write};

fn main() {
    let Some(pattern) = std::env::args().nth(1) else {
        eprintln!("usage: grep PATTERN < input");
        std::process::exit(2);
    };
    let re = match regex::Regex::new(&pattern) {
        Ok(re) => re,
        Err(e) => {
            eprintln!("invalid pattern: {e}");
            std::process::exit(2);
        }
    };
    let mut out = std::io::stdout().lock();
    let mut matches = 0usize;
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        if re.is_match(&line) {
            matches += 1;
            let _ = writeln!(out, "{line}");
        }
    }
    eprintln!("{matches} matching lines");
}
