//! HTTPS inside the host (`[tls]`): where it listens, and whose certificate it presents.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The HTTPS listener. Off by default: `listen` serves plain HTTP, for local use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Address of the HTTPS listener (TLS 1.3; HTTP/2 and HTTP/1.1 by ALPN). None, the
    /// default: no HTTPS.
    pub listen: Option<SocketAddr>,
    /// Whether the plain HTTP listener on `listen` stays open beside the HTTPS one. Default
    /// true; set false so that every route is reached over TLS only.
    pub plain: bool,
    /// PEM file with the certificate chain (end-entity first), with `key`. Neither given, the
    /// default: the host generates a P-256 certificate at start-up whose private key never
    /// leaves the process, with RA-TLS evidence in an extension (`docs/PROTOCOL.md` §19): the
    /// choice for confidential deployments.
    pub certificate: Option<PathBuf>,
    /// PEM file with the private key of `certificate` (PKCS#8, SEC1 or PKCS#1).
    pub key: Option<PathBuf>,
    /// Subject alternative names of the self-generated certificate: DNS names or IP addresses.
    /// Default `localhost`, `127.0.0.1`, `::1`.
    pub names: Vec<String>,
    /// How often the certificate files are checked for changes, milliseconds; a change (or
    /// SIGHUP, at any time) loads them for new connections, open ones are untouched. 0: on
    /// SIGHUP only. Default 5000.
    pub reload_interval_ms: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            listen: None,
            plain: true,
            certificate: None,
            key: None,
            names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            reload_interval_ms: 5000,
        }
    }
}

impl TlsConfig {
    /// Checks that the certificate and key come together.
    ///
    /// # Errors
    /// A message naming the keys.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.certificate, &self.key) {
            (Some(_), None) | (None, Some(_)) => {
                Err("tls.certificate and tls.key must be given together".into())
            }
            _ if self.listen.is_none() && !self.plain => {
                Err("tls.plain = false needs tls.listen: the host would not listen at all".into())
            }
            _ if self.certificate.is_none() && self.names.is_empty() => {
                Err("tls.names is empty: the self-generated certificate needs a name".into())
            }
            _ => Ok(()),
        }
    }
}
