//! What a payment answers for (PROTOCOL §6b): the resource a paid request's x402 challenge
//! names, which a v2 payment must name again (`resource.url`), and its media type. One
//! derivation for the host's challenges and checks, the test vectors (`x402_resources`) and
//! clients that predict a challenge.

/// The media type of a paid HTTP agent whose owner declared none.
pub const UNDECLARED_CONTENT_TYPE: &str = "application/octet-stream";

/// A paid route, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaidRoute<'a> {
    /// A paid code route (`/x402_execute/…`, `/x402_policy/…`): its own path.
    Code {
        /// The route's path, e.g. `/x402_execute/test/wasm`.
        path: &'a str,
    },
    /// A handler or CLI agent: its invoke route.
    Agent {
        /// The agent's name.
        name: &'a str,
    },
    /// An HTTP agent: the agent itself, whatever path is requested (its price is the agent's;
    /// the path and query may carry the caller's data and the resource goes to the
    /// facilitator, so they are never part of it).
    HttpAgent {
        /// The agent's name.
        name: &'a str,
        /// The media type its owner declared, if any.
        content_type: Option<&'a str>,
    },
}

impl PaidRoute<'_> {
    /// The resource's path (also the route the payment ledger records, but for HTTP agents,
    /// whose ledger route is the same `/agents/<name>/`).
    pub fn resource_path(&self) -> String {
        match self {
            Self::Code { path } => (*path).to_string(),
            Self::Agent { name } => format!("/agents/{name}/invoke"),
            Self::HttpAgent { name, .. } => format!("/agents/{name}/"),
        }
    }

    /// The resource's URL under the host's public base URL (`payments.public_url`, a trailing
    /// `/` ignored).
    pub fn resource_url(&self, public_base: &str) -> String {
        format!(
            "{}{}",
            public_base.trim_end_matches('/'),
            self.resource_path()
        )
    }

    /// The challenge's `mimeType`.
    pub fn mime_type(&self) -> &str {
        match self {
            Self::Code { .. } | Self::Agent { .. } => "application/json",
            Self::HttpAgent { content_type, .. } => content_type.unwrap_or(UNDECLARED_CONTENT_TYPE),
        }
    }
}

/// Test vectors: one case per kind of paid route (PROTOCOL §6b, §16 `x402_resources`).
pub fn vectors() -> serde_json::Value {
    let base = "https://host.example/";
    let cases = [
        (
            "code route",
            "/x402_execute/test/wasm",
            PaidRoute::Code {
                path: "/x402_execute/test/wasm",
            },
        ),
        (
            "code route",
            "/x402_policy/unsafe/python",
            PaidRoute::Code {
                path: "/x402_policy/unsafe/python",
            },
        ),
        (
            "handler or CLI agent",
            "/agents/word-seller/invoke",
            PaidRoute::Agent {
                name: "word-seller",
            },
        ),
        (
            "HTTP agent, declared type",
            "/agents/shop/items/7?color=red",
            PaidRoute::HttpAgent {
                name: "shop",
                content_type: Some("text/html"),
            },
        ),
        (
            "HTTP agent, no declared type",
            "/agents/shop/",
            PaidRoute::HttpAgent {
                name: "shop",
                content_type: None,
            },
        ),
    ];
    serde_json::json!({
        "public_url": base,
        "cases": cases.iter().map(|(kind, requested, route)| serde_json::json!({
            "kind": kind,
            "requested": requested,
            "agent": match route {
                PaidRoute::Agent { name } | PaidRoute::HttpAgent { name, .. } => Some(*name),
                PaidRoute::Code { .. } => None,
            },
            "declared_content_type": match route {
                PaidRoute::HttpAgent { content_type, .. } => *content_type,
                _ => None,
            },
            "resource_url": route.resource_url(base),
            "mime_type": route.mime_type(),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_names_its_resource() {
        let base = "http://h:1/";
        assert_eq!(
            PaidRoute::Code {
                path: "/x402_execute/test/wasm"
            }
            .resource_url(base),
            "http://h:1/x402_execute/test/wasm"
        );
        assert_eq!(
            PaidRoute::Agent { name: "a" }.resource_url(base),
            "http://h:1/agents/a/invoke"
        );
        let http = PaidRoute::HttpAgent {
            name: "a",
            content_type: None,
        };
        assert_eq!(http.resource_url(base), "http://h:1/agents/a/");
        assert_eq!(http.mime_type(), UNDECLARED_CONTENT_TYPE);
    }
}
