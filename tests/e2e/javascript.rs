//! JavaScript agents from source (`components/js-runtime`, docs/PROTOCOL.md §24): deployed as
//! a modules map, set up once and snapshotted, invoked many times in fresh instances from the
//! snapshot; bad modules refused at deployment with the module and position.

use std::collections::BTreeMap;

use hypervisor_client::Client;
use hypervisor_client::agents::Deployment;
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::{JsEngine, JsSource};
use serde_json::{Value, json};

use crate::harness::{TestServer, code};

fn source(main: &str, modules: &[(&str, &str)]) -> JsSource {
    source_on(JsEngine::Boa, main, modules)
}

/// `modules` (`main` first to run) for `engine`.
pub(crate) fn source_on(engine: JsEngine, main: &str, modules: &[(&str, &str)]) -> JsSource {
    JsSource {
        engine,
        main: main.to_string(),
        modules: modules
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

pub(crate) fn deploy(
    client: &Client,
    owner: &ClientSecret,
    name: &str,
    js: &JsSource,
) -> Result<Value, String> {
    client
        .deploy_js(
            owner,
            &Deployment {
                name,
                description: "a JavaScript agent",
                ..Deployment::default()
            },
            js,
        )
        .map_err(|e| e.to_string())
}

/// Assist TEE's example, in JavaScript: `main.js` importing `sum` from `utils.js`.
const MAIN: &str = r#"
import { sum } from "./utils";
export async function handler(event, context) {
  console.log("summing", event.data.numbers.length, "numbers");
  const total = sum(event.data.numbers);
  return { total, executionId: context.executionId, env: event.env ?? null };
}
"#;
const UTILS: &str = "export function sum(xs) { return xs.reduce((a, b) => a + b, 0); }\n";

#[test]
fn a_modules_map_deploys_once_and_runs_many_times_in_fresh_instances() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let js = source("main.js", &[("main.js", MAIN), ("utils.js", UTILS)]);
    let agent = deploy(&client, &owner, "summer", &js).expect("deploy");
    assert_eq!(agent["latest"]["kind"], "handler", "{agent}");
    for (numbers, total) in [(json!([1, 2, 3]), 6), (json!([10, 20]), 30)] {
        let r = client
            .invoke(
                "summer",
                json!({"data": {"numbers": numbers}, "env": {"A": "b"}}),
            )
            .unwrap();
        assert!(r.ok, "{r:?}");
        let result = r.result_json().unwrap();
        assert_eq!(result["total"], total, "{result}");
        assert_eq!(result["executionId"], r.execution_id.as_str());
        assert_eq!(result["env"], json!({"A": "b"}));
        assert!(r.stdout.unwrap_or_default().contains("summing") || r.stderr.is_empty());
    }
    // Fresh instances: module state does not carry over.
    let counter = source(
        "main.js",
        &[(
            "main.js",
            "let n = 0; export function handler() { n += 1; return { n }; }",
        )],
    );
    deploy(&client, &owner, "counter", &counter).expect("deploy");
    for _ in 0..3 {
        let r = client.invoke("counter", json!(null)).unwrap();
        assert_eq!(r.result_json().unwrap(), json!({"n": 1}));
    }
}

/// A TypeScript handler with types, interfaces and generics, importing from `utils.ts`.
const TS_SUM_MAIN: &str = r#"
import { sum, Pair, pick } from "./utils";
interface Event { data: { a: number; b: number }; env?: Record<string, string> }
export async function handler(event: Event, context: { executionId: string }): Promise<object> {
  const pair: Pair<number> = { left: event.data.a, right: event.data.b };
  return { result: sum(pair.left, pair.right), first: pick<number>([7, 8], 0), id: context.executionId };
}
"#;
const TS_SUM_UTILS: &str = r#"
export interface Pair<T> { left: T; right: T }
export function sum(a: number, b: number): number { return a + b; }
export const pick = <T,>(xs: T[], i: number): T => xs[i];
"#;

/// Assist TEE's own example, in TypeScript: types, interfaces and generics stripped at
/// deployment.
#[test]
fn a_typescript_agent_with_types_interfaces_and_generics() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let js = source(
        "main.ts",
        &[("main.ts", TS_SUM_MAIN), ("utils.ts", TS_SUM_UTILS)],
    );
    deploy(&client, &owner, "ts-sum", &js).expect("deploy");
    for (a, b) in [(2, 3), (40, 2)] {
        let r = client
            .invoke("ts-sum", json!({"data": {"a": a, "b": b}}))
            .unwrap();
        let result = r.result_json().unwrap();
        assert_eq!(result["result"], a + b, "{result}");
        assert_eq!(result["first"], 7);
    }
    // A syntax error in any module is reported with module, line and column.
    let broken = source(
        "main.ts",
        &[
            ("main.ts", TS_SUM_MAIN),
            ("utils.ts", "export const x: number = ;\n"),
        ],
    );
    let err = deploy(&client, &owner, "ts-broken", &broken).unwrap_err();
    assert!(err.contains("syntax_error: utils.ts:1:26"), "{err}");
}

