//! What the routes section sends: each main route with the status it must answer and a maker
//! of the request a client thread repeats (encrypted and paid where the route wants it).

use std::sync::Arc;

use hypervisor_client::verify::Policy;
use hypervisor_client::x402::{Offer, PaymentLimit, Wallet};
use hypervisor_client::{Client, ExecuteInput};
use hypervisor_protocol::ClientSecret;
use serde_json::{Value, json};

use crate::agent;
use crate::common::http::{deploy, get, post, post_json};
use crate::common::{unix_now, wasm};

/// One request a client thread repeats.
pub type Request = Box<dyn FnMut(&ureq::Agent) -> Result<u16, String> + Send>;

/// A route under load: its name, the status it must answer, and a maker of per-thread
/// requests.
pub struct Route {
    pub name: &'static str,
    pub expect: u16,
    pub make: Box<dyn Fn(&str) -> Request>,
}

impl Route {
    /// The path of the route: the second word of its name (`METHOD /path (note)`).
    pub fn path(&self) -> &'static str {
        path_of(self.name)
    }

    /// The route `name`, expecting 200, its requests made by `make` from the server's base URL
    /// and the route's URL, once per client thread.
    fn with(name: &'static str, make: impl Fn(&str, String) -> Request + 'static) -> Self {
        let path = path_of(name);
        Self {
            name,
            expect: 200,
            make: Box::new(move |base| make(base, format!("{base}{path}"))),
        }
    }

    /// `GET` of the route `name`, expecting 200.
    fn get(name: &'static str) -> Self {
        Self::with(name, |_, url| Box::new(move |a| get(a, &url)))
    }

    /// `POST` to the route `name` of the JSON that `body` makes from the server's base URL once
    /// per client thread, expecting 200.
    fn post(name: &'static str, body: impl Fn(&str) -> Vec<u8> + 'static) -> Self {
        Self::with(name, move |base, url| {
            let body = body(base);
            Box::new(move |a| post(a, &url, &body, &[]))
        })
    }
}

/// The second word of `name`.
fn path_of(name: &'static str) -> &'static str {
    name.split_whitespace().nth(1).unwrap_or("")
}

/// Deploys the agents the routes need on the server at `base`; returns the routes.
pub fn routes(base: &str) -> Vec<Route> {
    let client = Client::new(base);
    let owner = ClientSecret::generate().unwrap();
    for (name, guest) in [("stats", "text-stats"), ("hello", "http-hello")] {
        deploy(&client, &owner, name, &wasm::read(guest));
    }
    let hello = Arc::new(wasm::read("hello"));
    let (plain, verifiable, paid) = (hello.clone(), hello.clone(), hello);
    vec![
        Route::get("GET /ping"),
        Route::with("POST /encrypt/create_keypair", |_, url| {
            Box::new(move |a| {
                let key = ClientSecret::generate().map_err(|e| e.to_string())?;
                let body = json!({ "pubkey": key.public_key().to_hex() }).to_string();
                post(a, &url, body.as_bytes(), &[])
            })
        }),
        Route::post("POST /test/execute/wasm (hello)", move |base| {
            encrypted_hello(base, &plain, false)
        }),
        Route::post(
            "POST /verifiable/execute/wasm (hello, signed receipt)",
            move |base| encrypted_hello(base, &verifiable, true),
        ),
        Route::with(
            "POST /x402_execute/test/wasm (hello, new payment each)",
            move |base, url| paying(url, encrypted_hello(base, &paid, false)),
        ),
        Route::post("POST /test/policy/unsafe/python (print)", |base| {
            let client = Client::new(base);
            let key = ClientSecret::generate().unwrap();
            let session = client.create_session(&key).unwrap();
            let (req, _) = session
                .encrypt_python(&ExecuteInput::new(b"print('hello from python')"))
                .unwrap();
            serde_json::to_vec(&req).unwrap()
        }),
        Route::post("POST /agents/stats/invoke (handler)", |_| {
            json!({"event": {"text": "The quick brown fox. It jumps!"}})
                .to_string()
                .into_bytes()
        }),
        Route::get("GET /agents/hello/ (wasi:http agent)"),
        Route::post("POST /search", |_| {
            json!({"query": "load benchmark"}).to_string().into_bytes()
        }),
    ]
}

/// The request body of an execution of `hello` with the argument `load`, encrypted to a new
/// session (a verifiable one, simulated attestation accepted, if `verifiable`) on `base`.
fn encrypted_hello(base: &str, hello: &[u8], verifiable: bool) -> Vec<u8> {
    let client = Client::new(base);
    let key = ClientSecret::generate().unwrap();
    let session = if verifiable {
        // A load generator, not a verifier: any host measurement.
        let policy = Policy {
            allow_simulated: true,
            accept_any_measurement: true,
            ..Policy::default()
        };
        client.create_verifiable_session(&key, &policy).unwrap()
    } else {
        client.create_session(&key).unwrap()
    };
    let (req, _) = session
        .encrypt_execution(&ExecuteInput::new(hello).args(["load"]))
        .unwrap();
    serde_json::to_vec(&req).unwrap()
}

/// Requests that send `body` to the paid route `url` with a new payment each: the offer is
/// read once from the route's 402 challenge, and the thread's own wallet signs every payment.
fn paying(url: String, body: Vec<u8>) -> Request {
    let wallet = Wallet::random().unwrap();
    let mut resp = post_json(&agent(), &url, &[]).send(&body[..]).unwrap();
    let challenge = resp
        .headers()
        .get("payment-required")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let json: Value = serde_json::from_slice(&resp.body_mut().read_to_vec().unwrap()).unwrap();
    let offer = Offer::from_402(challenge.as_deref(), &json).unwrap();
    Box::new(move |a| {
        let (name, value) = wallet
            .pay(&offer, &PaymentLimit::new(10_000), unix_now())
            .map_err(|e| e.to_string())?;
        post(a, &url, &body, &[(name, value)])
    })
}
