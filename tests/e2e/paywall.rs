//! The x402 paywall over real HTTP: a browser's navigation (`Accept: text/html`, a `Mozilla`
//! user agent) to a paid HTTP agent gets the HTML payment page, with the same status and
//! `PAYMENT-REQUIRED` header as the JSON 402 every other client still gets; a refused payment
//! is named on the page. (The page paying with a wallet in Chromium is
//! `sdk/typescript/test/paywall.test.js`.)

use hypervisor_client::agents::Deployment;
use hypervisor_protocol::ClientSecret;

use crate::harness::{TestServer, wasm};
use crate::payments::payments_table;

const BROWSER: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36";
const NAVIGATION: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// A request to `url`: status, content type, `PAYMENT-REQUIRED` present, body.
fn call(method: &str, url: &str, headers: &[(&str, &str)]) -> (u16, String, bool, String) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = agent.run(request.body(()).unwrap()).expect("the request");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let kind = header("content-type").unwrap_or_default();
    let challenged = header("payment-required").is_some();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    (status, kind, challenged, body)
}

#[test]
fn browsers_get_the_payment_page_and_programs_the_json_402() {
    let server = TestServer::start_with(&payments_table(""));
    let client = server.client();
    client
        .deploy_agent(
            &ClientSecret::generate().unwrap(),
            &Deployment {
                name: "paid-page",
                component: &wasm("http-hello"),
                price: Some("7000".into()),
                ..Deployment::default()
            },
        )
        .unwrap();
    let url = format!("{}/agents/paid-page/docs?x=1", server.url);
    let browser = [("accept", NAVIGATION), ("user-agent", BROWSER)];

    let (status, kind, challenged, page) = call("GET", &url, &browser);
    assert_eq!((status, challenged), (402, true), "{page}");
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    for shown in [
        "0.007 USDC",
        "Base Sepolia",
        "eip155:84532",
        "/agents/paid-page/",
        "id=\"x402-payment-required\"",
    ] {
        assert!(page.contains(shown), "{shown} is not on the page: {page}");
    }
    // The first challenge is not a refusal.
    assert!(!page.contains("id=\"refusal\""), "{page}");

    // Programs, and a browser's POST or fetch(), get the JSON 402.
    for (method, headers) in [
        ("GET", vec![("accept", "*/*"), ("user-agent", BROWSER)]),
        (
            "GET",
            vec![("accept", NAVIGATION), ("user-agent", "curl/8.5")],
        ),
        ("POST", browser.to_vec()),
    ] {
        let (status, kind, challenged, body) = call(method, &url, &headers);
        assert_eq!(
            (status, challenged),
            (402, true),
            "{method} {headers:?}: {body}"
        );
        assert!(
            kind.starts_with("application/json"),
            "{method} {headers:?}: {kind}"
        );
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["code"], "payment_required");
    }

    // A payment refused: the page says why.
    let mut refused = browser.to_vec();
    refused.push(("payment-signature", "bm90IGEgcGF5bWVudA=="));
    let (status, kind, _, page) = call("GET", &url, &refused);
    assert_eq!(status, 402, "{page}");
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(page.contains("id=\"refusal\""), "{page}");

    // A free agent's page is the agent's, whoever asks.
    client
        .deploy_agent(
            &ClientSecret::generate().unwrap(),
            &Deployment {
                name: "free-page",
                component: &wasm("http-hello"),
                ..Deployment::default()
            },
        )
        .unwrap();
    let (status, _, challenged, body) = call(
        "GET",
        &format!("{}/agents/free-page/", server.url),
        &browser,
    );
    assert_eq!(
        (status, challenged, body.as_str()),
        (200, false, "Hello from a WASM Hypervisor agent\n")
    );
}
