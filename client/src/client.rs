//! The HTTP client for one server and its transport: GET and POST JSON, extra request headers,
//! response headers, and the cap on how much of a response is read. The routes are in `api`
//! and `agents`.

use std::time::Duration;

use crate::ClientError;
use crate::error::server_error;
use crate::upload::Body;

/// An HTTP client for one server.
#[derive(Clone)]
pub struct Client {
    pub(crate) base: String,
    pub(crate) agent: ureq::Agent,
    /// The host's audience (`GET /host`), fetched once, when an owner first signs.
    audience: std::sync::Arc<std::sync::OnceLock<String>>,
    /// Binary fields above this many bytes go as multipart uploads ([`crate::upload`]).
    pub(crate) binary_above: usize,
    /// With the channel binding: the report of the last connection bound.
    channel: Option<std::sync::Arc<std::sync::Mutex<Option<crate::tls::ChannelReport>>>>,
}

/// Which certificates an `https://` server's chain may end in ([`Client::with_trust`]).
#[derive(Clone, Debug, Default)]
pub enum Trust {
    /// The web's roots (Mozilla's), as any HTTPS client.
    #[default]
    WebRoots,
    /// Only these authorities (or the server's own certificate).
    Authorities(Vec<ureq::tls::Certificate<'static>>),
    /// No check of the certificate at all. INSECURE: anyone on the way can read and change
    /// the traffic.
    Insecure,
}

impl Trust {
    /// The certificates of a PEM file as the only authorities.
    ///
    /// # Errors
    /// [`ClientError::Trust`]: the PEM does not parse, or holds no certificate.
    pub fn from_pem(pem: &[u8]) -> Result<Self, ClientError> {
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(pem) {
            match item.map_err(|e| ClientError::Trust(format!("not PEM: {e}")))? {
                ureq::tls::PemItem::Certificate(c) => certs.push(c),
                _ => continue,
            }
        }
        if certs.is_empty() {
            return Err(ClientError::Trust("no CERTIFICATE in the PEM file".into()));
        }
        Ok(Self::Authorities(certs))
    }
}

/// The agent's configuration: statuses are answers, not errors; ten minutes at most a request.
fn agent_config() -> ureq::config::Config {
    agent_config_builder().build()
}

fn agent_config_builder() -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
}

/// Bodies larger than this are sent with `Expect: 100-continue`.
const EXPECT_CONTINUE_ABOVE: usize = 64 << 10;

/// The largest response the client reads.
const MAX_RESPONSE_BYTES: u64 = 256 << 20;

impl Client {
    /// A client for `base_url` (e.g. `http://127.0.0.1:3000`). An `https://` host's
    /// certificate is checked against the web's roots, as any HTTPS client does; for an
    /// attested host use [`Self::with_channel_binding`].
    pub fn new(base_url: &str) -> Self {
        Self::with_agent(base_url, agent_config().into(), None)
    }

    /// A client for `base_url` whose `https://` certificates are checked against `trust`
    /// instead of the web's roots: a private authority (`--cacert`), or nothing at all
    /// ([`Trust::Insecure`], for tests against a throwaway certificate).
    pub fn with_trust(base_url: &str, trust: &Trust) -> Self {
        use ureq::tls::{RootCerts, TlsConfig};
        let tls = match trust {
            Trust::WebRoots => TlsConfig::default(),
            Trust::Authorities(certs) => TlsConfig::builder()
                .root_certs(RootCerts::new_with_certs(certs))
                .build(),
            Trust::Insecure => TlsConfig::builder().disable_verification(true).build(),
        };
        let config = agent_config_builder().tls_config(tls).build();
        Self::with_agent(base_url, config.into(), None)
    }

    /// A client for an attested host: for an `https://` URL, every connection it opens is
    /// bound to the host's attested key before any request is sent on it
    /// (`docs/PROTOCOL.md` §19, [`crate::tls`]): the key must verify under `policy`, and must
    /// have signed that connection's TLS exporter, so a TLS-terminating proxy in front of the
    /// host makes every request fail. The certificate need not chain to a web root (the host's
    /// self-generated one does not). For an `http://` URL this is [`Self::new`]: plain HTTP
    /// has no channel to bind.
    pub fn with_channel_binding(base_url: &str, policy: crate::verify::Policy) -> Self {
        let https = crate::transport::is_https(base_url);
        if !https {
            return Self::new(base_url);
        }
        use ureq::unversioned::resolver::DefaultResolver;
        use ureq::unversioned::transport::{Connector as _, TcpConnector};
        let last = std::sync::Arc::default();
        let connector =
            ().chain(TcpConnector::default())
                .chain(crate::tls::ChannelConnector::new(
                    policy,
                    std::sync::Arc::clone(&last),
                ));
        // Bound connections only: no redirect elsewhere (or to plain HTTP), no proxy from the
        // environment (its tunnel is not in this connector chain).
        let config = agent_config_builder()
            .https_only(true)
            .max_redirects(0)
            .proxy(None)
            .build();
        let agent = ureq::Agent::with_parts(config, connector, DefaultResolver::default());
        Self::with_agent(base_url, agent, Some(last))
    }