/// A JavaScript agent keeps state and reads its owner's secret (`agentState`, `agentConfig`:
/// the JavaScript helper over `wasi:keyvalue` and `wasi:config`), and fetches a granted origin
/// while an ungranted one is refused.
#[test]
fn a_js_agent_keeps_state_reads_secrets_and_fetches_only_what_it_is_granted() {
    let server = TestServer::start_with("[egress]\nallow_loopback_http = true\n");
    let (client, owner, session) = crate::harness::session(&server);
    let granted = crate::agent_state::Stub::start(200, &[("content-type", "application/json")]);
    let ungranted = crate::agent_state::Stub::start(200, &[]);
    let main = r#"
export async function handler(event) {
  const cart = agentState.bucket("cart");
  const visits = cart.increment("visits");
  const log = cart.update("log", (old) => (old ?? "") + "+");
  cart.setJSON("last", { visits });
  const out = { visits, log, last: cart.getJSON("last"), keys: cart.keys().sort(),
                secret: agentConfig.get("API_KEY"), names: Object.keys(agentConfig.all()) };
  if (event.url) {
    try {
      const r = await fetch(event.url, { headers: { authorization: "Bearer " + agentConfig.get("API_KEY") } });
      out.fetched = { status: r.status, ok: r.ok, body: await r.text() };
    } catch (e) {
      out.fetched = { error: String(e.message) };
    }
  }
  const bytes = new TextEncoder().encode("héllo");
  out.utf8 = [bytes.length, new TextDecoder().decode(bytes)];
  out.random = crypto.getRandomValues(new Uint8Array(4)).length;
  return out;
}
"#;
    let grants = hypervisor_protocol::grants::Grants {
        origins: vec![granted.url.clone()],
        ..Default::default()
    };
    client
        .deploy_js(
            &owner,
            &Deployment {
                name: "shopper",
                description: "JS with state",
                grants: Some(grants),
                ..Deployment::default()
            },
            &source("main.js", &[("main.js", main)]),
        )
        .expect("deploy");
    client
        .set_agent_config(
            &owner,
            &session,
            "shopper",
            &hypervisor_client::state::change_of(&["API_KEY=js-secret".into()], &[]).unwrap(),
        )
        .unwrap();
    let first = client
        .invoke("shopper", json!({}))
        .unwrap()
        .result_json()
        .unwrap();
    assert_eq!(first["visits"], 1, "{first}");
    assert_eq!(first["log"], "+");
    assert_eq!(first["last"], json!({"visits": 1}));
    assert_eq!(first["keys"], json!(["last", "log", "visits"]));
    assert_eq!(first["secret"], "js-secret");
    assert_eq!(first["names"], json!(["API_KEY"]));
    assert_eq!(first["utf8"], json!([6, "héllo"]));
    assert_eq!(first["random"], 4);
    let r = client
        .invoke("shopper", json!({"url": format!("{}/data", granted.url)}))
        .unwrap()
        .result_json()
        .unwrap();
    assert_eq!(r["visits"], 2);
    assert_eq!(
        r["fetched"],
        json!({"status": 200, "ok": true, "body": "ok"}),
        "{r}"
    );
    assert!(granted.requests()[0].contains("Bearer js-secret"));
    let r = client
        .invoke("shopper", json!({"url": format!("{}/data", ungranted.url)}))
        .unwrap()
        .result_json()
        .unwrap();
    assert!(
        r["fetched"]["error"]
            .as_str()
            .unwrap()
            .contains("HttpRequestDenied"),
        "{r}"
    );
    assert!(ungranted.requests().is_empty());
}

