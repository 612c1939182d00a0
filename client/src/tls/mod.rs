//! Checking that an `https://` host is the attested one (`docs/PROTOCOL.md` §19).
//!
//! [`check_channel`] opens a TLS 1.3 connection of its own, asks `GET /attestation/channel`
//! with a fresh nonce on it, and accepts the host only if the attested key signed this very
//! connection's exporter value, the nonce and the certificate the client was shown. A
//! TLS-terminating proxy in front of the host has its own TLS session with the client, so the
//! exporter the host signed is not the client's, and the check fails. The certificate itself
//! is not checked against web roots: the channel binding is what authenticates the host. When
//! the certificate is the host's self-generated one, its RA-TLS evidence
//! ([`verify_certificate_evidence`]) is checked as well.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use der::{Decode, Encode};
use hypervisor_protocol::attest::{StatementKind, ct_eq, verify_statement};
use hypervisor_protocol::tls::{
    CERTIFICATE_EVIDENCE_OID, CHANNEL_NONCE_LEN, CertificateEvidence, EXPORTER_LABEL, EXPORTER_LEN,
    certificate_report_data, channel_fields,
};
use hypervisor_protocol::wire::{Attestation, ChannelBinding, decode_hex};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

use crate::verify::{EvidenceFormat, Policy, VerifiedKey, VerifyError, verify_evidence_binding};

mod connector;
pub(crate) use connector::ChannelConnector;

/// The largest answer read from `/attestation/channel` (evidence is a few kilobytes).
const MAX_ANSWER_BYTES: u64 = 1 << 20;
/// Time to connect, and to read the answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a channel check failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The URL is not `https://HOST[:PORT]`.
    #[error("not an https:// URL: {0}")]
    NotHttps(String),
    /// Connecting or the TLS handshake failed.
    #[error("TLS connection to {0}")]
    Connect(String),
    /// The host's answer is not a channel binding.
    #[error("the host's channel binding is malformed: {0}")]
    Malformed(String),
    /// The host refused (its status and body).
    #[error("the host answered {status} to /attestation/channel: {body}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The body (its error code and message).
        body: String,
    },
    /// The attested key, or the binding, does not verify.
    #[error("the TLS channel is not bound to an attested host: {0}")]
    NotBound(#[from] VerifyError),
}

/// What [`check_channel`] established.
#[derive(Debug, Clone)]
pub struct ChannelReport {
    /// The attested key that signed the binding, as verified.
    pub key: VerifiedKey,
    /// The certificate the host presented (DER).
    pub certificate: Vec<u8>,
    /// SHA-256 of that certificate.
    pub certificate_sha256: [u8; 32],
    /// Whether the host says it generated that certificate (its key never left the host).
    pub certificate_generated: bool,
    /// The certificate's own RA-TLS evidence, verified, when it carries any.
    pub certificate_evidence: Option<VerifiedKey>,
    /// The TLS exporter value of the checked connection.
    pub exporter: [u8; EXPORTER_LEN],
    /// The deployment reached: the host's audience, as it signed it.
    pub audience: String,
}

/// Checks that `base_url` (`https://HOST[:PORT]`) is served by a host whose attested key
/// verifies under `policy` and that signs this client's TLS channel (see the module's doc), on
/// a connection of its own.
///
/// # Errors
/// [`ChannelError`].
pub fn check_channel(base_url: &str, policy: &Policy) -> Result<ChannelReport, ChannelError> {
    let (host, port) = https_authority(base_url)?;
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| ChannelError::Connect(format!("{host}:{port}: {e}")))?
        .next()
        .ok_or_else(|| ChannelError::Connect(format!("{host}:{port}: no address")))?;
    let tcp = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|e| ChannelError::Connect(format!("{addr}: {e}")))?;
    tcp.set_read_timeout(Some(TIMEOUT))
        .and_then(|()| tcp.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| ChannelError::Connect(e.to_string()))?;
    let name = ServerName::try_from(host.clone())
        .map_err(|e| ChannelError::NotHttps(format!("{host}: {e}")))?;
    let conn = ClientConnection::new(Arc::new(client_config()), name)
        .map_err(|e| ChannelError::Connect(e.to_string()))?;
    let mut tls = StreamOwned::new(conn, tcp);
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    bind_stream(&mut tls, &authority, policy)
}

