//! Binding TLS to the attested host (`docs/PROTOCOL.md` §19).
//!
//! Two bindings, both checked by the Rust client:
//!
//! - **Channel binding** (what a client relies on). On a TLS connection, the client sends a
//!   fresh 32-byte nonce to `GET /attestation/channel`; the host answers with its attested
//!   signing key (the usual [`crate::wire::Attestation`]) and that key's signature over the
//!   statement `TLS_CHANNEL = [exporter, nonce, sha256(certificate)]`, where `exporter` is the
//!   connection's TLS exporter value ([`EXPORTER_LABEL`], empty context, [`EXPORTER_LEN`]
//!   bytes; RFC 8446 §7.5, as RFC 9266's `tls-exporter` but with a label of ours) and
//!   `certificate` the DER end-entity certificate the host presented on the connection. Both
//!   ends compute the exporter; only the two ends of that very TLS session know it, so a
//!   TLS-terminating proxy (its own session with the client) cannot forward a signature that
//!   verifies. Attestation inside the handshake alone is open to relay attacks; this is not.
//! - **RA-TLS certificate** (what a client can check at the handshake). The host's
//!   self-generated certificate carries, in the X.509 extension [`CERTIFICATE_EVIDENCE_OID`]
//!   (the IETF RATS CMW extension), hardware evidence whose REPORTDATA is
//!   `report_data(TLS_CERTIFICATE, [sha256(SubjectPublicKeyInfo), signing_key, host_measurement, u64be(created_at)])`
//!   ([`certificate_report_data`]), encoded as [`CertificateEvidence`].

use der::asn1::Utf8StringRef;
use der::{Decode, Encode};

use crate::EncodedPublicKey;
use crate::attest::{ReportPurpose, report_data};

/// The label of the TLS exporter the channel binding signs (RFC 8446 §7.5).
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-wasm-hypervisor-channel-binding";
/// Length of the exporter value, bytes.
pub const EXPORTER_LEN: usize = 32;
/// Length of the client's nonce, bytes.
pub const CHANNEL_NONCE_LEN: usize = 32;

/// OID of the extension carrying the evidence: `id-pe-cmw`, the X.509 extension of the IETF
/// RATS Conceptual Message Wrapper (draft-ietf-rats-msg-wrap, `{ id-pe 35 }`). Non-critical.
pub const CERTIFICATE_EVIDENCE_OID: &str = "1.3.6.1.5.5.7.1.35";
/// The same OID as arcs.
pub const CERTIFICATE_EVIDENCE_OID_ARCS: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 1, 35];
/// Media type of the wrapped message (the CMW record's `type`).
pub const CERTIFICATE_EVIDENCE_MEDIA_TYPE: &str =
    "application/vnd.wasm-hypervisor.certificate-evidence+json";
/// The CMW record's indicator: bit 2, evidence.
const CMW_INDICATOR_EVIDENCE: u64 = 4;

/// What the host's self-generated certificate says about itself.
///
/// The extension's value is the DER `UTF8String` of the CMW `json` choice, holding the JSON
/// CMW record `[CERTIFICATE_EVIDENCE_MEDIA_TYPE, base64url(message), 4]` (base64url without
/// padding); `message` is this struct as JSON:
///
/// ```json
/// {"version": 1, "evidence_format": "tdx-dcap-quote", "evidence": "<hex>",
///  "signing_key": "<hex, 65 bytes>", "host_measurement": "<hex, 32 bytes>", "created_at": 1795000000,
///  "event_log": "<the evidence's event log, JSON text; only when it has one>"}
/// ```
///
/// `evidence` carries `certificate_report_data(sha256(SubjectPublicKeyInfo), signing_key,
/// host_measurement, created_at)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateEvidence {
    /// Evidence encoding (as [`crate::wire::Attestation::evidence_format`]).
    pub evidence_format: String,
    /// The evidence bytes.
    pub evidence: Vec<u8>,
    /// The host's attested signing key when the certificate was made.
    pub signing_key: EncodedPublicKey,
    /// SHA-256 of the host binary.
    pub host_measurement: [u8; 32],
    /// When the certificate was made, Unix seconds.
    pub created_at: u64,
    /// The evidence's measurement event log (as [`crate::wire::Attestation::event_log`]),
    /// when it has one; absent from the JSON message otherwise.
    pub event_log: Option<String>,
}

/// The only version defined.
const CERTIFICATE_EVIDENCE_VERSION: u8 = 1;

/// The JSON message.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    version: u8,
    evidence_format: String,
    evidence: String,
    signing_key: String,
    host_measurement: String,
    created_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event_log: Option<String>,
}

/// Why a [`CertificateEvidence`] could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateEvidenceError {
    /// Not a DER `UTF8String` holding a JSON CMW record.
    #[error("malformed certificate evidence: {0}")]
    Malformed(String),
    /// A CMW record of another type.
    #[error("certificate evidence of type `{0}` is not ours")]
    Type(String),
    /// A version other than 1.
    #[error("certificate evidence version {0} is not supported")]
    Version(u8),
}

