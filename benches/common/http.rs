//! HTTP to a server under test: a client agent, requests that report the status (and body), and
//! deploying an agent with the client library.

use std::time::Duration;

use hypervisor_client::Client;
use hypervisor_client::agents::Deployment;
use hypervisor_protocol::ClientSecret;
use ureq::http::Response;
use ureq::typestate::WithBody;
use ureq::{Body, RequestBuilder};

/// A keep-alive client that returns error statuses as responses, each request given at most
/// `timeout`.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// `GET url`: the status (the body is read and dropped).
pub fn get(agent: &ureq::Agent, url: &str) -> Result<u16, String> {
    status(agent.get(url).call())
}

/// `GET url`: status and body.
pub fn get_text(agent: &ureq::Agent, url: &str) -> Result<(u16, String), String> {
    status_and_text(agent.get(url).call())
}

/// A `POST url` of JSON with `headers` besides, ready to send.
pub fn post_json(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, String)],
) -> RequestBuilder<WithBody> {
    let mut req = agent.post(url).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    req
}

/// `POST url` of the JSON `body` with `headers`: the status (the body is read and dropped).
pub fn post(
    agent: &ureq::Agent,
    url: &str,
    body: &[u8],
    headers: &[(&str, String)],
) -> Result<u16, String> {
    status(post_json(agent, url, headers).send(body))
}

/// `POST url` of the JSON `body`: status and body.
pub fn post_text(agent: &ureq::Agent, url: &str, body: &[u8]) -> Result<(u16, String), String> {
    status_and_text(post_json(agent, url, &[]).send(body))
}

/// The status of `resp`, its body read to the end and dropped.
fn status(resp: Result<Response<Body>, ureq::Error>) -> Result<u16, String> {
    let mut resp = resp.map_err(|e| e.to_string())?;
    resp.body_mut().read_to_vec().map_err(|e| e.to_string())?;
    Ok(resp.status().as_u16())
}

/// The status and the text of `resp`.
fn status_and_text(resp: Result<Response<Body>, ureq::Error>) -> Result<(u16, String), String> {
    let mut resp = resp.map_err(|e| e.to_string())?;
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((resp.status().as_u16(), body))
}

/// Deploys `component` as the agent `name` of `owner`, everything else at its defaults.
pub fn deploy(client: &Client, owner: &ClientSecret, name: &str, component: &[u8]) {
    client
        .deploy_agent(
            owner,
            &Deployment {
                name,
                description: "benchmark agent",
                component,
                ..Deployment::default()
            },
        )
        .unwrap_or_else(|e| panic!("deploying {name}: {e}"));
}
