//! A key-value command written the way wasmCloud's key-value examples are: stock
//! `wit-bindgen`, the published `wasi:keyvalue@0.2.0-draft` WIT, no code of this project.
//! It runs unchanged on any host that provides that world (wasmtime's `wasmtime-wasi-keyvalue`,
//! wasmCloud) and, deployed as a CLI agent, on WASM Hypervisor.
//!
//! Arguments (after `argv[0]`), on bucket `BUCKET` (environment-free: the bucket is the first
//! argument):
//!
//! | arguments                    | does                                                      | prints                 |
//! |------------------------------|-----------------------------------------------------------|------------------------|
//! | `BUCKET incr KEY [DELTA]`    | `atomics.increment` by DELTA (default 1)                  | the new value          |
//! | `BUCKET get KEY`             | `bucket.get`                                              | the value, or `(none)` |
//! | `BUCKET set KEY VALUE`       | `bucket.set`                                              | `ok`                   |
//! | `BUCKET delete KEY`          | `bucket.delete`                                           | `ok`                   |
//! | `BUCKET keys`                | `bucket.list-keys`, following the cursor                  | one key per line       |
//! | `BUCKET fill N SIZE`         | sets keys `fill-0` … `fill-(N-1)` to SIZE bytes each, stopping at the first error | how many were set |
//!
//! Any error is printed to stderr as `error: <the store's error>` and the exit code is 1.

wit_bindgen::generate!({
    path: "wit",
    world: "example:kv-counter/counter",
    generate_all,
});

use wasi::keyvalue::{atomics, batch, store};

fn fail(what: &str, e: &store::Error) -> ! {
    eprintln!("error: {what}: {e:?}");
    std::process::exit(1)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    let bucket = store::open(arg(0)).unwrap_or_else(|e| fail("open", &e));
    match arg(1) {
        "incr" => {
            let delta = arg(3).parse().unwrap_or(1);
            let v = atomics::increment(&bucket, arg(2), delta).unwrap_or_else(|e| fail("increment", &e));
            println!("{v}");
        }
        "get" => match bucket.get(arg(2)).unwrap_or_else(|e| fail("get", &e)) {
            Some(v) => println!("{}", String::from_utf8_lossy(&v)),
            None => println!("(none)"),
        },
        "set" => {
            bucket
                .set(arg(2), arg(3).as_bytes())
                .unwrap_or_else(|e| fail("set", &e));
            println!("ok");
        }
        "delete" => {
            bucket.delete(arg(2)).unwrap_or_else(|e| fail("delete", &e));
            println!("ok");
        }
        "keys" => {
            let mut cursor = None;
            loop {
                let page = bucket.list_keys(cursor).unwrap_or_else(|e| fail("list-keys", &e));
                for key in page.keys {
                    println!("{key}");
                }
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        "fill" => {
            let n: usize = arg(2).parse().unwrap_or(0);
            let size: usize = arg(3).parse().unwrap_or(0);
            let value = vec![b'x'; size];
            for i in 0..n {
                // One pair per call of the batch interface, so the error names the pair.
                if let Err(e) = batch::set_many(&bucket, &[(format!("fill-{i}"), value.clone())]) {
                    println!("{i}");
                    fail("set", &e);
                }
            }
            println!("{n}");
        }
        other => {
            eprintln!("error: unknown command {other:?}");
            std::process::exit(2);
        }
    }
}
