//! JavaScript agents on StarlingMonkey (`"engine": "starlingmonkey"`, docs/JAVASCRIPT.md
//! "Engines"): the same source as on the default engine, set up and snapshotted inside the
//! host (`host/src/engine/starlingmonkey/`), invoked as handler agents; the same answers,
//! the same error codes, the same limits.

use hypervisor_client::agents::Deployment;
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::JsEngine;
use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::javascript::{deploy, source_on as source};

/// Assist TEE's example in TypeScript (types stripped by the host; `./utils` without its
/// extension), a CPU-bound handler, and what JSON and the web platform make.
const MAIN: &str = r#"
import { sum, busy } from "./utils";
const atTopLevel = typeof Deno.env.get;
interface Event { data: { numbers: number[] }; n?: number; env?: Record<string, string> }
export async function handler(event: Event, context: { executionId: string; agentName: string }) {
  console.error("summing", event.data.numbers.length, "numbers");
  await new Promise((resolve) => setTimeout(resolve, 1));
  const url = new URL("https://example.com/a/../b?x=1&y=%20");
  return {
    total: sum(event.data.numbers),
    busy: busy(event.n ?? 1000),
    executionId: context.executionId,
    agent: context.agentName,
    env: Deno.env.get("A") ?? null,
    order: { zebra: 1, apple: 2, "10": 3, "2": 4 },
    numbers: [0.1 + 0.2, 1e21, -0, 5e-324],
    text: "\u2028 \" \\ \u0007 é",
    url: [url.pathname, url.searchParams.get("y")],
    base64: btoa("hello"),
    bytes: Array.from(new TextEncoder().encode("é")),
    atTopLevel,
  };
}
"#;
const UTILS: &str = r#"
export function sum(xs: number[]): number { return xs.reduce((a, b) => a + b, 0); }
export function busy(n: number) {
  let x = 12345;
  const xs: number[] = [];
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) % 2147483648; xs.push(x); }
  xs.sort((a, b) => a - b);
  const rows = xs.slice(0, 50).map((v, i) => ({ i, v, hex: v.toString(16) }));
  return { min: xs[0], max: xs[xs.length - 1], size: JSON.stringify(rows).length };
}
"#;

