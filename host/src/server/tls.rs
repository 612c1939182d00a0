//! HTTPS inside the host: the rustls configuration, the certificate the host presents, and the
//! handshake of each connection.
//!
//! - The certificate is either the operator's (PEM files, `tls.certificate` and `tls.key`,
//!   loaded again when they change or on SIGHUP: new connections get the new one, open ones
//!   keep theirs) or generated at start-up: a P-256 key that never leaves this process and a
//!   self-signed certificate carrying RA-TLS evidence (`hypervisor_protocol::tls`), the default
//!   for confidential deployments.
//! - TLS 1.3 only (the channel binding uses its exporter, as RFC 9266 requires of
//!   `tls-exporter`), HTTP/2 and HTTP/1.1 by ALPN, rustls with the ring provider.
//! - Each handshake yields the connection's [`TlsChannel`]: its exporter value and the
//!   certificate it was given, which every request on it carries to `/attestation/channel`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use hypervisor_protocol::tls::{
    CERTIFICATE_EVIDENCE_OID_ARCS, CertificateEvidence, EXPORTER_LABEL, EXPORTER_LEN,
    certificate_report_data,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{Acceptor, ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;
use zeroize::Zeroizing;

use crate::attestation::{Attestor, TeeKind};
use crate::config::TlsConfig;
use crate::net::TlsChannel;

/// Why the TLS front could not be set up or reloaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A file holds no usable PEM item.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// rustls refused the certificate or key.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The certificate could not be generated.
    #[error("cannot generate the TLS certificate: {0}")]
    Generate(String),
    /// The evidence for the generated certificate could not be had.
    #[error("cannot attest the TLS certificate: {0}")]
    Attestation(#[from] crate::attestation::AttestationError),
}

/// The certificate in use, with the rustls configuration that presents it.
struct Served {
    config: Arc<ServerConfig>,
    certificate_sha256: [u8; 32],
    generated: bool,
}

/// Where the operator's certificate comes from, and the state of its files when last loaded.
struct Files {
    certificate: PathBuf,
    key: PathBuf,
    loaded: Mutex<Option<Fingerprint>>,
}

/// Modification time and length of both files: a change means reload.
type Fingerprint = [(Option<SystemTime>, u64); 2];

/// The TLS front: the current certificate and the handshake.
pub struct Tls {
    current: RwLock<Arc<Served>>,
    files: Option<Files>,
    /// Names of the self-generated certificate.
    names: Vec<String>,
}

impl Tls {
    /// Loads the operator's certificate, or generates one with RA-TLS evidence from `attestor`
    /// (a certificate without the evidence extension on a host without attestation).
    ///
    /// # Errors
    /// [`TlsError`].
    pub fn new(config: &TlsConfig, attestor: &Attestor) -> Result<Self, TlsError> {
        match (&config.certificate, &config.key) {
            (Some(certificate), Some(key)) => {
                let files = Files {
                    certificate: certificate.clone(),
                    key: key.clone(),
                    loaded: Mutex::new(None),
                };
                let fingerprint = files.fingerprint();
                let served = load_files(&files.certificate, &files.key)?;
                *files.loaded.lock().unwrap_or_else(|p| p.into_inner()) = Some(fingerprint);
                Ok(Self {
                    current: RwLock::new(Arc::new(served)),
                    files: Some(files),
                    names: Vec::new(),
                })
            }
            _ => Ok(Self {
                current: RwLock::new(Arc::new(generate(&config.names, attestor)?)),
                files: None,
                names: config.names.clone(),
            }),
        }
    }

    /// SHA-256 of the certificate new connections get, and whether it is self-generated.
    pub fn certificate(&self) -> ([u8; 32], bool) {
        let served = self.served();
        (served.certificate_sha256, served.generated)
    }

    fn served(&self) -> Arc<Served> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Loads the certificate files again if they changed since the last load (`force`: in any
    /// case). Returns whether a new certificate is in use; a generated certificate never
    /// changes.
    ///
    /// # Errors
    /// [`TlsError`]: the previous certificate stays in use.
    pub fn reload(&self, force: bool) -> Result<bool, TlsError> {
        let Some(files) = &self.files else {
            return Ok(false);
        };
        let fingerprint = files.fingerprint();
        {
            let loaded = files.loaded.lock().unwrap_or_else(|p| p.into_inner());
            if !force && *loaded == Some(fingerprint) {
                return Ok(false);
            }
        }
        let served = load_files(&files.certificate, &files.key)?;
        *files.loaded.lock().unwrap_or_else(|p| p.into_inner()) = Some(fingerprint);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(served);
        Ok(true)
    }

    /// Generates a new self-generated certificate, with evidence binding the attestor's
    /// current signing key (called after each key rotation, so that the certificate names the
    /// key that signs the channel bindings). Returns whether a new certificate is in use: the
    /// operator's certificate is never replaced. Blocking (evidence, key generation).
    ///
    /// # Errors
    /// [`TlsError`]: the previous certificate stays in use.
    pub fn renew(&self, attestor: &Attestor) -> Result<bool, TlsError> {
        if self.files.is_some() {
            return Ok(false);
        }
        let served = generate(&self.names, attestor)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(served);
        Ok(true)
    }

    /// The TLS handshake of an accepted connection, and its channel.
    ///
    /// # Errors
    /// The handshake failed (the client is told by a TLS alert where possible).
    pub async fn handshake(
        &self,
        tcp: TcpStream,
    ) -> io::Result<(TlsStream<TcpStream>, TlsChannel)> {
        let start = LazyConfigAcceptor::new(Acceptor::default(), tcp).await?;
        // The certificate is chosen once per connection, so the channel names the one this
        // connection was given even if a reload happens during the handshake.
        let served = self.served();
        let stream = start.into_stream(served.config.clone()).await?;
        let mut exporter = [0u8; EXPORTER_LEN];
        // TLS 1.3 treats an absent context as an empty one (RFC 8446 §7.5).
        stream
            .get_ref()
            .1
            .export_keying_material(&mut exporter, EXPORTER_LABEL, None)
            .map_err(io::Error::other)?;
        let channel = TlsChannel {
            exporter,
            certificate_sha256: served.certificate_sha256,
            certificate_generated: served.generated,
        };
        Ok((stream, channel))
    }
}

impl Files {
    fn fingerprint(&self) -> Fingerprint {
        let of = |path: &Path| match std::fs::metadata(path) {
            Ok(m) => (m.modified().ok(), m.len()),
            Err(_) => (None, 0),
        };
        [of(&self.certificate), of(&self.key)]
    }
}

/// Reloads the operator's certificate files on SIGHUP and, every `interval` (none: never),
/// when they changed. Failures are logged; the certificate in use stays.
pub fn spawn_reloader(tls: Arc<Tls>, interval: Option<Duration>) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    /// Completes on SIGHUP; never when it cannot be watched.
    async fn hangup(watch: &mut Option<Signal>) {
        let received = match watch {
            Some(signal) => signal.recv().await.is_some(),
            None => false,
        };
        if !received {
            // Not watched, or the signal stream ended: never.
            *watch = None;
            std::future::pending::<()>().await;
        }
    }
    tokio::spawn(async move {
        let mut watch = match signal(SignalKind::hangup()) {
            Ok(signal) => Some(signal),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGHUP: TLS certificate reload by signal is off");
                None
            }
        };
        loop {
            let forced = tokio::select! {
                () = hangup(&mut watch) => true,
                () = async {
                    match interval {
                        Some(every) => tokio::time::sleep(every).await,
                        None => std::future::pending().await,
                    }
                } => false,
            };
            let tls = tls.clone();
            match tokio::task::spawn_blocking(move || tls.reload(forced).map(|new| (new, tls)))
                .await
            {
                Ok(Ok((true, tls))) => {
                    let (sha256, _) = tls.certificate();
                    tracing::info!(certificate_sha256 = %hex::encode(sha256), "TLS certificate reloaded");
                }
                Ok(Ok((false, _))) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "TLS certificate not reloaded; the previous one stays in use")
                }
                Err(e) => tracing::error!(error = %e, "TLS certificate reload failed"),
            }
        }
    })
}

