//! The seed section: the first execution of a 1 MB program nothing has cached, then a second.

use std::time::Instant;

use hypervisor_client::{Client, ExecuteInput};
use hypervisor_protocol::ClientSecret;

use crate::common::process::start_hypervisor;
use crate::common::stats::ms;
use crate::common::{unix_now, wasm};
use crate::write_config;

/// The seed section (see the benchmark's header).
pub fn run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = start_hypervisor(&write_config(&data, ""));
    let client = Client::new(&server.base);
    let session = client
        .create_session(&ClientSecret::generate().unwrap())
        .unwrap();
    let program =
        wasm::with_custom_section(&wasm::read("grep"), "load-bench", &unix_now().to_string());
    let input = ExecuteInput::new(&program)
        .args(["needle"])
        .stdin(b"hay\nneedle\n");
    let timed = || {
        let t = Instant::now();
        let run = client.execute(&session, &input).unwrap();
        (run, t.elapsed())
    };
    let (run, first) = timed();
    let (_, second) = timed();
    println!(
        "\nseed: a {:.2} MB program (grep), first execution (compile + run) {:.0} ms (target < 30 s), then {:.1} ms cached; exit {:?}",
        program.len() as f64 / 1e6,
        ms(first),
        ms(second),
        run.result.exit_code,
    );
    println!(
        "reference: a sandboxed container service, 100–200 ms per execution (cold container); compare with the execute route's p50 above"
    );
}
