//! `{{name}}`: a command for WASM Hypervisor. Arguments and standard input in; standard
//! output, standard error and the exit status out. No files, environment or network.

use std::io::Read;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() {
        eprintln!("{{name}}: standard input is not UTF-8");
        std::process::exit(1);
    }
    println!(
        "{{name}}: {} argument(s) [{}], {} line(s) of input",
        args.len(),
        args.join(" "),
        input.lines().count()
    );
}