    fn with_agent(
        base_url: &str,
        agent: ureq::Agent,
        channel: Option<std::sync::Arc<std::sync::Mutex<Option<crate::tls::ChannelReport>>>>,
    ) -> Self {
        Self {
            base: base_url.trim_end_matches('/').to_string(),
            agent,
            audience: std::sync::Arc::default(),
            binary_above: crate::upload::DEFAULT_BINARY_UPLOADS_ABOVE,
            channel,
        }
    }

    /// With the channel binding ([`Self::with_channel_binding`] over `https://`): what the
    /// last connection's check established; `None` before the first connection, or without
    /// the binding.
    pub fn channel(&self) -> Option<crate::tls::ChannelReport> {
        self.channel
            .as_ref()?
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The host's audience (`GET /host`), which every owner signature names: fetched on first
    /// use and kept.
    ///
    /// # Errors
    /// Transport or server errors, or an answer without an audience.
    pub fn audience(&self) -> Result<String, ClientError> {
        if let Some(audience) = self.audience.get() {
            return Ok(audience.clone());
        }
        let info: hypervisor_protocol::host::HostInfo =
            serde_json::from_value(self.get_json("/host")?)
                .map_err(|e| ClientError::BadResponse(format!("/host: {e}")))?;
        Ok(self.audience.get_or_init(|| info.audience).clone())
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// GETs `path` and returns the status and the body text, whatever the status.
    pub(crate) fn get_text(&self, path: &str) -> Result<(u16, String), ClientError> {
        let resp = self
            .agent
            .get(format!("{}{}", self.base, path))
            .call()
            .map_err(|e| crate::transport::explain(&self.base, e))?;
        read_response(resp)
    }

    /// POSTs `body` to `path` and decodes a 200 answer as `T`; any other status becomes
    /// [`ClientError::Server`].
    pub(crate) fn post_expect<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<T, ClientError> {
        let (status, json) = self.post_json(path, body)?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        serde_json::from_value(json).map_err(|e| ClientError::BadResponse(format!("{path}: {e}")))
    }

    /// POSTs JSON and returns the status and the JSON answer, whatever the status.
    ///
    /// # Errors
    /// Transport errors, or a body that is not JSON.
    pub fn post_json(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<(u16, serde_json::Value), ClientError> {
        let (status, _, json) = self.send_json_with("POST", path, body, &[])?;
        Ok((status, json))
    }

    /// POSTs JSON with extra headers; returns the status, the response headers (names
    /// lowercase) and the JSON answer, whatever the status.
    ///
    /// # Errors
    /// Transport errors, or a body that is not JSON.
    pub fn post_json_with(
        &self,
        path: &str,
        body: &impl serde::Serialize,
        headers: &[(&str, String)],
    ) -> Result<(u16, Headers, serde_json::Value), ClientError> {
        self.send_json_with("POST", path, body, headers)
    }

    /// PUTs JSON with extra headers; as [`Self::post_json_with`].
    ///
    /// # Errors
    /// Transport errors, or a body that is not JSON.
    pub fn put_json_with(
        &self,
        path: &str,
        body: &impl serde::Serialize,
        headers: &[(&str, String)],
    ) -> Result<(u16, Headers, serde_json::Value), ClientError> {
        self.send_json_with("PUT", path, body, headers)
    }

    fn send_json_with(
        &self,
        method: &str,
        path: &str,
        body: &impl serde::Serialize,
        headers: &[(&str, String)],
    ) -> Result<(u16, Headers, serde_json::Value), ClientError> {
        self.send_body_with(method, path, &Body::json(body)?, headers)
    }

    /// POSTs a body that may carry a binary part ([`crate::upload`]); as
    /// [`Self::post_json_with`].
    ///
    /// # Errors
    /// Transport errors, or an answer that is not JSON.
    pub(crate) fn post_body_with(
        &self,
        path: &str,
        body: &Body<'_>,
        headers: &[(&str, String)],
    ) -> Result<(u16, Headers, serde_json::Value), ClientError> {
        self.send_body_with("POST", path, body, headers)
    }

    fn send_body_with(
        &self,
        method: &str,
        path: &str,
        body: &Body<'_>,
        headers: &[(&str, String)],
    ) -> Result<(u16, Headers, serde_json::Value), ClientError> {
        let url = format!("{}{}", self.base, path);
        let mut request = if method == "PUT" {
            self.agent.put(url)
        } else {
            self.agent.post(url)
        };
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let size = body.json.len() + body.binary.as_ref().map_or(0, |(_, b)| b.len());
        // A large body is sent only once the server has said it wants it (`100 Continue`):
        // a server that refuses it (413 above its limit, or any error before reading it) is
        // heard instead of the upload failing on a closed connection ("broken pipe").
        if size > EXPECT_CONTINUE_ABOVE {
            request = request.header("expect", "100-continue");
        }
        let sent = match &body.binary {
            None => request
                .header("content-type", "application/json")
                .send(&body.json[..]),
            Some((name, bytes)) => {
                use ureq::unversioned::multipart::{Form, Part};
                fn part<'b>(bytes: &'b [u8], mime: &str) -> Result<Part<'b>, ClientError> {
                    Part::bytes(bytes)
                        .mime_str(mime)
                        .map_err(|e| ClientError::Transport(e.to_string()))
                }
                let form = Form::new()
                    .part("request", part(&body.json, "application/json")?)
                    .part(name, part(bytes, "application/octet-stream")?);
                request.send(form)
            }
        };
        let resp = sent.map_err(|e| crate::transport::explain(&self.base, e))?;
        let response_headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().ok()?.to_string(),
                ))
            })
            .collect();
        let (status, text) = read_response(resp)?;
        Ok((status, response_headers, json_body(status, &text)?))
    }
}

