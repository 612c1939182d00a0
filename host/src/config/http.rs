//! The HTTP front's settings: body and head limits, timeouts, connections, and the operator's
//! token for the operator routes.

use serde::{Deserialize, Serialize};

/// HTTP front settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body accepted, bytes (413 above). Default 32 MiB.
    pub max_body_bytes: usize,
    /// Time allowed to receive a whole request body, milliseconds (408 after). Default 30 s.
    pub body_timeout_ms: u64,
    /// Largest multipart upload accepted (a component or envelope sent as a binary part, on
    /// the deploy and execute routes), bytes: 413 above. Its `request` part is bounded by
    /// `max_body_bytes` like a JSON body. The binary part is spooled to an unnamed, sealed
    /// temporary file under `<data_dir>/uploads` as it arrives. Default 128 MiB.
    pub max_upload_bytes: u64,
    /// Time allowed to receive a whole multipart upload, milliseconds (408 after). Default
    /// 300 000 (5 minutes: 128 MiB at about 3.5 Mbit/s).
    pub upload_timeout_ms: u64,
    /// Most arguments one execution may carry. Default 1024, at most 65536 (a longer list is
    /// refused while it is parsed).
    pub max_arguments: usize,
    /// Time allowed to receive a request head (request line and headers), milliseconds: from
    /// accepting a new connection, or from the first byte of a later request on a keep-alive
    /// connection. A connection that does not deliver its head in time is closed without a
    /// response (slow-header clients, "slowloris"). Default 10 000.
    pub header_timeout_ms: u64,
    /// Largest request head (request line and headers), bytes: a larger one is answered
    /// `431 headers_too_large` (a target longer than the head, `414 uri_too_long`) and the
    /// connection closed. Default 64 KiB; 8 KiB to 1 MiB.
    pub max_head_bytes: usize,
    /// A keep-alive connection with no request in flight is closed after this long,
    /// milliseconds. Default 60 000.
    pub idle_timeout_ms: u64,
    /// Open connections at most. Beyond it the host stops accepting until one closes (new
    /// clients wait in the listen backlog; none is refused). Keep it below the process's
    /// file-descriptor limit (`ulimit -n`). Default 10 000.
    pub max_connections: usize,
    /// After answering a request before reading its whole body (a `413`, or any early error),
    /// keep reading and discarding what the client still sends for at most this long,
    /// milliseconds, so that a client that reads only after sending everything gets the
    /// answer instead of a reset (nginx's lingering close). It also ends when the client
    /// closes, after `linger_bytes`, or after 1 s without a byte. 0 turns it off. Default
    /// 5000; at most 60 000.
    pub linger_ms: u64,
    /// Most bytes read and discarded while lingering. Default 64 MiB; at most 1 GiB.
    pub linger_bytes: u64,
    /// When set, the operator routes (`/metrics`, `/openapi.json`) answer only requests with
    /// `Authorization: Bearer <token>` (others get `401 unauthorized`). At least 16
    /// characters. Default: none (open, as on a loopback-only development host). Never logged.
    pub operator_token: Option<OperatorToken>,
    /// Web origins whose pages may call this host from a browser (CORS). Each entry is an
    /// origin exactly as browsers send it (`https://app.example.com`, `http://127.0.0.1:5173`:
    /// scheme, host, and the port only when it is not the scheme's default), or `"*"` alone for
    /// any origin. Requests never carry credentials (the protocol has no cookies), request
    /// headers are allowed as a preflight asks, and every response header is exposed. The MCP
    /// endpoint accepts a listed origin as it accepts its own. Default: none (no CORS headers:
    /// browsers refuse cross-origin pages' calls).
    pub cors_origins: Vec<String>,
}

/// The operator's bearer token: compared in constant time, never shown by `Debug`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct OperatorToken(String);

impl Drop for OperatorToken {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl From<String> for OperatorToken {
    fn from(token: String) -> Self {
        Self(token)
    }
}

impl OperatorToken {
    /// The shortest token accepted, characters.
    pub const MIN_LEN: usize = 16;

    /// Whether the token is too short to be one.
    pub fn too_short(&self) -> bool {
        self.0.chars().count() < Self::MIN_LEN
    }

    /// Whether `presented` is the token (constant time in the token's content).
    pub fn matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.0.len() == presented.len() && bool::from(self.0.as_bytes().ct_eq(presented.as_bytes()))
    }
}

impl std::fmt::Debug for OperatorToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorToken(<redacted>)")
    }
}

impl HttpConfig {
    /// Checks `cors_origins`: `"*"` alone, or origins in browsers' form, each once.
    ///
    /// # Errors
    /// A message naming the first entry that is not one, with its right form when there is one.
    pub fn check_cors_origins(&self) -> Result<(), String> {
        let origins = &self.cors_origins;
        if origins.iter().any(|o| o == "*") {
            return if origins.len() == 1 {
                Ok(())
            } else {
                Err("http.cors_origins: \"*\" (any origin) must be the only entry".into())
            };
        }
        for (i, origin) in origins.iter().enumerate() {
            let parsed = url::Url::parse(origin)
                .map_err(|e| format!("http.cors_origins: {origin:?} is not an origin ({e})"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!(
                    "http.cors_origins: {origin:?} is not an http or https origin"
                ));
            }
            let serialized = parsed.origin().ascii_serialization();
            if &serialized != origin {
                return Err(format!(
                    "http.cors_origins: {origin:?} is not an origin as browsers send it \
                     (scheme://host[:port], no path, no default port): write {serialized:?}"
                ));
            }
            if origins[..i].contains(origin) {
                return Err(format!("http.cors_origins: {origin:?} is listed twice"));
            }
        }
        Ok(())
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 << 20,
            body_timeout_ms: 30_000,
            max_upload_bytes: 128 << 20,
            upload_timeout_ms: 300_000,
            max_arguments: 1024,
            header_timeout_ms: 10_000,
            max_head_bytes: 64 << 10,
            idle_timeout_ms: 60_000,
            max_connections: 10_000,
            linger_ms: 5_000,
            linger_bytes: 64 << 20,
            operator_token: None,
            cors_origins: Vec::new(),
        }
    }
}