#[test]
fn bad_modules_are_refused_at_deployment_naming_the_module() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let cases: [(&str, JsSource, &str); 5] = [
        (
            "syntax",
            source("main.js", &[("main.js", "export function handler( {\n")]),
            "syntax_error: main.js",
        ),
        (
            "missing",
            source(
                "main.js",
                &[(
                    "main.js",
                    "import { x } from './nope.js';\nexport function handler() { return x; }",
                )],
            ),
            "missing_module",
        ),
        (
            "outside",
            source(
                "main.js",
                &[(
                    "main.js",
                    "import { x } from '../../etc/passwd';\nexport function handler() { return x; }",
                )],
            ),
            "module_outside_map",
        ),
        (
            "nohandler",
            source("main.js", &[("main.js", "export const answer = 42;")]),
            "no_handler",
        ),
        (
            "throws",
            source(
                "main.js",
                &[(
                    "main.js",
                    "throw new Error('boom at load');\nexport function handler() {}",
                )],
            ),
            "boom at load",
        ),
    ];
    for (name, js, expected) in cases {
        let err = deploy(&client, &owner, name, &js).expect_err(name);
        assert!(
            err.contains("invalid_request") && err.contains(expected),
            "{name}: {err}"
        );
    }
    // Handlers that throw, return what JSON cannot hold, or never settle: clear errors.
    let js = source(
        "main.js",
        &[(
            "main.js",
            r#"export async function handler(e) {
                 if (e === "throw") throw new TypeError("no good");
                 if (e === "bigint") return 10n;
                 if (e === "pending") return new Promise(() => {});
                 return "fine";
               }"#,
        )],
    );
    deploy(&client, &owner, "moody", &js).expect("deploy");
    let error = |event: &str| {
        let r = client.invoke("moody", json!(event)).unwrap();
        assert!(!r.ok, "{r:?}");
        r.error.unwrap().code
    };
    assert_eq!(error("throw"), "handler_threw");
    assert_eq!(error("bigint"), "result_not_json");
    assert_eq!(error("pending"), "handler_never_settled");
    let r = client.invoke("moody", json!("x")).unwrap();
    assert_eq!(r.result_json().unwrap(), json!("fine"));
    // An endless loop at load or per call ends at the time limit, and the host serves on.
    let (status, body) = client
        .post_json(
            "/agents/moody/invoke",
            &json!({"event": "x", "limits": {"time_ms": 1}}),
        )
        .unwrap();
    assert!(
        status == 200 || code(&body) == "invalid_request",
        "{status} {body}"
    );
}