/// A response's JSON body. A JavaScript agent's result may hold a lone surrogate (its
/// `JSON.stringify` writes `"\ud800"`), which a Rust string cannot: those escapes are read as
/// U+FFFD, and everything else as written.
pub(crate) fn json_body(status: u16, text: &str) -> Result<serde_json::Value, ClientError> {
    let bad = |e: serde_json::Error| {
        ClientError::BadResponse(format!("{status} with a non-JSON body: {e}"))
    };
    match serde_json::from_str(text) {
        Ok(json) => Ok(json),
        Err(e) => match replace_lone_surrogates(text) {
            Some(fixed) => serde_json::from_str(&fixed).map_err(bad),
            None => Err(bad(e)),
        },
    }
}

/// `text` with every `\uD800`–`\uDFFF` escape that is not half of a pair replaced by `\ufffd`
/// (None when there is none).
fn replace_lone_surrogates(text: &str) -> Option<String> {
    let unit = |at: usize| -> Option<u16> {
        let escape = text.get(at..at + 6)?;
        let hex = escape.strip_prefix("\\u")?;
        u16::from_str_radix(hex, 16).ok()
    };
    let mut out = String::with_capacity(text.len());
    let mut replaced = false;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            let next = text[i..].chars().next()?;
            out.push(next);
            i += next.len_utf8();
            continue;
        }
        match unit(i) {
            Some(0xd800..=0xdbff) => match unit(i + 6) {
                Some(0xdc00..=0xdfff) => {
                    out.push_str(&text[i..i + 12]);
                    i += 12;
                }
                _ => {
                    out.push_str("\\ufffd");
                    replaced = true;
                    i += 6;
                }
            },
            Some(0xdc00..=0xdfff) => {
                out.push_str("\\ufffd");
                replaced = true;
                i += 6;
            }
            // Any other escape (two characters, or six for \u) as it is.
            _ => {
                let len = if unit(i).is_some() { 6 } else { 2 };
                out.push_str(text.get(i..i + len)?);
                i += len;
            }
        }
    }
    replaced.then_some(out)
}

/// Status and body text of a response, reading at most [`MAX_RESPONSE_BYTES`].
pub(crate) fn read_response(
    mut resp: ureq::http::Response<ureq::Body>,
) -> Result<(u16, String), ClientError> {
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_string()
        .map_err(|e| ClientError::Transport(e.to_string()))?;
    Ok((status, text))
}

/// Response headers: lowercase names and their values.
pub type Headers = Vec<(String, String)>;

/// The value of header `name` (lowercase) in a header list.
pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::{json_body, replace_lone_surrogates};

    #[test]
    fn lone_surrogate_escapes_read_as_replacement_characters_and_nothing_else_changes() {
        let text = r#"{"a":"\ud800x","b":"\ud83d\ude00","c":"\\ud800","d":"\udc00\ud800"}"#;
        let fixed = replace_lone_surrogates(text).expect("lone surrogates");
        assert_eq!(
            fixed,
            r#"{"a":"\ufffdx","b":"\ud83d\ude00","c":"\\ud800","d":"\ufffd\ufffd"}"#
        );
        let json = json_body(200, text).expect("read");
        assert_eq!(json["a"], "\u{fffd}x");
        assert_eq!(json["b"], "\u{1f600}");
        assert_eq!(json["c"], "\\ud800");
        assert_eq!(replace_lone_surrogates(r#"{"ok":"\u00e9\n"}"#), None);
        assert!(json_body(200, "{nope").is_err());
    }
}
