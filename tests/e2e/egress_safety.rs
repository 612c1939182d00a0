//! Egress that a secret can safely ride on (`host/src/egress/connect.rs`): redirects are not
//! followed, names that resolve to loopback, private or link-local addresses (cloud metadata
//! endpoints) are refused unless the grant names the address itself, and a name is resolved
//! once, the checked address being the one connected to (the unit test
//! `a_name_is_resolved_once_and_the_checked_address_is_used` drives a resolver whose answer
//! changes between two lookups). The caller is the `caller` guest, calling URLs over the
//! standard `wasi:http/outgoing-handler`.

use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::grants::Grants;
use serde_json::{Value, json};

use crate::agent_state::{Stub, deploy_as};
use crate::harness::TestServer;

fn call(server: &TestServer, url: &str) -> Value {
    let r = server
        .client()
        .invoke("fetcher", json!({"url": url, "method": "GET"}))
        .expect("invoke");
    match (r.result_json(), r.error) {
        (Some(v), _) => v,
        (None, Some(e)) => json!({"error": {"code": e.code, "message": e.message}}),
        (None, None) => panic!("{}", r.stderr),
    }
}

#[test]
fn redirects_are_not_followed_and_private_addresses_need_a_grant_naming_them() {
    let elsewhere = Stub::start(200, &[]);
    let redirecting = Stub::start(302, &[("location", &format!("{}/stolen", elsewhere.url))]);
    let named = Stub::start(200, &[]);
    let port = named.url.rsplit(':').next().unwrap().to_string();
    let server = TestServer::start_with(
        "[egress]\nallow_loopback_http = true\n\
         [egress.hosts]\n\"metadata.test\" = [\"169.254.169.254\"]\n\
         \"loopback.test\" = [\"127.0.0.1\"]\n\"internal.test\" = [\"10.0.0.7\", \"fd00::7\"]\n",
    );
    let owner = ClientSecret::generate().unwrap();
    let grants = Grants {
        origins: vec![
            redirecting.url.clone(),
            named.url.clone(),
            "https://metadata.test".into(),
            format!("https://loopback.test:{port}"),
            "https://internal.test".into(),
        ],
        ..Grants::default()
    };
    deploy_as(&server.client(), &owner, "fetcher", "caller", Some(grants));

    // A granted origin answering a redirect to an origin that is not granted: the guest gets
    // the 302 itself, nothing reaches the other origin, and following it by hand is refused.
    let r = call(&server, &format!("{}/start", redirecting.url));
    assert_eq!(r["responses"][0]["status"], 302, "{r}");
    assert_eq!(redirecting.requests().len(), 1);
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
    let r = call(&server, &format!("{}/stolen", elsewhere.url));
    assert_eq!(r["error"]["message"], "HttpRequestDenied", "{r}");
    assert!(elsewhere.requests().is_empty());

    // Names that resolve to a metadata endpoint, loopback or private addresses: refused before
    // any connection, though the grant names the name.
    for url in [
        "https://metadata.test/latest/meta-data/".to_string(),
        format!("https://loopback.test:{port}/"),
        "https://internal.test/".to_string(),
    ] {
        let r = call(&server, &url);
        assert_eq!(r["error"]["code"], "request_failed", "{url}: {r}");
        assert_eq!(
            r["error"]["message"], "DestinationIpProhibited",
            "{url}: {r}"
        );
    }
    assert!(
        named.requests().is_empty(),
        "loopback.test reached the loopback server"
    );
    // The same loopback server, named by its address in the grant: reached.
    let r = call(&server, &format!("{}/ok", named.url));
    assert_eq!(r["responses"][0]["status"], 200, "{r}");
    assert_eq!(named.requests().len(), 1);
    // And an address that is named nowhere stays denied.
    let r = call(&server, "http://169.254.169.254/latest/meta-data/");
    assert_eq!(r["error"]["message"], "HttpRequestDenied", "{r}");
}
