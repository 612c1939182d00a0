//! The x402 paywall: a browser that navigates to a paid resource (a paid HTTP agent's page)
//! gets an HTML payment page instead of the JSON 402, as the official x402 resource servers
//! serve one. The page says what is asked (price, network, asset, pay-to address, the resource
//! and its description) and pays with the browser's wallet (EIP-1193 `window.ethereum`): it
//! signs the `exact` scheme's EIP-3009 authorization and requests the page again with the
//! `PAYMENT-SIGNATURE` header, then shows the paid answer in place.
//!
//! Who gets it: a `GET` or `HEAD` whose `Accept` names `text/html` and whose `User-Agent`
//! names `Mozilla` (the official SDK's rule: every browser navigation, no `fetch()` left at its
//! default `Accept`, no programmatic client), for a 402 the host made ([`HostChallenge`]: an
//! HTTP agent's own 402 is its content and passes unchanged). Both forms say
//! `Vary: accept, user-agent`. The response stays a 402 (or the status the
//! pipeline gave) with the same `PAYMENT-REQUIRED` header, so a client that reads headers loses
//! nothing; the document is also in the page, as JSON, under `#x402-payment-required`.
//!
//! Safety: every value the page shows comes from the challenge, where an agent's owner wrote
//! some of it (the description): it is escaped by [`maud`], and the embedded JSON cannot close
//! its `<script>` element (`<`, `>` and `&` are written as JSON escapes). The page may not be
//! framed (`frame-ancestors 'none'`: no clickjacking of a payment button) and sends no
//! referrer. Its script is not restricted by a content security policy on purpose: the paid
//! answer replaces the page in the same document and may be an HTML page with scripts of its
//! own, which a policy set for the paywall would block.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::error::HostChallenge;
use serde_json::Value;

/// The page's script: pays with the browser's wallet (see the module's text).
const SCRIPT: &str = include_str!("paywall.js");
/// The page's style.
const STYLE: &str = include_str!("paywall.css");

/// Whether `headers` are a browser's navigation (the official x402 SDK's rule).
fn is_browser(method: &Method, headers: &HeaderMap) -> bool {
    let named = |name: header::HeaderName, needle: &str| {
        headers
            .get_all(name)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains(needle)))
    };
    (method == Method::GET || method == Method::HEAD)
        && named(header::ACCEPT, "text/html")
        && named(header::USER_AGENT, "Mozilla")
}

/// The middleware: a browser's 402 that carries a `PAYMENT-REQUIRED` challenge becomes the
/// payment page; every other response passes unchanged.
pub async fn serve(request: Request, next: Next) -> Response {
    let browser = is_browser(request.method(), request.headers());
    let response = next.run(request).await;
    // Only the host's own challenges: an HTTP agent's 402 is its content, not the host's word.
    if !browser
        || response.status() != StatusCode::PAYMENT_REQUIRED
        || response.extensions().get::<HostChallenge>().is_none()
    {
        return response;
    }
    let Some(document) = response
        .headers()
        .get("payment-required")
        .and_then(|v| B64.decode(v.as_bytes()).ok())
        .and_then(|json| serde_json::from_slice::<Value>(&json).ok())
        .filter(Value::is_object)
    else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    parts.headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    parts.headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    parts
        .headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Response::from_parts(parts, Body::from(page(&document).into_string()))
}

/// Known EVM networks' names (CAIP-2).
fn network_name(network: &str) -> Option<&'static str> {
    Some(match network {
        "eip155:1" => "Ethereum",
        "eip155:8453" => "Base",
        "eip155:84532" => "Base Sepolia",
        "eip155:11155111" => "Sepolia",
        "eip155:10" => "OP Mainnet",
        "eip155:42161" => "Arbitrum One",
        "eip155:137" => "Polygon",
        "eip155:43114" => "Avalanche C-Chain",
        "eip155:43113" => "Avalanche Fuji",
        "eip155:31337" => "a local development chain",
        _ => return None,
    })
}

/// An amount of atomic units in whole tokens, for the tokens whose decimals are known (USDC's
/// six, by its EIP-712 name); otherwise the atomic units, said so.
fn price(accept: &Value) -> String {
    let amount = text(accept, &["amount"])
        .or_else(|| text(accept, &["maxAmountRequired"]))
        .unwrap_or("?");
    let token = text(accept, &["extra", "name"]).unwrap_or("");
    let digits_only = !amount.is_empty() && amount.bytes().all(|b| b.is_ascii_digit());
    if digits_only && matches!(token, "USDC" | "USD Coin") {
        let padded = format!("{amount:0>7}");
        let (whole, fraction) = padded.split_at(padded.len() - 6);
        let whole = whole.trim_start_matches('0');
        let fraction = fraction.trim_end_matches('0');
        let whole = if whole.is_empty() { "0" } else { whole };
        return match fraction {
            "" => format!("{whole} USDC"),
            f => format!("{whole}.{f} USDC"),
        };
    }
    format!("{amount} atomic units")
}

/// The string at `path` in `value`.
fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
}