/// The channel binding on an open TLS connection: asks `/attestation/channel` on it (HTTP/1.1,
/// kept alive: the connection then carries the client's requests) and verifies the answer
/// against the connection's own exporter value and certificate.
fn bind_stream<S: Read + Write>(
    tls: &mut StreamOwned<ClientConnection, S>,
    authority: &str,
    policy: &Policy,
) -> Result<ChannelReport, ChannelError> {
    let mut nonce = [0u8; CHANNEL_NONCE_LEN];
    hypervisor_protocol::fill_random(&mut nonce)
        .map_err(|e| ChannelError::Connect(e.to_string()))?;
    let request = format!(
        "GET /attestation/channel?nonce={} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\n\r\n",
        hex::encode(nonce)
    );
    tls.write_all(request.as_bytes())
        .and_then(|()| tls.flush())
        .map_err(|e| ChannelError::Connect(format!("{authority}: {e}")))?;
    let (status, body) = read_answer(tls, Instant::now() + TIMEOUT)?;
    let conn = &tls.conn;
    let mut exporter = [0u8; EXPORTER_LEN];
    conn.export_keying_material(&mut exporter, EXPORTER_LABEL, None)
        .map_err(|e| ChannelError::Connect(e.to_string()))?;
    let certificate = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or_else(|| ChannelError::Connect("the host presented no certificate".into()))?
        .to_vec();
    let certificate_sha256 = hypervisor_protocol::sha256(&certificate);
    if status != 200 {
        return Err(ChannelError::Refused {
            status,
            body: String::from_utf8_lossy(&body).chars().take(500).collect(),
        });
    }
    let binding: ChannelBinding =
        serde_json::from_slice(&body).map_err(|e| ChannelError::Malformed(e.to_string()))?;
    let key = verify_binding(&binding, policy, &exporter, &nonce, &certificate_sha256)?;
    // `certificate_generated` is the host's word, not signed: the certificate's evidence is
    // checked whenever it carries the extension, and must be there when the host says so.
    let certificate_evidence =
        if binding.certificate_generated || has_evidence_extension(&certificate) {
            Some(verify_certificate_evidence(&certificate, policy)?)
        } else {
            None
        };
    Ok(ChannelReport {
        key,
        certificate,
        certificate_sha256,
        certificate_generated: binding.certificate_generated,
        certificate_evidence,
        exporter,
        audience: binding.audience,
    })
}

/// Verifies a channel binding against what this client saw on its connection.
///
/// # Errors
/// [`VerifyError`]: the attestation, a mismatch, or the signature.
pub fn verify_binding(
    binding: &ChannelBinding,
    policy: &Policy,
    exporter: &[u8; EXPORTER_LEN],
    nonce: &[u8; CHANNEL_NONCE_LEN],
    certificate_sha256: &[u8; 32],
) -> Result<VerifiedKey, VerifyError> {
    let key = crate::verify::verify_attestation(&binding.attestation, policy)?;
    let malformed = |e: hypervisor_protocol::ProtocolError| VerifyError::Malformed(e.to_string());
    if !ct_eq(
        &decode_hex("nonce", &binding.nonce).map_err(malformed)?,
        nonce,
    ) {
        return Err(VerifyError::Mismatch("the channel binding's nonce"));
    }
    let claimed =
        decode_hex("certificate_sha256", &binding.certificate_sha256).map_err(malformed)?;
    if !ct_eq(&claimed, certificate_sha256) {
        return Err(VerifyError::Mismatch(
            "the certificate the host signed and the one this client was shown",
        ));
    }
    let signature = decode_hex("signature", &binding.signature).map_err(malformed)?;
    verify_statement(
        &key.signing_key,
        StatementKind::TlsChannel,
        &channel_fields(exporter, nonce, certificate_sha256, &binding.audience),
        &signature,
    )
    .map_err(|_| VerifyError::Signature("TLS channel"))?;
    if let Some(expected) = &policy.expected_audience
        && !ct_eq(expected.as_bytes(), binding.audience.as_bytes())
    {
        return Err(VerifyError::OtherDeployment {
            expected: expected.clone(),
            got: binding.audience.clone(),
        });
    }
    Ok(key)
}