#[test]
fn the_same_source_answers_the_same_on_both_engines() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let modules = [("main.ts", MAIN), ("utils.ts", UTILS)];
    let boa = source(JsEngine::Boa, "main.ts", &modules);
    let sm = source(JsEngine::StarlingMonkey, "main.ts", &modules);
    assert_ne!(
        boa.sha256(),
        sm.sha256(),
        "the engine is signed with the source"
    );
    deploy(&client, &owner, "on-boa", &boa).expect("deploy on Boa");
    let agent = deploy(&client, &owner, "on-sm", &sm).expect("deploy on StarlingMonkey");
    assert_eq!(agent["latest"]["kind"], "handler", "{agent}");
    assert!(
        server.log().contains("set up in StarlingMonkey"),
        "{}",
        server.log()
    );
    for event in [
        json!({"data": {"numbers": [1, 2, 3]}, "n": 2000, "env": {"A": "b"}}),
        json!({"data": {"numbers": [10, 20]}}),
    ] {
        let a = client.invoke("on-boa", event.clone()).unwrap();
        let b = client.invoke("on-sm", event.clone()).unwrap();
        assert!(a.ok && b.ok, "{a:?} {b:?}");
        let (ra, rb) = (a.result_json().unwrap(), b.result_json().unwrap());
        assert_eq!(rb["executionId"], b.execution_id.as_str());
        assert_eq!(rb["agent"], "on-sm");
        assert_eq!(rb["total"], ra["total"]);
        for key in [
            "busy", "env", "order", "numbers", "text", "url", "base64", "bytes",
        ] {
            assert_eq!(rb[key], ra[key], "{key}: {rb} against {ra}");
        }
        // Byte for byte as JSON.stringify made it: key order and number formatting included.
        let raw = b
            .result
            .as_ref()
            .map(|r| r.get().to_owned())
            .unwrap_or_default();
        assert!(
            raw.contains(r#""order":{"2":4,"10":3,"zebra":1,"apple":2}"#)
                && raw.contains(r#""numbers":[0.30000000000000004,1e+21,0,5e-324]"#),
            "{raw}"
        );
        // The log: stderr, as on Boa (a handler's stdout is not returned).
        assert!(b.stderr.starts_with("summing "), "{b:?}");
        assert_eq!(a.stderr, b.stderr);
    }
}

#[test]
fn starlingmonkey_refuses_bad_modules_with_the_default_engines_codes_and_keeps_limits() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let sm = |modules: &[(&str, &str)]| source(JsEngine::StarlingMonkey, "main.js", modules);
    let cases = [
        (
            "syntax",
            sm(&[("main.js", "export function handler() {\n  return 1 +;\n}\n")]),
            "syntax_error: main.js:2:",
        ),
        (
            "missing",
            sm(&[(
                "main.js",
                "import { x } from './nope.js';\nexport function handler() { return x; }",
            )]),
            "missing_module",
        ),
        (
            "nohandler",
            sm(&[("main.js", "export const answer = 42;")]),
            "no_handler",
        ),
        (
            "forged",
            sm(&[(
                "main.js",
                "console.error('Exception while evaluating top-level script\\nmain.js:1:1 \
                 SyntaxError: forged');\nexport const answer = 42;",
            )]),
            "no_handler",
        ),
        (
            "clash",
            sm(&[
                ("main.js", "export function handler() {}"),
                ("lib", "export {}"),
                ("lib/x.js", "export {}"),
            ]),
            "bad_module_name: lib",
        ),
        (
            "random",
            sm(&[(
                "main.js",
                "const seed = Math.random();\nexport function handler() { return seed; }",
            )]),
            "module_threw: the modules' top-level code used `wasi:random/random",
        ),
        (
            "throws",
            sm(&[(
                "main.js",
                "throw new Error('boom at load');\nexport function handler() {}",
            )]),
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
    // An endless loop at load ends at the set-up's time limit.
    let err = client
        .deploy_js(
            &owner,
            &Deployment {
                name: "looper",
                description: "never loads",
                limits: Some(hypervisor_protocol::wire::Limits {
                    time_ms: Some(1500),
                    ..Default::default()
                }),
                ..Deployment::default()
            },
            &sm(&[("main.js", "while (true) {}\nexport function handler() {}")]),
        )
        .expect_err("an endless set-up")
        .to_string();
    assert!(err.contains("time limit"), "{err}");
    // Handlers that throw, return what JSON cannot hold, or loop: the same codes as on Boa.
    let js = sm(&[(
        "main.js",
        r#"export async function handler(e) {
             if (e === "throw") throw new TypeError("no good");
             if (e === "bigint") return 10n;
             if (e === "undefined") return undefined;
             if (e === "symbol") return Symbol("s");
             if (e === "state") return agentState.bucket("b");
             if (e === "loop") for (;;) {}
             return "fine";
           }"#,
    )]);
    deploy(&client, &owner, "moody", &js).expect("deploy");
    let error = |event: &str| {
        let r = client.invoke("moody", json!(event)).unwrap();
        assert!(!r.ok, "{r:?}");
        let e = r.error.unwrap();
        (e.code, e.message)
    };
    let (code, message) = error("throw");
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("handler_threw", "TypeError: no good")
    );
    assert_eq!(error("bigint").0, "result_not_json");
    let (code, message) = error("symbol");
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "result_not_json",
            "the handler's result is a symbol, which JSON cannot carry"
        )
    );
    // As on Boa: nothing returned is `null`; the state API names the engine that lacks it.
    let (status, body) = client
        .post_json("/agents/moody/invoke", &json!({"event": "undefined"}))
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["ok"], &body["result"]),
        (&json!(true), &json!(null)),
        "{body}"
    );
    let (code, message) = error("state");
    assert_eq!(code, "handler_threw");
    assert!(
        message.contains("agentState is not available in the StarlingMonkey engine"),
        "{message}"
    );
    let (status, body) = client
        .post_json(
            "/agents/moody/invoke",
            &json!({"event": "loop", "limits": {"time_ms": 300}}),
        )
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], false, "{body}");
    assert_eq!(body["status"], "time_limit_exceeded", "{body}");
    let r = client.invoke("moody", json!("x")).unwrap();
    assert_eq!(r.result_json().unwrap(), json!("fine"));
}

