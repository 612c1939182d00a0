//! JavaScript agents' web platform (WinterTC's Minimum Common API, docs/JAVASCRIPT.md) checked
//! with public conformance suites from web-platform-tests (tests/wpt/README.md has each
//! file's origin and licence), run inside a JS agent through the real environments routes:
//! one set-up of tests/wpt/driver.js with our testharness stand-in and the imported files, then
//! one execution per file or data suite. Every outcome that is not a pass must be listed in
//! tests/wpt/expected-failures.txt, and every listed one must still fail: a regression and an
//! unexpected improvement both fail the test (update the list with the printed lines).
//!
//! Then the same interfaces through the native JS agent routes, results and events byte for
//! byte as JavaScript's JSON makes them, and a timer past the time limit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hypervisor_client::agents::Deployment;
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::JsSource;
use serde_json::{Value, json};

use crate::harness::TestServer;

const TOKEN: &str = "web-platform-token-0123456789";

fn wpt_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/wpt")
}

/// `POST path` with the bearer token and a JSON body: (status, body).
fn post(server: &TestServer, path: &str, body: &Value) -> (u16, Value) {
    let mut resp = ureq::post(format!("{}{path}", server.url))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(body)
        .expect("POST");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Every imported WPT file (tests/wpt/imported/: scripts and the JSON they fetch), by its path
/// in WPT.
fn imported() -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("tests/wpt/imported") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "js" || e == "json") {
                let name = path.strip_prefix(root).expect("inside");
                let name = name.to_string_lossy().replace('\\', "/");
                out.insert(name, std::fs::read_to_string(&path).expect("a WPT file"));
            }
        }
    }
    let root = wpt_dir().join("imported");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

fn read(name: &str) -> String {
    std::fs::read_to_string(wpt_dir().join(name)).expect("a tests/wpt file")
}

