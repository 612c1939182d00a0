//! Probes what the sandbox grants and prints one `name: result` line per probe. The host must
//! deny everything except arguments, stdio, clocks and randomness.
//! The first argument, if any, is an address (`IP:PORT`) to try to connect to, with a TCP socket
//! and with an outgoing `wasi:http` request.

use std::io::Read;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("args: {}", args.len());
    println!("env: {}", std::env::vars().count());
    println!("read_root: {}", outcome(std::fs::read_dir("/").map(|_| ())));
    println!("read_file: {}", outcome(std::fs::read("/etc/passwd").map(|_| ())));
    println!("read_cwd: {}", outcome(std::fs::read_dir(".").map(|_| ())));
    println!("write_file: {}", outcome(std::fs::write("escape.txt", b"x")));
    if let Some(addr) = args.get(1) {
        let r = std::net::TcpStream::connect(addr.as_str()).map(|mut s| {
            let mut b = [0u8; 1];
            let _ = s.read(&mut b);
        });
        println!("connect: {}", outcome(r));
        println!("http: {}", http_get(addr));
    }
    let lookup = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 80)).map(|_| ());
    println!("resolve: {}", outcome(lookup));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    println!("clock_after_2020: {}", now > 1_577_836_800);
    let mut a = [0u8; 16];
    let mut b = [0u8; 16];
    let random_ok = getrandom_like(&mut a) && getrandom_like(&mut b) && a != b;
    println!("random: {random_ok}");
}

fn outcome<T>(r: std::io::Result<T>) -> &'static str {
    if r.is_ok() { "allowed" } else { "denied" }
}

/// Randomness through std's hasher seeds (which use wasi:random) without extra crates.
fn getrandom_like(buf: &mut [u8; 16]) -> bool {
    use std::hash::{BuildHasher, Hasher};
    let s = std::collections::hash_map::RandomState::new();
    let mut h = s.build_hasher();
    h.write_u8(0);
    let v = h.finish().to_le_bytes();
    buf[..8].copy_from_slice(&v);
    let mut h2 = std::collections::hash_map::RandomState::new().build_hasher();
    h2.write_u8(1);
    buf[8..].copy_from_slice(&h2.finish().to_le_bytes());
    true
}

/// An outgoing `wasi:http` GET to `http://{authority}/`: `allowed` when a response came back,
/// else `denied (<error code>)`.
fn http_get(authority: &str) -> String {
    use wasip2::http::{outgoing_handler, types};
    let request = types::OutgoingRequest::new(types::Fields::new());
    let _ = request.set_scheme(Some(&types::Scheme::Http));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some("/"));
    let pending = match outgoing_handler::handle(request, None) {
        Ok(p) => p,
        Err(e) => return format!("denied ({e:?})"),
    };
    pending.subscribe().block();
    match pending.get() {
        Some(Ok(Ok(_))) => "allowed".into(),
        Some(Ok(Err(e))) => format!("denied ({e:?})"),
        _ => "denied (no response)".into(),
    }
}