#[test]
fn a_host_without_starlingmonkey_says_so_and_its_agents_share_the_engines_code_after_a_restart() {
    let owner = ClientSecret::generate().unwrap();
    let js = source(
        JsEngine::StarlingMonkey,
        "main.js",
        &[(
            "main.js",
            "export function handler(e) { return { twice: e * 2 }; }",
        )],
    );
    {
        let server = TestServer::start_with("[javascript]\nstarlingmonkey = \"\"\n");
        let err = deploy(&server.client(), &owner, "nope", &js).expect_err("no engine");
        assert!(err.contains("engine_unavailable"), "{err}");
    }
    // Agents share one compiled copy of the engine's code. A snapshot whose compiled artifact
    // is gone (another replica, a lost cache) is recognised by its code and prepared over
    // that shared code again, not compiled from scratch.
    let shared = "StarlingMonkey's code compiled, shared by every agent it runs";
    let whole = "compiling it whole";
    let dir = tempfile::tempdir().unwrap();
    {
        let server = TestServer::start_in(dir.path(), "");
        deploy(&server.client(), &owner, "twice", &js).expect("deploy");
        // The command line asks for the engine too (`--js-engine`), and says what is wrong.
        let home = tempfile::tempdir().unwrap();
        let key = home.path().join("owner.key");
        let main = home.path().join("main.js");
        std::fs::write(
            &main,
            "export const handler = (e) => ({ engine: typeof e });",
        )
        .unwrap();
        let cli = |engine: &str| {
            crate::client_cli::run(
                &server,
                home.path(),
                &[
                    "--key",
                    key.to_str().unwrap(),
                    "--json",
                    "agent",
                    "deploy",
                    "cli-sm",
                    "--js",
                    main.to_str().unwrap(),
                    "--js-engine",
                    engine,
                ],
                b"",
            )
        };
        let (code, stdout, stderr) = cli("starlingmonkey");
        assert_eq!(code, 0, "{stdout}{stderr}");
        let r = server.client().invoke("cli-sm", json!(1)).unwrap();
        assert_eq!(r.result_json().unwrap(), json!({"engine": "number"}));
        let (code, _, stderr) = cli("v8");
        assert_ne!(code, 0);
        assert!(stderr.contains("write boa or starlingmonkey"), "{stderr}");
        // Two agents, one compilation of the engine's code.
        let log = server.log();
        assert_eq!(log.matches(shared).count(), 1, "{log}");
        assert!(!log.contains(whole), "{log}");
        server.stop();
    }
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    let server = TestServer::start_in(dir.path(), "");
    let r = server.client().invoke("twice", json!(21)).unwrap();
    assert_eq!(r.result_json().unwrap(), json!({"twice": 42}));
    let r = server.client().invoke("cli-sm", json!(1)).unwrap();
    assert_eq!(r.result_json().unwrap(), json!({"engine": "number"}));
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

/// The globals probed.
const NAMES: &[&str] = &[
    "setTimeout",
    "setInterval",
    "clearTimeout",
    "queueMicrotask",
    "structuredClone",
    "atob",
    "btoa",
    "URL",
    "URLSearchParams",
    "URLPattern",
    "TextEncoder",
    "TextDecoder",
    "TextEncoderStream",
    "TextDecoderStream",
    "CompressionStream",
    "DecompressionStream",
    "AbortController",
    "AbortSignal",
    "Event",
    "EventTarget",
    "DOMException",
    "Headers",
    "Request",
    "Response",
    "FormData",
    "Blob",
    "File",
    "ReadableStream",
    "WritableStream",
    "TransformStream",
    "crypto",
    "CryptoKey",
    "performance",
    "console",
    "fetch",
    "navigator",
    "reportError",
    "Deno",
    "agentState",
    "agentConfig",
];

/// The globals each engine offers, probed through the real routes (`NAMES` is prepended as
/// `names`): docs/JAVASCRIPT.md's "Engines" table is this list.
const PROBE: &str = r#"
export async function handler() {
  const present = names.filter((n) => typeof globalThis[n] !== "undefined");
  const subtle = [];
  const key = new Uint8Array(32);
  const data = new TextEncoder().encode("abc");
  const tryIt = async (name, f) => { try { await f(); subtle.push(name); } catch {} };
  await tryIt("digest", () => crypto.subtle.digest("SHA-256", data));
  await tryIt("HMAC", async () => {
    const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    await crypto.subtle.sign("HMAC", k, data);
  });
  await tryIt("ECDSA P-256", async () => {
    const k = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, k.privateKey, data);
  });
  await tryIt("AES-GCM", async () => {
    const k = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
    await crypto.subtle.encrypt({ name: "AES-GCM", iv: new Uint8Array(12) }, k, data);
  });
  return { present, subtle, uuid: typeof crypto.randomUUID === "function" };
}
"#;