#[test]
fn web_platform_tests_pass_through_the_environments_routes() {
    let server = TestServer::start_with(&format!(
        "\n[javascript]\nenvironments_token = \"{TOKEN}\"\n"
    ));
    let files = imported();
    let tests: Vec<String> = files
        .keys()
        .filter(|f| f.ends_with(".any.js"))
        .cloned()
        .collect();
    assert!(tests.len() >= 20, "the imported WPT files: {tests:?}");
    let sources = format!(
        "export default {};\n",
        serde_json::to_string(&files).unwrap()
    );
    let (status, env) = post(
        &server,
        "/environments/setup",
        &json!({"mainModule": "main.js", "modules": {
            "main.js": read("driver.js"),
            "harness.js": read("harness.js"),
            "sources.js": sources,
        }}),
    );
    assert_eq!(status, 200, "{env}");
    let id = env["id"].as_str().expect("an environment id").to_string();

    let mut not_passing = BTreeSet::new();
    let mut summary = Vec::new();
    let (mut passed_all, mut ran_all) = (0, 0);
    for name in tests {
        // console-log-large-array.any.js builds an array of ten million items.
        let (status, r) = post(
            &server,
            &format!("/environments/{id}/execute"),
            &json!({"data": {"file": name}, "limits": {"timeoutMs": 60000, "memoryMb": 512}}),
        );
        assert_eq!(status, 200, "{name}: {r}");
        if r["exitCode"] != 0 {
            // The engine itself failed (a Boa panic ends the instance): the whole file is one
            // outcome, listed like any other.
            let line = format!("CRASH {}", Value::from(name.clone()));
            eprintln!("{line}\n    {}", r["stderr"].as_str().unwrap_or(""));
            summary.push(format!("{name}: crashed"));
            not_passing.insert(line);
            continue;
        }
        let results: Vec<Value> =
            serde_json::from_str(r["stdout"].as_str().expect("stdout")).expect("results");
        assert!(!results.is_empty(), "{name} ran no test");
        let passed = results.iter().filter(|t| t["status"] == "PASS").count();
        summary.push(format!("{name}: {passed}/{}", results.len()));
        passed_all += passed;
        ran_all += results.len();
        for t in results.iter().filter(|t| t["status"] != "PASS") {
            // The name as a JSON string: names hold control characters.
            let line = format!("{} {}", t["status"].as_str().unwrap_or("?"), t["name"]);
            eprintln!("{line}\n    {}", t["message"].as_str().unwrap_or(""));
            not_passing.insert(line);
        }
    }
    eprintln!(
        "web-platform-tests: {passed_all}/{ran_all} passed\n  {}",
        summary.join("\n  ")
    );

    let expected: BTreeSet<String> = read("expected-failures.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    let new: Vec<&String> = not_passing.difference(&expected).collect();
    let fixed: Vec<&String> = expected.difference(&not_passing).collect();
    assert!(
        new.is_empty() && fixed.is_empty(),
        "failing but not in tests/wpt/expected-failures.txt:\n{}\n\nlisted there but passing now:\n{}",
        new.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        fixed
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    );
}

/// A handler touching every interface once, deployed through the native agent routes.
const TOUR: &str = r#"
export async function handler(event) {
  const out = {};
  const t = (name, f) => { try { out[name] = f(); } catch (e) { out[name] = `${e.name}: ${e.message}`; } };
  const order = [];
  queueMicrotask(() => order.push("microtask"));
  setTimeout(() => order.push("timeout 10"), 10);
  setTimeout(() => order.push("timeout 0"), 0);
  let ticks = 0;
  const ticked = new Promise((resolve) => {
    const interval = setInterval(() => { if (++ticks === 3) { clearInterval(interval); resolve(); } }, 1);
  });
  order.push("sync");
  const started = performance.now();
  await Promise.all([ticked, new Promise((resolve) => setTimeout(resolve, 30))]);
  // A cleared interval does not run again.
  await new Promise((resolve) => setTimeout(resolve, 5));
  out.order = order;
  out.ticks = ticks;
  out.waited = performance.now() - started >= 29;
  t("base64", () => [btoa("hi\u00ff"), atob(" aGn/ ")]);
  t("atob", () => atob("a"));
  t("url", () => {
    const u = new URL("../b?x=1#f", "https://user@Example.COM:443/a/c");
    u.searchParams.append("y", "2 3");
    return [u.href, u.origin, u.pathname, [...u.searchParams]];
  });
  t("badUrl", () => new URL("no scheme"));
  t("decoder", () => {
    const d = new TextDecoder("utf-8", { fatal: true });
    return d.decode(new Uint8Array([0xe2, 0x82]), { stream: true }) + d.decode(new Uint8Array([0xac]));
  });
  t("fatal", () => new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xc3])));
  t("clone", () => { const o = { m: new Map([[1, new Date(0)]]) }; o.o = o; const c = structuredClone(o); return [c.o === c, c.m.get(1).getTime()]; });
  t("cloneFunction", () => structuredClone({ f() {} }));
  t("quota", () => crypto.getRandomValues(new Uint8Array(65537)));
  t("uuid", () => /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(crypto.randomUUID()));
  const controller = new AbortController();
  const seen = [];
  controller.signal.addEventListener("abort", (e) => seen.push(e.type));
  controller.abort();
  const timeout = AbortSignal.timeout(5);
  await new Promise((resolve) => timeout.addEventListener("abort", resolve));
  out.abort = [seen, controller.signal.reason.name, timeout.reason.name, timeout.reason.code];
  const target = new EventTarget();
  target.addEventListener("ping", (e) => e.preventDefault(), { once: true });
  out.events = [target.dispatchEvent(new Event("ping", { cancelable: true })), target.dispatchEvent(new Event("ping", { cancelable: true }))];
  console.log("%s has %d keys: %o", "event", Object.keys(event).length, { keys: Object.keys(event.data) });
  out.eventKeys = Object.keys(event.data);
  return out;
}
"#;

