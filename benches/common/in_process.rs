//! A host in this process (no HTTP): its configuration and a client session with its pipeline.

use std::path::Path;

use base64::Engine as _;
use hypervisor::config::Config;
use hypervisor::pipeline::Pipeline;
use hypervisor_client::Session;
use hypervisor_client::agents::sign_deploy_request;
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::DeployRequest;
use hypervisor_protocol::grants::Grants;
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

/// Deploys `component` as agent `name` of `owner` (in the clear, signed), at `price` if any,
/// with `grants` if any, as `POST /agent/deploy` does.
pub fn deploy(
    rt: &tokio::runtime::Runtime,
    pipeline: &Pipeline,
    owner: &ClientSecret,
    name: &str,
    component: &[u8],
    price: Option<&str>,
    grants: Option<Grants>,
) {
    let mut request = DeployRequest {
        name: name.into(),
        description: "benchmark agent".into(),
        tags: Vec::new(),
        public_key: owner.public_key().to_hex(),
        component: Some(base64::engine::general_purpose::STANDARD.encode(component)),
        encrypted_component: None,
        program_kind: None,
        js: None,
        encrypted_js: None,
        session_id: None,
        public: None,
        limits: None,
        price: price.map(str::to_string),
        ttl_seconds: None,
        charge: None,
        tariff: None,
        content_type: None,
        grants,
        schemas: None,
        signature: None,
        signed_at: None,
        sequence: None,
    };
    sign_deploy_request(owner, pipeline.audience(), &mut request, component).unwrap();
    rt.block_on(pipeline.deploy_agent(request, None)).unwrap();
}