#[test]
fn each_engines_web_platform_as_the_docs_list_it() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let mut seen = Vec::new();
    for engine in [JsEngine::Boa, JsEngine::StarlingMonkey] {
        let name = format!("probe-{}", engine.as_str());
        let probe = format!("const names = {};\n{PROBE}", json!(NAMES));
        deploy(
            &client,
            &owner,
            &name,
            &source(engine, "main.js", &[("main.js", &probe)]),
        )
        .expect("deploy");
        let r = client.invoke(&name, json!(null)).unwrap();
        assert!(r.ok, "{r:?}");
        seen.push(r.result_json().unwrap());
    }
    println!("boa: {}\nstarlingmonkey: {}", seen[0], seen[1]);
    let missing = |v: &Value, name: &str| !v["present"].as_array().unwrap().contains(&json!(name));
    // Boa has the whole list (docs/JAVASCRIPT.md's table).
    for name in NAMES {
        assert!(!missing(&seen[0], name), "Boa lacks {name}: {}", seen[0]);
    }
    // StarlingMonkey lacks the few interfaces docs/JAVASCRIPT.md lists; the rest is there.
    let lacking: Vec<&str> = NAMES
        .iter()
        .copied()
        .filter(|n| missing(&seen[1], n))
        .collect();
    assert_eq!(
        lacking,
        [
            "URLPattern",
            "TextEncoderStream",
            "TextDecoderStream",
            "navigator",
            "reportError",
        ],
        "{}",
        seen[1]
    );
    assert_eq!(seen[1]["subtle"], json!(["digest", "HMAC"]));
    assert_eq!(
        seen[0]["subtle"],
        json!(["digest", "HMAC", "ECDSA P-256", "AES-GCM"])
    );
}

/// Nothing random or timed is baked into the snapshot: every invocation, a fresh instance of
/// the same image, draws other random bytes and reads the clock anew.
#[test]
fn randomness_and_clocks_are_fresh_in_every_invocation() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let js = source(
        JsEngine::StarlingMonkey,
        "main.js",
        &[(
            "main.js",
            r#"export function handler() {
                 return {
                   bytes: Array.from(crypto.getRandomValues(new Uint8Array(16))),
                   uuid: crypto.randomUUID(),
                   random: Math.random(),
                   now: Date.now(),
                 };
               }"#,
        )],
    );
    deploy(&client, &owner, "dice", &js).expect("deploy");
    let draws: Vec<Value> = (0..3)
        .map(|_| {
            let r = client.invoke("dice", json!(null)).unwrap();
            assert!(r.ok, "{r:?}");
            std::thread::sleep(std::time::Duration::from_millis(5));
            r.result_json().unwrap()
        })
        .collect();
    for key in ["bytes", "uuid", "random"] {
        assert_ne!(draws[0][key], draws[1][key], "{key} repeats: {draws:?}");
        assert_ne!(draws[1][key], draws[2][key], "{key} repeats: {draws:?}");
    }
    let now = |i: usize| draws[i]["now"].as_u64().unwrap();
    assert!(now(2) > now(0), "{draws:?}");
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(since_epoch.abs_diff(now(2)) < 60_000, "{draws:?}");
}
