//! Assist TEE's environments API (`/environments/*`, docs/PROTOCOL.md §25) driven the way its
//! own clients drive it, with curl: Assist's example set up once and executed twice, the
//! listing, bad input, limits (a loop, a memory bomb), the bearer token, deletion and TTL
//! reaping.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::TestServer;

const TOKEN: &str = "assist-compatible-token-0123";

/// Assist's example (its `examples/main.ts` and `examples/utils.ts`), written here with the
/// same features: a TypeScript handler that logs, reads `a` and `b` from `event.data`, `DEBUG`
/// from `event.env` or `Deno.env`, imports `./utils.ts` *dynamically* inside the handler for
/// `add` and `multiply`, and returns their results with a timestamp and the execution id.
const MAIN: &str = r#"export async function handler(event: any, context: any) {
  console.log("handler called for", context.executionId, "in", context.environmentId);
  const { a, b } = event.data || { a: 0, b: 0 };
  const debug = event.env?.DEBUG || Deno.env.get("DEBUG");
  if (debug) console.log(`adding ${a} and ${b}`);
  const { add, multiply } = await import("./utils.ts");
  return {
    sum: add(a, b),
    product: multiply(a, b),
    timestamp: new Date().toISOString(),
    debug: Deno.env.get("DEBUG") ?? null,
    executionId: context.executionId,
    environmentId: context.environmentId,
    requestId: context.requestId,
  };
}
"#;
const UTILS: &str = r#"export function add(x: number, y: number): number {
  return x + y;
}
export function multiply(x: number, y: number): number {
  return x * y;
}
export const greet = (name: string): string => `Hello, ${name}!`;
"#;

/// `curl -X method` of `body` (if any) to `path`, with the bearer token if `token`:
/// (status, body text).
fn curl(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut command = Command::new("curl");
    command.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method]);
    if let Some(t) = token {
        command.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if body.is_some() {
        command.args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "@-",
        ]);
    }
    let mut child = command
        .arg(format!("{}{path}", server.url))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    let mut stdin = child.stdin.take().expect("stdin");
    if let Some(b) = body {
        stdin.write_all(b.as_bytes()).expect("body");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').expect("curl's status line");
    (status.parse().expect("a status"), body.to_string())
}

/// `curl` with the token, the body parsed as JSON (null if none).
fn call(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (status, text) = curl(server, method, path, Some(TOKEN), body.as_deref());
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn server() -> TestServer {
    TestServer::start_with(&format!(
        "\n[javascript]\nenvironments_token = \"{TOKEN}\"\n"
    ))
}

fn setup(server: &TestServer, modules: Value, main: &str, ttl: Option<u64>) -> (u16, Value) {
    let mut body = json!({"mainModule": main, "modules": modules});
    if let Some(t) = ttl {
        body["ttlSeconds"] = json!(t);
    }
    call(server, "POST", "/environments/setup", Some(body))
}

#[test]
fn assists_example_sets_up_once_and_executes_twice_through_the_compatible_routes() {
    let server = server();
    // The token is required, as Assist requires its BEARER_TOKEN.
    let (status, text) = curl(&server, "GET", "/environments", None, None);
    assert_eq!((status, text.as_str()), (401, "Unauthorized\n"));
    let (status, _) = curl(
        &server,
        "GET",
        "/environments",
        Some("wrong-token-0123456789"),
        None,
    );
    assert_eq!(status, 401);

    let (status, env) = setup(
        &server,
        json!({"main.ts": MAIN, "utils.ts": UTILS}),
        "main.ts",
        None,
    );
    assert_eq!(status, 200, "{env}");
    let id = env["id"].as_str().expect("an id").to_string();
    assert!(uuid::Uuid::try_parse(&id).is_ok(), "{id}");
    assert_eq!(env["status"], "ready");
    assert_eq!(env["mainModule"], "main.ts");
    assert_eq!(env["ttlSeconds"], 3600);
    assert_eq!(env["executionCount"], 0);
    assert_eq!(env["metadata"]["moduleCount"], 2);
    assert_eq!(env["volumeName"], format!("env-{id}"));
    assert!(env["createdAt"].as_str().unwrap().ends_with('Z'), "{env}");

    let mut executions = Vec::new();
    for (a, b, debug) in [(5, 10, "true"), (-3, 7, "")] {
        let (status, out) = call(
            &server,
            "POST",
            &format!("/environments/{id}/execute"),
            Some(json!({"data": {"a": a, "b": b}, "env": {"DEBUG": debug}})),
        );
        assert_eq!(status, 200, "{out}");
        assert_eq!(out["exitCode"], 0, "{out}");
        assert_eq!(out["stderr"], "");
        assert!(out["durationMs"].as_u64().is_some());
        // stdout is the result as JSON text, as Assist's clients read it (`jq` on `.stdout`).
        let result: Value = serde_json::from_str(out["stdout"].as_str().unwrap()).unwrap();
        assert_eq!(result["sum"], a + b, "{result}");
        assert_eq!(result["product"], a * b, "{result}");
        let timestamp = result["timestamp"].as_str().unwrap();
        assert!(
            timestamp.starts_with("20") && timestamp.ends_with('Z'),
            "{timestamp}"
        );
        assert_eq!(result["environmentId"], id.as_str());
        assert_eq!(result["executionId"], out["id"]);
        assert_eq!(result["requestId"], out["id"]);
        // `Deno.env` carries `env` (an empty string is falsy: `?? null` keeps it).
        assert_eq!(result["debug"], debug);
        executions.push(out["id"].as_str().unwrap().to_string());
    }
    assert_ne!(executions[0], executions[1]);

    let (status, list) = call(&server, "GET", "/environments", None);
    assert_eq!(status, 200);
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id.as_str())
        .expect("listed");
    assert_eq!(listed["executionCount"], 2, "{listed}");
    assert!(listed["lastExecutedAt"].is_string());

    // The environment is a private agent: nobody runs it in the clear outside these routes.
    let (status, body) = curl(
        &server,
        "POST",
        &format!("/agents/env-{id}/invoke"),
        None,
        Some(r#"{"event": {"data": {"a": 1, "b": 2}}}"#),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("agent_not_public"), "{body}");

    // Deleted: gone from the listing, and its id is unknown.
    let (status, _) = call(&server, "DELETE", &format!("/environments/{id}"), None);
    assert_eq!(status, 204);
    let (status, body) = call(
        &server,
        "POST",
        &format!("/environments/{id}/execute"),
        Some(json!({"data": {}})),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("environment_not_found"))
    );
    let (status, body) = call(&server, "DELETE", &format!("/environments/{id}"), None);
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("environment_not_found"))
    );
    let (_, list) = call(&server, "GET", "/environments", None);
    assert!(
        !list
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == id.as_str())
    );
}