/// The rustls configuration presenting `certified`.
fn server_config(certified: CertifiedKey) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(Arc::new(certified))));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// One certificate for every client (SNI does not choose).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A certified key from a chain and its private key (which the caller zeroizes).
fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: &Zeroizing<PrivateKeyDer<'static>>,
) -> Result<CertifiedKey, TlsError> {
    // Parsed from a borrow, so that our copy is the zeroizing one (ring keeps its own, which
    // it does not wipe on drop).
    let signing = rustls::crypto::ring::sign::any_supported_type(key)?;
    let certified = CertifiedKey::new(chain, signing);
    // The key must be the certificate's (a mismatch would fail every handshake later).
    certified.keys_match()?;
    Ok(certified)
}

/// Reads the operator's PEM files.
fn load_files(certificate: &Path, key: &Path) -> Result<Served, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path)
            .map(Zeroizing::new)
            .map_err(|source| TlsError::Read {
                path: path.to_owned(),
                source,
            })
    };
    let pem = |path: &Path, what: String| TlsError::Pem {
        path: path.to_owned(),
        what,
    };
    let chain = CertificateDer::pem_slice_iter(&read(certificate)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(certificate, format!("not a PEM certificate chain: {e}")))?;
    let Some(leaf) = chain.first() else {
        return Err(pem(certificate, "no CERTIFICATE in the file".into()));
    };
    let certificate_sha256 = hypervisor_protocol::sha256(leaf);
    let key = Zeroizing::new(
        PrivateKeyDer::from_pem_slice(&read(key)?)
            .map_err(|e| pem(key, format!("no usable private key: {e}")))?,
    );
    Ok(Served {
        config: Arc::new(server_config(certified(chain, &key)?)?),
        certificate_sha256,
        generated: false,
    })
}

