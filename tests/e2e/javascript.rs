//! JavaScript agents from source (`components/js-runtime`, docs/PROTOCOL.md §24): deployed as
//! a modules map, set up once and snapshotted, invoked many times in fresh instances from the
//! snapshot; bad modules refused at deployment with the module and position.

use std::collections::BTreeMap;

use hypervisor_client::Client;
use hypervisor_client::agents::Deployment;
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::JsSource;
use serde_json::{Value, json};

use crate::harness::{TestServer, code};

fn source(main: &str, modules: &[(&str, &str)]) -> JsSource {
    JsSource {
        main: main.to_string(),
        modules: modules
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn deploy(
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

/// Assist TEE's own example, in TypeScript: types, interfaces and generics stripped at
/// deployment.
#[test]
fn a_typescript_agent_with_types_interfaces_and_generics() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let main = r#"
import { sum, Pair, pick } from "./utils";
interface Event { data: { a: number; b: number }; env?: Record<string, string> }
export async function handler(event: Event, context: { executionId: string }): Promise<object> {
  const pair: Pair<number> = { left: event.data.a, right: event.data.b };
  return { result: sum(pair.left, pair.right), first: pick<number>([7, 8], 0), id: context.executionId };
}
"#;
    let utils = r#"
export interface Pair<T> { left: T; right: T }
export function sum(a: number, b: number): number { return a + b; }
export const pick = <T,>(xs: T[], i: number): T => xs[i];
"#;
    let js = source("main.ts", &[("main.ts", main), ("utils.ts", utils)]);
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
            ("main.ts", main),
            ("utils.ts", "export const x: number = ;\n"),
        ],
    );
    let err = deploy(&client, &owner, "ts-broken", &broken).unwrap_err();
    assert!(err.contains("syntax_error: utils.ts:1:26"), "{err}");
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
