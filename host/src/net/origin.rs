//! Origins (scheme, host and port) of absolute `http(s)` URLs: what outgoing requests are
//! granted to and checked against. A leaf: the configuration validates origins with it, and the
//! engine's outgoing-request hooks compare against it.

use http::uri::{Scheme, Uri};

/// An origin a store may send requests to: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    https: bool,
    host: String,
    port: u16,
}

/// Why a URL is not a usable origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url:?} is not an http(s) origin: {why}")]
pub struct OriginError {
    url: String,
    why: &'static str,
}

impl Origin {
    /// Parses the origin of an absolute `http://` or `https://` URL (its path is ignored).
    ///
    /// # Errors
    /// [`OriginError`] for anything else (another scheme, no host, user info).
    pub fn parse(url: &str) -> Result<Self, OriginError> {
        let err = |why| OriginError {
            url: url.to_string(),
            why,
        };
        let uri: Uri = url.parse().map_err(|_| err("not a URL"))?;
        Self::of(&uri).ok_or_else(|| err("needs http or https, a host and no user info"))
    }

    /// The origin of a request URI, if it has a supported scheme and a host.
    pub fn of(uri: &Uri) -> Option<Self> {
        let https = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => false,
            _ => return None,
        };
        let authority = uri.authority()?;
        if authority.as_str().contains('@') {
            return None;
        }
        let host = authority.host();
        if host.is_empty() {
            return None;
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        Some(Self {
            https,
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl Origin {
    /// Whether the scheme is `https`.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The host (lowercase; an IPv6 address in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the host is a loopback name or address (`localhost`, 127.0.0.0/8, `[::1]`).
    pub fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_to_scheme_host_and_port() {
        let o = Origin::parse("http://127.0.0.1:4021/facilitator").unwrap();
        assert_eq!(o.to_string(), "http://127.0.0.1:4021");
        let https = Origin::parse("https://Facilitator.Example").unwrap();
        assert_eq!(https.to_string(), "https://facilitator.example:443");
        assert!(Origin::parse("ftp://x").is_err());
        assert!(Origin::parse("http://user@host").is_err());
        assert!(Origin::parse("not a url").is_err());
        assert!(Origin::of(&"/verify".parse::<Uri>().unwrap()).is_none());
    }
}