/// Generates the host's certificate: a fresh P-256 key, the configured names, and (with
/// attestation) the evidence extension binding the key to the host's signing key.
fn generate(names: &[String], attestor: &Attestor) -> Result<Served, TlsError> {
    use rcgen::PublicKeyData as _;
    let failed = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(failed)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "wasm-hypervisor");
    if attestor.kind() != TeeKind::None {
        let key = attestor.current().ok_or_else(|| {
            TlsError::Generate("attestation is configured but the host has no signing key".into())
        })?;
        let spki_sha256 = hypervisor_protocol::sha256(&key_pair.subject_public_key_info());
        let created_at = crate::clock::unix_seconds();
        let report_data =
            certificate_report_data(&spki_sha256, &key.public, &key.host_measurement, created_at);
        let evidence = attestor.attest(&report_data)?;
        let extension = CertificateEvidence {
            evidence_format: evidence.format.to_owned(),
            evidence: evidence.evidence,
            signing_key: key.public,
            host_measurement: key.host_measurement,
            created_at,
            event_log: evidence.event_log,
        }
        .to_extension_value()
        .map_err(|e| TlsError::Generate(e.to_string()))?;
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &CERTIFICATE_EVIDENCE_OID_ARCS,
                extension,
            ));
    }
    let certificate = params.self_signed(&key_pair).map_err(failed)?;
    let der = certificate.der().clone();
    let certificate_sha256 = hypervisor_protocol::sha256(&der);
    let key = Zeroizing::new(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        key_pair.serialize_der(),
    )));
    // rcgen's key pair goes now. Neither rcgen nor ring wipes its copy of the private key when
    // dropped (ring's, held by rustls, lives until the certificate is replaced); ours, the
    // PKCS#8 buffer above, is zeroized. The key never leaves the process either way.
    drop(key_pair);
    Ok(Served {
        config: Arc::new(server_config(certified(vec![der], &key)?)?),
        certificate_sha256,
        generated: true,
    })
}