/// The same JavaScript deploys as a private agent whose source is sealed to the owner's
/// session (`encrypted_js`), priced: an encrypted invocation is refused with 402 until paid,
/// then runs (the result checked against the snapshot's code hash) and is settled; clear
/// invocations are refused (private).
#[test]
fn a_sealed_paid_js_agent_runs_encrypted_after_payment() {
    use hypervisor_client::x402::{Offer, PaymentLimit, Wallet};

    let server = TestServer::start_with(&crate::payments::payments_table(""));
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let session = client.create_session(&owner).unwrap();
    let js = source(
        "main.ts",
        &[("main.ts", TS_SUM_MAIN), ("utils.ts", TS_SUM_UTILS)],
    );
    let agent = client
        .deploy_js_sealed(
            &owner,
            &session,
            &Deployment {
                name: "sealed-sum",
                description: "a priced JavaScript agent",
                price: Some("5000".into()),
                ..Deployment::default()
            },
            &js,
        )
        .expect("sealed deploy");
    assert_eq!(agent["public"], false, "{agent}");
    assert_eq!(agent["price"], "5000");
    let code_hash = agent["latest"]["code_hash"].as_str().unwrap().to_string();

    // No clear invocation: the paid route asks for its payment first, and a private agent
    // takes only sealed ones.
    let refused = client
        .invoke("sealed-sum", json!({"data": {"a": 1, "b": 2}}))
        .unwrap_err()
        .to_string();
    assert!(refused.contains("payment_required"), "{refused}");

    // Encrypted, without a payer: the 402 is reported, nothing runs.
    let event = br#"{"data": {"a": 20, "b": 22}}"#;
    let unpaid = client
        .invoke_sealed(&session, "sealed-sum", &code_hash, event)
        .unwrap_err()
        .to_string();
    assert!(unpaid.contains("payment"), "{unpaid}");

    // Paid: runs, checked against the code hash, settled.
    let wallet = Wallet::random().unwrap();
    let mut offers = 0;
    let execution = client
        .invoke_sealed_paying(
            &session,
            "sealed-sum",
            &code_hash,
            event,
            &mut |offer: &Offer| {
                offers += 1;
                Ok(wallet.pay(offer, &PaymentLimit::new(5_000), crate::payments::now())?)
            },
        )
        .expect("paid invocation");
    assert_eq!(offers, 1);
    let result: Value = serde_json::from_slice(&execution.stdout().unwrap()).expect("JSON result");
    assert_eq!(result["result"], 42, "{result}");
    assert!(execution.settlement.is_some(), "settled");

    // A sealed source for another role does not open as one (envelope role agent-js).
    let mut req = serde_json::json!({
        "name": "wrong-role",
        "public_key": owner.public_key().to_hex(),
        "session_id": session.id,
        "encrypted_js": hex::encode(session.envelope().seal(hypervisor_protocol::Role::AgentComponent, b"{}").unwrap()),
        "signature": "00", "signed_at": 0, "sequence": 1,
    });
    req["description"] = json!("");
    let (status, _, body) = client.post_json_with("/agent/deploy", &req, &[]).unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(code(&body), "decryption_failed", "{body}");
}

/// A JS agent whose compiled artifact is gone (a restart after the cache was lost, or another
/// replica's deployment) is recognised as a snapshot of the runtime and compiled through the
/// runtime's compiler on first use; it answers as before.
#[test]
fn js_agents_share_one_compiled_copy_of_the_runtime_and_run_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let owner = ClientSecret::generate().unwrap();
    let js = source("main.js", &[("main.js", MAIN), ("utils.js", UTILS)]);
    let other_main = format!("{MAIN}\n// another agent");
    let other = source(
        "main.js",
        &[("main.js", other_main.as_str()), ("utils.js", UTILS)],
    );
    let event = json!({"data": {"numbers": [4, 5, 6]}});
    let shared = "the JavaScript runtime's code compiled, shared by every agent it runs";
    let whole = "compiling it whole";
    {
        let server = TestServer::start_in(dir.path(), "");
        let client = server.client();
        deploy(&client, &owner, "survivor", &js).expect("deploy");
        deploy(&client, &owner, "sibling", &other).expect("deploy");
        for name in ["survivor", "sibling"] {
            let r = client.invoke(name, event.clone()).unwrap();
            assert_eq!(r.result_json().unwrap()["total"], 15, "{r:?}");
        }
        // Two agents, one compilation of the runtime's code.
        let log = server.log();
        assert_eq!(log.matches(shared).count(), 1, "{log}");
        assert!(!log.contains(whole), "{log}");
        server.stop();
    }
    // What an older host left in the disk cache (whole snapshots compiled) is gone too.
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    let server = TestServer::start_in(dir.path(), "");
    for name in ["survivor", "sibling"] {
        let r = server.client().invoke(name, event.clone()).unwrap();
        assert!(r.ok, "{r:?}");
        assert_eq!(r.result_json().unwrap()["total"], 15);
    }
    let log = server.log();
    assert_eq!(
        log.matches("snapshot prepared over its engine's shared code")
            .count(),
        2,
        "{log}"
    );
    assert_eq!(log.matches(shared).count(), 1, "{log}");
    assert!(!log.contains(whole), "{log}");
}