impl CertificateEvidence {
    /// The extension's value (DER).
    ///
    /// # Errors
    /// Only for values DER cannot hold (a message larger than 256 MiB).
    pub fn to_extension_value(&self) -> Result<Vec<u8>, CertificateEvidenceError> {
        use base64::Engine as _;
        let message = Message {
            version: CERTIFICATE_EVIDENCE_VERSION,
            evidence_format: self.evidence_format.clone(),
            evidence: hex::encode(&self.evidence),
            signing_key: hex::encode(self.signing_key.as_bytes()),
            host_measurement: hex::encode(self.host_measurement),
            created_at: self.created_at,
            event_log: self.event_log.clone(),
        };
        let message = serde_json::to_vec(&message)
            .map_err(|e| CertificateEvidenceError::Malformed(e.to_string()))?;
        let record = serde_json::json!([
            CERTIFICATE_EVIDENCE_MEDIA_TYPE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(message),
            CMW_INDICATOR_EVIDENCE,
        ])
        .to_string();
        Utf8StringRef::new(&record)
            .and_then(|s| s.to_der())
            .map_err(|e| CertificateEvidenceError::Malformed(e.to_string()))
    }

    /// Reads the extension's value.
    ///
    /// # Errors
    /// [`CertificateEvidenceError`].
    pub fn from_extension_value(der: &[u8]) -> Result<Self, CertificateEvidenceError> {
        use base64::Engine as _;
        let bad = |what: &str| CertificateEvidenceError::Malformed(what.to_owned());
        let record = Utf8StringRef::from_der(der).map_err(|e| bad(&e.to_string()))?;
        let (kind, value, _indicator): (String, String, Option<u64>) =
            match serde_json::from_str::<serde_json::Value>(record.as_str()) {
                Ok(serde_json::Value::Array(items)) if (2..=3).contains(&items.len()) => {
                    let text = |i: usize| items[i].as_str().map(str::to_owned);
                    (
                        text(0).ok_or_else(|| bad("CMW type is not a string"))?,
                        text(1).ok_or_else(|| bad("CMW value is not a string"))?,
                        items.get(2).and_then(serde_json::Value::as_u64),
                    )
                }
                _ => return Err(bad("not a JSON CMW record")),
            };
        if kind != CERTIFICATE_EVIDENCE_MEDIA_TYPE {
            return Err(CertificateEvidenceError::Type(kind));
        }
        let message = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| bad("CMW value is not base64url"))?;
        let m: Message = serde_json::from_slice(&message).map_err(|e| bad(&e.to_string()))?;
        if m.version != CERTIFICATE_EVIDENCE_VERSION {
            return Err(CertificateEvidenceError::Version(m.version));
        }
        let field = |name: &str, value: &str| {
            crate::wire::decode_hex(name, value).map_err(|e| bad(&e.to_string()))
        };
        Ok(Self {
            evidence_format: m.evidence_format,
            evidence: field("evidence", &m.evidence)?,
            signing_key: EncodedPublicKey::from_hex("signing_key", &m.signing_key)
                .map_err(|e| bad(&e.to_string()))?,
            host_measurement: field("host_measurement", &m.host_measurement)?
                .try_into()
                .map_err(|_| bad("host_measurement is not 32 bytes"))?,
            created_at: m.created_at,
            event_log: m.event_log,
        })
    }

    /// The REPORTDATA this evidence must carry for a certificate whose
    /// SubjectPublicKeyInfo (DER) hashes to `spki_sha256`.
    pub fn expected_report_data(&self, spki_sha256: &[u8; 32]) -> [u8; 64] {
        certificate_report_data(
            spki_sha256,
            &self.signing_key,
            &self.host_measurement,
            self.created_at,
        )
    }
}

/// REPORTDATA binding a TLS certificate's key to the host's signing key.
pub fn certificate_report_data(
    spki_sha256: &[u8; 32],
    signing_key: &EncodedPublicKey,
    host_measurement: &[u8; 32],
    created_at: u64,
) -> [u8; 64] {
    report_data(
        ReportPurpose::TlsCertificate,
        &[
            spki_sha256,
            signing_key.as_bytes(),
            host_measurement,
            &created_at.to_be_bytes(),
        ],
    )
}

/// The fields of the `TLS_CHANNEL` statement: the connection's exporter value, the client's
/// nonce, the certificate presented, and the host's `audience` (UTF-8, as `GET /host` gives
/// it: drawn once per deployment, shared by its replicas), which names the deployment the
/// client reached.
pub fn channel_fields<'a>(
    exporter: &'a [u8; EXPORTER_LEN],
    nonce: &'a [u8; CHANNEL_NONCE_LEN],
    certificate_sha256: &'a [u8; 32],
    audience: &'a str,
) -> [&'a [u8]; 4] {
    [exporter, nonce, certificate_sha256, audience.as_bytes()]
}