/// Verifies the RA-TLS evidence of a certificate (DER): the extension
/// [`CERTIFICATE_EVIDENCE_OID`] must hold evidence that verifies under `policy` and whose
/// REPORTDATA binds this certificate's public key to the host's signing key.
///
/// # Errors
/// [`VerifyError`]: no or malformed extension, the evidence, or the binding.
pub fn verify_certificate_evidence(
    certificate: &[u8],
    policy: &Policy,
) -> Result<VerifiedKey, VerifyError> {
    let malformed = |what: String| VerifyError::Malformed(format!("certificate: {what}"));
    let cert =
        x509_cert::Certificate::from_der(certificate).map_err(|e| malformed(e.to_string()))?;
    let oid = der::asn1::ObjectIdentifier::new(CERTIFICATE_EVIDENCE_OID)
        .map_err(|e| malformed(e.to_string()))?;
    let mut found = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == oid);
    let (Some(extension), None) = (found.next(), found.next()) else {
        return Err(malformed(
            "not exactly one RA-TLS evidence extension (id-pe-cmw)".into(),
        ));
    };
    let evidence = CertificateEvidence::from_extension_value(extension.extn_value.as_bytes())
        .map_err(|e| malformed(e.to_string()))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| malformed(e.to_string()))?;
    let spki_sha256 = hypervisor_protocol::sha256(&spki);
    let format = EvidenceFormat::parse(&evidence.evidence_format);
    let att = Attestation {
        tee: format.map_or("unknown", EvidenceFormat::tee).to_owned(),
        simulated: format == Some(EvidenceFormat::Simulated),
        evidence_format: evidence.evidence_format.clone(),
        evidence: hex::encode(&evidence.evidence),
        report_data: hex::encode(evidence.expected_report_data(&spki_sha256)),
        signing_key: hex::encode(evidence.signing_key.as_bytes()),
        host_measurement: hex::encode(evidence.host_measurement),
        key_created_at: evidence.created_at,
        event_log: evidence.event_log.clone(),
    };
    verify_evidence_binding(&att, policy, |key, measurement, created_at| {
        certificate_report_data(&spki_sha256, key, measurement, created_at)
    })
}

/// Whether a DER certificate carries an extension with the RA-TLS evidence OID (anything that
/// does not parse has none; [`verify_certificate_evidence`] then says why).
fn has_evidence_extension(certificate: &[u8]) -> bool {
    let Ok(oid) = der::asn1::ObjectIdentifier::new(CERTIFICATE_EVIDENCE_OID) else {
        return false;
    };
    x509_cert::Certificate::from_der(certificate).is_ok_and(|cert| {
        cert.tbs_certificate
            .extensions
            .iter()
            .flatten()
            .any(|e| e.extn_id == oid)
    })
}

/// `HOST` and `PORT` of an `https://` base URL.
fn https_authority(base_url: &str) -> Result<(String, u16), ChannelError> {
    let not = || ChannelError::NotHttps(base_url.to_owned());
    let uri: ureq::http::Uri = base_url.parse().map_err(|_| not())?;
    if uri.scheme_str() != Some("https") {
        return Err(not());
    }
    let host = uri.host().ok_or_else(not)?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok((host, uri.port_u16().unwrap_or(443)))
}

