//! What the HTTP front knows of the TLS session a request arrived on.

use hypervisor_protocol::tls::EXPORTER_LEN;

/// The TLS session of a connection, attached by the accept loop to each of its requests (an
/// `axum::Extension`); absent on plain HTTP.
#[derive(Debug, Clone)]
pub struct TlsChannel {
    /// The session's exporter value for the channel binding
    /// (`hypervisor_protocol::tls::EXPORTER_LABEL`, empty context).
    pub exporter: [u8; EXPORTER_LEN],
    /// SHA-256 of the DER end-entity certificate presented on the connection.
    pub certificate_sha256: [u8; 32],
    /// Whether that certificate is the host's self-generated one (its key never left the
    /// process) rather than one loaded from the operator's files.
    pub certificate_generated: bool,
}
