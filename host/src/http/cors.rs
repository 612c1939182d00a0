//! Cross-origin calls from browsers (`http.cors_origins`): the layer that answers preflights and
//! marks responses readable by the listed origins, and the origin test the MCP endpoint shares.
//!
//! The protocol carries no ambient credentials (no cookies; owner and payment proofs are in
//! explicit headers and bodies), so credentials are never allowed, request headers are allowed
//! as a preflight asks (agents' own HTTP routes take headers of their choosing), and every
//! response header is exposed (`PAYMENT-REQUIRED`, `PAYMENT-RESPONSE`, `x-execution-id`, …).

use std::time::Duration;

use axum::http::{HeaderValue, Method};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer, ExposeHeaders};

use crate::config::HttpConfig;

/// How long browsers may cache a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The CORS layer for `config.cors_origins`, or `None` when the list is empty (no CORS headers
/// at all). The list was checked by `Config::validate`; an entry that is not a header value
/// (impossible after that check) is left out.
pub fn layer(config: &HttpConfig) -> Option<CorsLayer> {
    if config.cors_origins.is_empty() {
        return None;
    }
    let origin = if any_origin(config) {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            config
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::DELETE,
                Method::PATCH,
            ])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(ExposeHeaders::any())
            .max_age(PREFLIGHT_MAX_AGE),
    )
}

/// Whether `origin` (an `Origin` header's value) is one `config.cors_origins` lets in.
pub fn allowed(config: &HttpConfig, origin: &str) -> bool {
    any_origin(config) || config.cors_origins.iter().any(|o| o == origin)
}

fn any_origin(config: &HttpConfig) -> bool {
    config.cors_origins.iter().any(|o| o == "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(origins: &[&str]) -> HttpConfig {
        HttpConfig {
            cors_origins: origins.iter().map(|s| s.to_string()).collect(),
            ..HttpConfig::default()
        }
    }

    #[test]
    fn origins_are_checked_in_browsers_form() {
        for ok in [
            &[][..],
            &["*"],
            &["https://app.example.com"],
            &["http://127.0.0.1:5173", "https://xn--bcher-kva.example"],
            &["http://[::1]:8080"],
        ] {
            assert_eq!(config(ok).check_cors_origins(), Ok(()), "{ok:?}");
        }
        for (bad, says) in [
            (&["*", "https://a.example"][..], "only entry"),
            (&["https://a.example/"], "write \"https://a.example\""),
            (&["https://a.example:443"], "write \"https://a.example\""),
            (&["https://A.example"], "write \"https://a.example\""),
            (&["https://a.example/app"], "no path"),
            (&["a.example"], "not an origin"),
            (&["file:///tmp"], "not an http or https origin"),
            (&["null"], "not an origin"),
            (&["https://a.example", "https://a.example"], "listed twice"),
        ] {
            let err = config(bad).check_cors_origins().unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn allowed_origins() {
        assert!(layer(&config(&[])).is_none());
        let listed = config(&["https://a.example"]);
        assert!(allowed(&listed, "https://a.example"));
        assert!(!allowed(&listed, "https://b.example"));
        assert!(!allowed(&listed, "https://a.example.evil"));
        assert!(allowed(&config(&["*"]), "https://b.example"));
        assert!(!allowed(&config(&[]), "https://a.example"));
    }
}