/// Reads one HTTP/1.1 answer with a `Content-Length`, exactly (the connection is kept for
/// the requests that follow): its status and body, all of it by `deadline` (a man in the
/// middle dripping bytes, each within the socket's read timeout, cannot hold the client
/// longer than that and one read).
fn read_answer(stream: &mut impl Read, deadline: Instant) -> Result<(u16, Vec<u8>), ChannelError> {
    let bad = |what: &str| ChannelError::Malformed(what.to_owned());
    let io = |e: std::io::Error| ChannelError::Connect(e.to_string());
    let late = || {
        (Instant::now() > deadline).then(|| {
            ChannelError::Connect(format!(
                "the channel binding's answer did not arrive within {} s",
                TIMEOUT.as_secs()
            ))
        })
    };
    // The head, byte by byte (a few hundred bytes), so nothing past it is consumed.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if let Some(e) = late() {
            return Err(e);
        }
        if head.len() > 16 << 10 {
            return Err(bad("HTTP head larger than 16 KiB"));
        }
        if stream.read(&mut byte).map_err(io)? == 0 {
            return Err(bad("the connection closed before a complete HTTP answer"));
        }
        head.push(byte[0]);
    }
    let head = std::str::from_utf8(&head).map_err(|_| bad("HTTP head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1.1 "))
        .and_then(|l| l.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no HTTP/1.1 status line"))?;
    if status < 200 {
        return Err(bad("an interim (1xx) answer"));
    }
    // Exactly one Content-Length, no Transfer-Encoding, and a connection kept open: the answer
    // ends exactly where the next one (ureq's) begins.
    let mut length = None;
    for (name, value) in lines.filter_map(|line| line.split_once(':')) {
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return Err(bad("Content-Length given twice"));
            }
            length = Some(value.parse::<u64>().map_err(|_| bad("Content-Length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(bad(
                "a Transfer-Encoding (a bounded Content-Length is expected)",
            ));
        } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            return Err(bad("the host closes the connection after the binding"));
        }
    }
    let length = length.ok_or_else(|| bad("no Content-Length"))?;
    if length > MAX_ANSWER_BYTES {
        return Err(bad("answer larger than 1 MiB"));
    }
    let mut body = vec![0u8; usize::try_from(length).map_err(|_| bad("Content-Length"))?];
    let mut filled = 0;
    while filled < body.len() {
        if let Some(e) = late() {
            return Err(e);
        }
        match stream.read(&mut body[filled..]).map_err(io)? {
            0 => return Err(bad("the connection closed inside the answer")),
            n => filled += n,
        }
    }
    Ok((status, body))
}

/// TLS 1.3 only (the exporter the binding signs), HTTP/1.1 by ALPN, any certificate: the
/// handshake still proves the host holds the certificate's key, and the binding proves the
/// host is the attested one.
fn client_config() -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(BoundLater(provider.clone()));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        })
        // The ring provider supports TLS 1.3: this cannot fail.
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.3"));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// A certificate verifier that accepts any certificate (identity comes from the channel
/// binding) but checks the handshake signatures made with its key.
#[derive(Debug)]
struct BoundLater(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for BoundLater {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // TLS 1.2 is never negotiated (TLS 1.3 only).
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::time::{Duration, Instant};

    use super::{ChannelError, read_answer};

    /// A man in the middle's answer: `bytes`, one at a time, each after `gap`.
    struct Drip {
        bytes: Vec<u8>,
        at: usize,
        gap: Duration,
    }

    impl Read for Drip {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.at == self.bytes.len() || buf.is_empty() {
                return Ok(0);
            }
            std::thread::sleep(self.gap);
            buf[0] = self.bytes[self.at];
            self.at += 1;
            Ok(1)
        }
    }

    fn answer() -> Vec<u8> {
        let body = br#"{"nonce":"00"}"#;
        let mut a = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        a.extend_from_slice(body);
        a
    }

    #[test]
    fn an_answer_dripped_past_the_deadline_is_cut_off() {
        let mut drip = Drip {
            bytes: answer(),
            at: 0,
            gap: Duration::from_millis(20),
        };
        let started = Instant::now();
        let err = read_answer(&mut drip, Instant::now() + Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, ChannelError::Connect(ref m) if m.contains("did not arrive")));
        // Cut at the deadline, not when the drip ends (about 100 bytes × 20 ms = 2 s).
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        assert!(drip.at < drip.bytes.len());
    }

    #[test]
    fn an_answer_in_time_is_read_exactly() {
        let mut bytes = answer();
        bytes.extend_from_slice(b"HTTP/1.1 200 the next answer");
        let mut drip = Drip {
            bytes,
            at: 0,
            gap: Duration::ZERO,
        };
        let (status, body) =
            read_answer(&mut drip, Instant::now() + Duration::from_secs(30)).unwrap();
        assert_eq!((status, body.as_slice()), (200, &br#"{"nonce":"00"}"#[..]));
        // Nothing of what follows was consumed.
        assert_eq!(
            drip.bytes[drip.at..].len(),
            b"HTTP/1.1 200 the next answer".len()
        );
    }
}