#[test]
fn the_web_platform_and_javascripts_json_through_the_native_agent_routes() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let deploy = |name: &str, main: &str| {
        client
            .deploy_js(
                &owner,
                &Deployment {
                    name,
                    description: "the web platform",
                    ..Deployment::default()
                },
                &JsSource {
                    engine: Default::default(),
                    main: "main.js".into(),
                    modules: BTreeMap::from([("main.js".to_string(), main.to_string())]),
                },
            )
            .expect("deploy")
    };
    deploy("tour", TOUR);
    let r = client
        .invoke("tour", json!({"data": {"zeta": 1, "alpha": 2, "mid": 3}}))
        .unwrap();
    assert!(r.ok, "{r:?}");
    let out = r.result_json().unwrap();
    assert_eq!(
        out["order"],
        json!(["sync", "microtask", "timeout 0", "timeout 10"]),
        "{out}"
    );
    assert_eq!(out["ticks"], 3, "{out}");
    assert_eq!(out["waited"], true, "{out}");
    assert_eq!(out["base64"], json!(["aGn/", "hi\u{ff}"]));
    assert_eq!(
        out["atob"],
        "InvalidCharacterError: atob: the string is not correctly encoded"
    );
    assert_eq!(
        out["url"],
        json!([
            "https://user@example.com/b?x=1&y=2+3#f",
            "https://example.com",
            "/b",
            [["x", "1"], ["y", "2 3"]]
        ])
    );
    assert_eq!(out["badUrl"], "TypeError: Invalid URL: \"no scheme\"");
    assert_eq!(out["decoder"], "€");
    assert_eq!(
        out["fatal"],
        "TypeError: TextDecoder: the data is not valid utf-8"
    );
    assert_eq!(out["clone"], json!([true, 0]));
    assert_eq!(
        out["cloneFunction"],
        "DataCloneError: function f could not be cloned"
    );
    assert_eq!(
        out["quota"],
        "QuotaExceededError: getRandomValues: 65537 bytes asked, at most 65536 at once"
    );
    assert_eq!(out["uuid"], true);
    assert_eq!(
        out["abort"],
        json!([["abort"], "AbortError", "TimeoutError", 23])
    );
    assert_eq!(out["events"], json!([false, true]));
    // The event's keys reach the handler in the client's order.
    assert_eq!(out["eventKeys"], json!(["zeta", "alpha", "mid"]));

    // The result, byte for byte as JSON.stringify made it: key order, number formatting,
    // escapes, and the values JSON leaves out.
    deploy(
        "shapes",
        r#"export function handler(event) {
  const kind = event.data;
  if (kind === "object") return { z: 1, a: [1e21, -0, 0.1 + 0.2, 5e-7], "\u2028": "\ud800", u: undefined, f() {} };
  if (kind === "nothing") return undefined;
  if (kind === "function") return () => 1;
  if (kind === "symbol") return Symbol("s");
  if (kind === "bigint") return { n: 1n };
  if (kind === "cycle") { const o = {}; o.o = o; return o; }
  return { echo: event.data };
}"#,
    );
    // On the wire (plain HTTP: the answer's text), the result is JSON.stringify's text as it is,
    // a lone surrogate's escape included.
    let mut resp = ureq::post(format!("{}/agents/shapes/invoke", server.url))
        .send_json(json!({"event": {"data": "object"}}))
        .expect("invoke");
    let text = resp.body_mut().read_to_string().expect("body");
    // (U+2028 as the character itself: JSON.stringify does not escape it.)
    let stringified = "{\"z\":1,\"a\":[1e+21,0,0.30000000000000004,5e-7],\"\u{2028}\":\"\\ud800\"}";
    assert!(
        text.contains(&format!("\"result\":{stringified}")),
        "{text}"
    );
    // Through the Rust client, which reads that lone surrogate as U+FFFD (a Rust string cannot
    // hold one).
    let raw = |kind: Value| {
        let r = client.invoke("shapes", json!({"data": kind})).unwrap();
        (r.ok, r.result_json(), r.error.map(|e| (e.code, e.message)))
    };
    assert_eq!(
        raw(json!("object")),
        (
            true,
            Some(
                json!({"z": 1, "a": [1e21, 0, 0.30000000000000004, 5e-7], "\u{2028}": "\u{fffd}"})
            ),
            None
        )
    );
    // `undefined` is `null` (which the client reads as no result).
    assert_eq!(raw(json!("nothing")), (true, None, None));
    let refused = |kind: &str| raw(json!(kind)).2.expect("an error");
    assert_eq!(
        refused("function"),
        (
            "result_not_json".into(),
            "the handler's result is a function, which JSON cannot carry".into()
        )
    );
    assert_eq!(
        refused("symbol"),
        (
            "result_not_json".into(),
            "the handler's result is a symbol, which JSON cannot carry".into()
        )
    );
    let (code, message) = refused("bigint");
    assert_eq!(code, "result_not_json");
    assert!(
        message.contains("TypeError") && message.contains("bigint"),
        "{message}"
    );
    let (code, message) = refused("cycle");
    assert_eq!(code, "result_not_json");
    assert!(message.contains("cyclic"), "{message}");
}

