//! `URLPattern` in JavaScript agents through the native agent routes: a router built at set-up
//! (so its compiled patterns live in the snapshot) matching the URLs each invocation sends,
//! and the interface's errors. WPT's URL Pattern suite runs in tests/e2e/web_platform.rs.

use hypervisor_protocol::ClientSecret;
use serde_json::{Value, json};

use crate::harness::{TestServer, deploy_js_main};

const ROUTER: &str = r#"
const routes = [
  ["book", new URLPattern({ pathname: "/books/:id(\\d+)" })],
  ["file", new URLPattern("/files/*", "https://api.example.com")],
  ["user", new URLPattern({ hostname: "{:tenant.}?example.com", pathname: "/users/:name" })],
];
const caught = (f) => { try { f(); return "no error"; } catch (e) { return [e.name, e.message]; } };
export function handler(event) {
  if (event.describe) {
    const [book, file] = [routes[0][1], routes[1][1]];
    return {
      file: [file.protocol, file.hostname, file.port, file.pathname, file.search, file.hash],
      regexpGroups: [book.hasRegExpGroups, file.hasRegExpGroups],
      tag: Object.prototype.toString.call(book),
      caseless: [
        new URLPattern({ pathname: "/API/*" }, { ignoreCase: true }).test("https://x.test/api/v1"),
        new URLPattern({ pathname: "/API/*" }).test("https://x.test/api/v1"),
      ],
      init: book.exec({ pathname: "/books/7" }).pathname.groups.id,
      inputs: file.exec("/files/a", "https://api.example.com").inputs,
      relative: book.exec("/books/1"),
      badPattern: caught(() => new URLPattern({ pathname: "/([" })),
      badRegExp: caught(() => new URLPattern({ pathname: "/(a**)" })),
      undefinedBase: caught(() => new URLPattern("https://x.test/*", undefined, {})),
      protoGroup: Object.keys(new URLPattern({ pathname: "/:__proto__" }).exec("https://x.test/p").pathname.groups),
      initAndBase: caught(() => new URLPattern({ pathname: "/a" }, "https://x.test")),
      matchInitAndBase: caught(() => book.test({ pathname: "/books/1" }, "https://x.test")),
    };
  }
  for (const [route, pattern] of routes) {
    const m = pattern.exec(event.url);
    if (m) {
      const groups = {};
      for (const [k, v] of Object.entries({ ...m.hostname.groups, ...m.pathname.groups })) groups[k] = v ?? null;
      return { route, groups };
    }
  }
  return { route: null };
}
"#;

#[test]
fn url_patterns_route_through_the_native_agent_routes() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    deploy_js_main(&server, &owner, "router", ROUTER);
    let route = |url: &str| -> Value {
        let r = client.invoke("router", json!({ "url": url })).unwrap();
        assert!(r.ok, "{r:?}");
        r.result_json().unwrap()
    };
    assert_eq!(
        route("https://shop.test/books/42?x=1"),
        json!({"route": "book", "groups": {"0": "shop.test", "id": "42"}})
    );
    // `\d+` is a regular expression group: letters do not match it.
    assert_eq!(
        route("https://shop.test/books/forty-two"),
        json!({"route": null})
    );
    assert_eq!(
        route("https://api.example.com/files/a/b.txt"),
        json!({"route": "file", "groups": {"0": "a/b.txt"}})
    );
    // The base URL fixed the file route's host and protocol.
    assert_eq!(
        route("http://api.example.com/files/a"),
        json!({"route": null})
    );
    assert_eq!(
        route("https://acme.example.com/users/ada"),
        json!({"route": "user", "groups": {"tenant": "acme", "name": "ada"}})
    );
    assert_eq!(
        route("https://example.com/users/ada"),
        json!({"route": "user", "groups": {"tenant": null, "name": "ada"}})
    );
    assert_eq!(route("not a url"), json!({"route": null}));

    let r = client
        .invoke("router", json!({ "describe": true }))
        .unwrap();
    assert!(r.ok, "{r:?}");
    let out = r.result_json().unwrap();
    assert_eq!(
        out["file"],
        json!(["https", "api.example.com", "", "/files/*", "*", "*"])
    );
    assert_eq!(out["regexpGroups"], json!([true, false]));
    assert_eq!(out["tag"], "[object URLPattern]");
    assert_eq!(out["caseless"], json!([true, false]));
    assert_eq!(out["init"], "7");
    assert_eq!(
        out["inputs"],
        json!(["/files/a", "https://api.example.com"])
    );
    assert_eq!(out["relative"], Value::Null);
    // A regular expression the engine refuses names its component.
    assert!(
        out["badRegExp"][1].as_str().unwrap().starts_with(
            "URLPattern: the pathname pattern \"/(a**)\" is not a valid regular expression: "
        ),
        "{}",
        out["badRegExp"]
    );
    assert_eq!(out["protoGroup"], json!(["__proto__"]));
    for case in [
        "badPattern",
        "badRegExp",
        "initAndBase",
        "matchInitAndBase",
        "undefinedBase",
    ] {
        assert_eq!(out[case][0], "TypeError", "{case}: {}", out[case]);
        let message = out[case][1].as_str().unwrap();
        assert!(message.starts_with("URLPattern: "), "{case}: {message}");
    }
    assert_eq!(
        out["initAndBase"][1],
        "URLPattern: specifying both an init object, and a separate base URL is not valid"
    );
}