/// `document` as JSON that can sit inside a `<script>` element: `<`, `>` and `&` escaped.
fn script_json(document: &Value) -> String {
    document
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// One way to pay, as a table row.
fn accept_row(accept: &Value) -> Markup {
    let network = text(accept, &["network"]).unwrap_or("?");
    html! {
        tr {
            td.price { (price(accept)) }
            td {
                @if let Some(name) = network_name(network) { (name) " " }
                code { (network) }
            }
            td { code { (text(accept, &["scheme"]).unwrap_or("?")) } }
            td { code.address { (text(accept, &["asset"]).unwrap_or("?")) } }
            td { code.address { (text(accept, &["payTo"]).unwrap_or("?")) } }
        }
    }
}

/// The payment page of the PaymentRequired `document`.
fn page(document: &Value) -> Markup {
    let resource = document.get("resource").unwrap_or(&Value::Null);
    let accepts = document
        .get("accepts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let url = text(resource, &["url"])
        .or_else(|| accepts.first().and_then(|a| text(a, &["resource"])))
        .unwrap_or("");
    let description = text(resource, &["description"])
        .or_else(|| accepts.first().and_then(|a| text(a, &["description"])))
        .unwrap_or("");
    // `payment_required` is the first challenge, not a refused payment.
    let error = text(document, &["error"]).filter(|e| !e.is_empty() && *e != "payment_required");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Payment required" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                main {
                    h1 { "Payment required" }
                    p.lead { "This resource is paid with " a href="https://www.x402.org/" { "x402" } "." }
                    dl {
                        dt { "Resource" }
                        dd { code #resource { (url) } }
                        @if !description.is_empty() {
                            dt { "What you pay for" }
                            dd #description { (description) }
                        }
                    }
                    @if let Some(error) = error {
                        p.error #refusal { "The last payment was refused: " code { (error) } }
                    }
                    table {
                        thead { tr { th { "Price" } th { "Network" } th { "Scheme" } th { "Asset" } th { "Pay to" } } }
                        tbody #accepts { @for accept in accepts { (accept_row(accept)) } }
                    }
                    p {
                        button #pay type="button" disabled { "Pay with a browser wallet" }
                    }
                    p #status role="status" { "Looking for a browser wallet…" }
                    p.note {
                        "Programs read the same requirements from the " code { "PAYMENT-REQUIRED" }
                        " header and pay with the " code { "PAYMENT-SIGNATURE" } " header."
                    }
                }
                script #x402-payment-required type="application/json" { (PreEscaped(script_json(document))) }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn challenge() -> Value {
        json!({
            "x402Version": 2,
            "error": "payment_required",
            "resource": {"url": "http://127.0.0.1:3000/agents/web/", "description": "a <b>bold</b> & \"quoted\" page</script>"},
            "accepts": [{
                "scheme": "exact", "network": "eip155:84532", "amount": "7000",
                "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
                "maxTimeoutSeconds": 60, "extra": {"name": "USDC", "version": "2"}
            }]
        })
    }

    #[test]
    fn prices_in_usdc_and_atomic_units() {
        let usdc = |amount: &str| price(&json!({"amount": amount, "extra": {"name": "USDC"}}));
        assert_eq!(usdc("7000"), "0.007 USDC");
        assert_eq!(usdc("1000000"), "1 USDC");
        assert_eq!(usdc("12345678"), "12.345678 USDC");
        assert_eq!(usdc("0"), "0 USDC");
        assert_eq!(usdc("1"), "0.000001 USDC");
        assert_eq!(usdc("1e3"), "1e3 atomic units");
        assert_eq!(
            price(&json!({"amount": "5", "extra": {"name": "Other"}})),
            "5 atomic units"
        );
    }

    #[test]
    fn the_owners_words_are_escaped_and_the_json_stays_in_its_element() {
        let html = page(&challenge()).into_string();
        assert!(
            html.contains("a &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot; page&lt;/script&gt;")
        );
        assert!(!html.contains("<b>bold"));
        // The JSON element ends once, at its own end: the description's `</script>` is escaped.
        let data = html
            .split("<script id=\"x402-payment-required\" type=\"application/json\">")
            .nth(1)
            .and_then(|rest| rest.split("</script>").next())
            .expect("the JSON element");
        assert_eq!(serde_json::from_str::<Value>(data).unwrap(), challenge());
        assert!(html.contains("0.007 USDC") && html.contains("Base Sepolia"));
    }

    #[test]
    fn only_browser_navigations_get_the_page() {
        let headers = |accept: &str, agent: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
            h.insert(header::USER_AGENT, HeaderValue::from_str(agent).unwrap());
            h
        };
        let navigation = headers("text/html,application/xhtml+xml,*/*;q=0.8", "Mozilla/5.0");
        assert!(is_browser(&Method::GET, &navigation));
        assert!(!is_browser(&Method::POST, &navigation));
        assert!(!is_browser(&Method::GET, &headers("*/*", "Mozilla/5.0")));
        assert!(!is_browser(&Method::GET, &headers("text/html", "curl/8.0")));
    }
}
