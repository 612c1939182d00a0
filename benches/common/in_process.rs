//! A host in this process (no HTTP): its configuration and a client session with its pipeline.

use std::path::Path;

use hypervisor::config::Config;
use hypervisor::pipeline::Pipeline;
use hypervisor_client::Session;
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::wire::CreateKeypairRequest;

/// Defaults with data in `data_dir`, policy and Python off (building the host must not compile
/// CPython, and the measurement is of what the benchmark is about).
pub fn config(data_dir: &Path) -> Config {
    let mut c = Config {
        data_dir: data_dir.to_owned(),
        ..Config::default()
    };
    c.policy.enabled = false;
    c.python.enabled = false;
    c
}

/// A session of `secret` with `pipeline`, as `POST /encrypt/create_keypair` makes it.
pub fn session(pipeline: &Pipeline, secret: &ClientSecret) -> Session {
    let req = CreateKeypairRequest {
        pubkey: secret.public_key().to_hex(),
    };
    Session::from_response(secret, &pipeline.create_session(&req).unwrap()).unwrap()
}