#[test]
fn bad_input_limits_and_expiry_get_assists_answers() {
    let server = server();
    let expect = |(status, body): (u16, Value), want: u16, code: &str| {
        assert_eq!(status, want, "{body}");
        assert_eq!(body["code"], code, "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    };
    // Setup: Assist's validation, then the runtime's refusals with module, line and column.
    expect(
        setup(&server, json!({"a.js": "x"}), "", None),
        400,
        "validation_error",
    );
    expect(
        setup(&server, json!({}), "a.js", None),
        400,
        "validation_error",
    );
    expect(
        setup(&server, json!({"a.js": "x"}), "b.js", None),
        400,
        "validation_error",
    );
    let (status, text) = curl(
        &server,
        "POST",
        "/environments/setup",
        Some(TOKEN),
        Some("{nope"),
    );
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["code"],
        "invalid_request"
    );
    expect(
        call(
            &server,
            "POST",
            "/environments/setup",
            Some(
                json!({"mainModule": "a.js", "modules": {"a.js": "x"}, "dependencies": {"npm": {"date-fns": "3"}}}),
            ),
        ),
        400,
        "validation_error",
    );
    let (status, body) = setup(
        &server,
        json!({"main.ts": "export function handler(e: number {\n}"}),
        "main.ts",
        None,
    );
    expect((status, body.clone()), 400, "setup_failed");
    assert!(
        body["error"].as_str().unwrap().contains("main.ts:1:"),
        "{body}"
    );
    let (status, body) = setup(
        &server,
        json!({"main.js": "export const x = 1;"}),
        "main.js",
        None,
    );
    expect((status, body.clone()), 400, "setup_failed");
    assert!(
        body["error"].as_str().unwrap().contains("no_handler"),
        "{body}"
    );

    // Execute: ids, then a handler that throws, loops, or allocates without bound.
    expect(
        call(
            &server,
            "POST",
            "/environments/not-a-uuid/execute",
            Some(json!({})),
        ),
        400,
        "invalid_id",
    );
    expect(
        call(
            &server,
            "POST",
            &format!("/environments/{}/execute", uuid::Uuid::new_v4()),
            Some(json!({})),
        ),
        404,
        "environment_not_found",
    );
    let moody = r#"export function handler(event) {
      if (event.data === "throw") throw new Error("no good");
      if (event.data === "loop") { for (;;) {} }
      if (event.data === "hog") { const xs = []; for (;;) xs.push(new Array(100000).fill(7)); }
      return { ok: true };
    }"#;
    let (status, env) = setup(&server, json!({"main.js": moody}), "main.js", None);
    assert_eq!(status, 200, "{env}");
    let id = env["id"].as_str().unwrap().to_string();
    let run = |data: &str, limits: Value| {
        let (status, out) = call(
            &server,
            "POST",
            &format!("/environments/{id}/execute"),
            Some(json!({"data": data, "limits": limits})),
        );
        assert_eq!(status, 200, "{out}");
        out
    };
    let out = run("throw", json!({}));
    assert_eq!(out["exitCode"], 1, "{out}");
    assert!(out["stderr"].as_str().unwrap().contains("no good"), "{out}");
    assert_eq!(out["stdout"], "");
    let out = run("loop", json!({"timeoutMs": 400}));
    assert_eq!(out["exitCode"], 124, "{out}");
    assert_eq!(out["stderr"], "Execution timeout exceeded");
    let out = run("hog", json!({"timeoutMs": 20000, "memoryMb": 64}));
    assert_eq!(out["exitCode"], 137, "{out}");
    // Nothing crashed: the same environment still answers.
    assert_eq!(run("fine", json!({}))["exitCode"], 0);
    // A limit above the host's maximum is refused, not silently lowered.
    let (status, body) = call(
        &server,
        "POST",
        &format!("/environments/{id}/execute"),
        Some(json!({"data": "fine", "limits": {"memoryMb": 1_000_000}})),
    );
    expect((status, body), 400, "validation_error");

    // TTL: the reaper removes an expired environment.
    let (status, env) = setup(
        &server,
        json!({"main.js": "export const handler = () => 1;"}),
        "main.js",
        Some(1),
    );
    assert_eq!(status, 200, "{env}");
    let short = env["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    loop {
        let (status, _) = call(
            &server,
            "POST",
            &format!("/environments/{short}/execute"),
            Some(json!({})),
        );
        if status == 404 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "an environment with a TTL of 1 s was not reaped"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