/// crypto.subtle against published vectors, and a signature the test checks with RustCrypto;
/// Blob, FormData, Request and Response bodies.
const CRYPTO_AND_BODIES: &str = r#"
const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");
const bytes = (h) => Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16));
export async function handler(event) {
  const s = crypto.subtle, out = {};
  out.sha256 = hex(await s.digest("SHA-256", new TextEncoder().encode("abc")));
  out.sha1 = hex(await s.digest({ name: "sha-1" }, new TextEncoder().encode("abc")));
  const mac = await s.importKey("raw", new Uint8Array(20).fill(0x0b), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
  const tag = await s.sign("HMAC", mac, new TextEncoder().encode("Hi There"));
  out.hmac = hex(tag);
  out.hmacVerifies = await s.verify("HMAC", mac, tag, new TextEncoder().encode("Hi There"));
  out.hmacRejects = await s.verify("HMAC", mac, tag, new TextEncoder().encode("Hi there"));
  const aes = await s.importKey("raw", new Uint8Array(16), "AES-GCM", true, ["encrypt", "decrypt"]);
  const sealed = await s.encrypt({ name: "AES-GCM", iv: new Uint8Array(12) }, aes, new Uint8Array(16));
  out.gcm = hex(sealed);
  out.gcmOpens = hex(await s.decrypt({ name: "AES-GCM", iv: new Uint8Array(12) }, aes, sealed));
  const forged = new Uint8Array(sealed); forged[0] ^= 1;
  out.gcmForged = await s.decrypt({ name: "AES-GCM", iv: new Uint8Array(12) }, aes, forged).then(() => "opened", (e) => e.name);
  const pair = await s.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const message = new TextEncoder().encode(event.data.message);
  out.signature = hex(await s.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, message));
  out.publicKey = hex(await s.exportKey("raw", pair.publicKey));
  out.ecdsaVerifies = await s.verify({ name: "ECDSA", hash: "SHA-256" }, pair.publicKey, bytes(out.signature), message);
  const jwk = await s.exportKey("jwk", pair.privateKey);
  const again = await s.importKey("jwk", jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
  out.jwkRoundTrip = [jwk.kty, jwk.crv, again.type, again.extractable];
  out.notExtractable = await s.exportKey("raw", mac).then(() => "exported", (e) => e.name);
  out.unsupported = await s.generateKey({ name: "X448" }, true, ["deriveBits"]).then(() => "made", (e) => `${e.name}: ${e.message}`);
  out.keyShown = String(pair.privateKey) + JSON.stringify(pair.privateKey);

  const form = new FormData();
  form.append("name", "agent");
  form.append("file", new Blob(["hello"], { type: "text/plain" }), "a.txt");
  const sent = new Response(form);
  const back = await sent.formData();
  out.form = [back.get("name"), back.get("file").name, await back.get("file").text(), sent.headers.get("content-type").startsWith("multipart/form-data; boundary=")];
  const request = new Request("https://example.com/x#frag", { method: "post", body: new URLSearchParams({ a: "1 2" }) });
  out.request = [request.url, request.method, request.headers.get("content-type"), await request.text(), request.bodyUsed];
  out.json = [Response.json({ ok: true }).headers.get("content-type"), await Response.json({ ok: true }).json()];
  out.blob = await new Blob(["abc", new Uint8Array([100, 101])]).slice(1, 4).text();
  out.badStatus = (() => { try { new Response("", { status: 99 }); return "made"; } catch (e) { return e.name; } })();
  out.getWithBody = (() => { try { new Request("https://example.com", { body: "x" }); return "made"; } catch (e) { return e.name; } })();
  out.navigator = navigator.userAgent;
  out.self = self === globalThis;
  return out;
}
"#;

#[test]
fn crypto_subtle_and_bodies_through_the_native_agent_routes() {
    use p256::ecdsa::signature::Verifier;
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    client
        .deploy_js(
            &owner,
            &Deployment {
                name: "subtle",
                description: "crypto.subtle and bodies",
                ..Deployment::default()
            },
            &JsSource {
                engine: Default::default(),
                main: "main.js".into(),
                modules: BTreeMap::from([("main.js".to_string(), CRYPTO_AND_BODIES.to_string())]),
            },
        )
        .expect("deploy");
    let message = "signed inside the agent";
    let r = client
        .invoke("subtle", json!({"data": {"message": message}}))
        .unwrap();
    assert!(r.ok, "{r:?}");
    let out = r.result_json().unwrap();
    // FIPS 180-2's "abc"; RFC 4231 test case 1; GCM's test case 2 (McGrew and Viega).
    assert_eq!(
        out["sha256"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(out["sha1"], "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(
        out["hmac"],
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    );
    assert_eq!(
        (&out["hmacVerifies"], &out["hmacRejects"]),
        (&json!(true), &json!(false))
    );
    assert_eq!(
        out["gcm"],
        "0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf"
    );
    assert_eq!(out["gcmOpens"], "00000000000000000000000000000000");
    assert_eq!(out["gcmForged"], "OperationError");
    // The agent's ECDSA signature verifies with RustCrypto here.
    let key = hex::decode(out["publicKey"].as_str().unwrap()).unwrap();
    let signature = hex::decode(out["signature"].as_str().unwrap()).unwrap();
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&key).expect("a P-256 point");
    let signature = p256::ecdsa::Signature::from_slice(&signature).expect("r || s");
    key.verify(message.as_bytes(), &signature)
        .expect("the agent's signature verifies");
    assert_eq!(out["ecdsaVerifies"], true);
    assert_eq!(
        out["jwkRoundTrip"],
        json!(["EC", "P-256", "private", false])
    );
    assert_eq!(out["notExtractable"], "InvalidAccessError");
    assert!(
        out["unsupported"]
            .as_str()
            .unwrap()
            .starts_with("NotSupportedError: generateKey: the algorithm \"X448\" is not available"),
        "{out}"
    );
    // A key shows nothing of its material.
    assert_eq!(out["keyShown"], "[object CryptoKey]{}");

    assert_eq!(out["form"], json!(["agent", "a.txt", "hello", true]));
    assert_eq!(
        out["request"],
        json!([
            "https://example.com/x",
            "POST",
            "application/x-www-form-urlencoded;charset=UTF-8",
            "a=1+2",
            true
        ])
    );
    assert_eq!(out["json"], json!(["application/json", {"ok": true}]));
    assert_eq!(out["blob"], "bcd");
    assert_eq!(out["badStatus"], "RangeError");
    assert_eq!(out["getWithBody"], "TypeError");
    assert_eq!(out["navigator"], "WASM-Hypervisor");
    assert_eq!(out["self"], true);
}

#[test]
fn a_handler_waiting_on_timers_past_its_time_limit_ends_with_the_time_limit_error() {
    let server = TestServer::start_with(&format!(
        "\n[javascript]\nenvironments_token = \"{TOKEN}\"\n"
    ));
    let (status, env) = post(
        &server,
        "/environments/setup",
        &json!({"mainModule": "main.js", "modules": {"main.js": "
export async function handler(event) {
  if (event.data === 'interval') return new Promise(() => setInterval(() => {}, 5));
  await new Promise((resolve) => setTimeout(resolve, 60000));
  return 'woke';
}"}}),
    );
    assert_eq!(status, 200, "{env}");
    let id = env["id"].as_str().unwrap().to_string();
    for data in ["timeout", "interval"] {
        let started = std::time::Instant::now();
        let (status, r) = post(
            &server,
            &format!("/environments/{id}/execute"),
            &json!({"data": data, "limits": {"timeoutMs": 300}}),
        );
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["exitCode"], 124, "{data}: {r}");
        assert_eq!(r["stderr"], "Execution timeout exceeded", "{r}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{data}"
        );
    }

    // A missing main module is named, with what the map has.
    let (status, body) = post(
        &server,
        "/environments/setup",
        &json!({"mainModule": "mian.js", "modules": {"main.js": "export const handler = () => 1;"}}),
    );
    assert_eq!(
        (status, &body["code"]),
        (400, &json!("validation_error")),
        "{body}"
    );
    assert_eq!(
        body["error"],
        "mainModule must exist in modules map: \"mian.js\" is not among its 1 modules (main.js)",
        "{body}"
    );
    // `env` that is not an object is refused before anything runs.
    let (status, body) = post(
        &server,
        &format!("/environments/{id}/execute"),
        &json!({"data": 1, "env": ["A"]}),
    );
    assert_eq!(
        (status, &body["code"]),
        (400, &json!("validation_error")),
        "{body}"
    );
}
