//! Components written for other hosts' key-value conventions (issue 48): the bucket `""`
//! (the one `wasmtime serve -S keyvalue` offers) and `default` (Spin's default store) are the
//! agent's one default bucket, and a counter kept as decimal text (wasmtime's form) counts on,
//! staying decimal text, beside this host's 8-byte counters. `kv-counter` is stock wit-bindgen
//! on the published `wasi:keyvalue@0.2.0-draft` WIT.

use hypervisor_client::Client;
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::InvokeResponse;

use crate::agent_state::deploy_as;
use crate::harness::TestServer;

fn kv(client: &Client, args: &[&str]) -> InvokeResponse {
    client.invoke_cli("counter", args, None).expect("invoke")
}

fn out(r: &InvokeResponse) -> String {
    assert!(r.ok, "{} {:?}", r.stderr, r.stdout);
    r.stdout.clone().unwrap_or_default().trim().to_string()
}

#[test]
fn the_empty_bucket_is_the_default_one_and_decimal_counters_count_on() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    deploy_as(&client, &owner, "counter", "kv-counter", None);

    // wasmtime's bucket "" and Spin's "default" are one bucket.
    assert_eq!(out(&kv(&client, &["", "set", "greeting", "hi"])), "ok");
    assert_eq!(out(&kv(&client, &["default", "get", "greeting"])), "hi");
    assert_eq!(out(&kv(&client, &["", "keys"])), "greeting");

    // A counter another host kept as decimal text: "41" + 1 = "42", still text.
    assert_eq!(out(&kv(&client, &["", "set", "visits", "41"])), "ok");
    assert_eq!(out(&kv(&client, &["", "incr", "visits"])), "42");
    assert_eq!(out(&kv(&client, &["default", "get", "visits"])), "42");
    assert_eq!(out(&kv(&client, &["", "incr", "visits", "8"])), "50");

    // This host's own counters start binary (8 bytes), and still count.
    assert_eq!(out(&kv(&client, &["", "incr", "hits"])), "1");
    assert_eq!(out(&kv(&client, &["", "incr", "hits"])), "2");

    // Anything else is still not a counter, and says what a counter is.
    assert_eq!(out(&kv(&client, &["", "set", "name", "forty"])), "ok");
    let refused = kv(&client, &["", "incr", "name"]);
    assert!(!refused.ok);
    assert!(
        refused.stderr.contains("decimal text"),
        "{}",
        refused.stderr
    );
}
