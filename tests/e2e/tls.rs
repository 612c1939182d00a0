//! HTTPS inside the host (`[tls]`): HTTP/1.1 and HTTP/2 by ALPN, the channel binding a client
//! relies on (and that a TLS-terminating proxy breaks), the RA-TLS evidence of the
//! self-generated certificate, and certificate files reloaded on SIGHUP under load.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hypervisor_client::agents::Deployment;
use hypervisor_client::tls::{ChannelError, check_channel, verify_certificate_evidence};
use hypervisor_client::verify::{Policy, VerifyError};
use hypervisor_client::x402::Wallet;
use hypervisor_client::{Client, ClientError, ExecuteInput};
use hypervisor_protocol::ClientSecret;
use serde_json::json;

use crate::harness::{TestServer, wasm};
use crate::payments::{limit, official_client_pays, payments_table};

/// Simulated attestation and HTTPS only, on an ephemeral port.
const TLS_ONLY: &str =
    "[attestation]\nprovider = \"simulated\"\n[tls]\nlisten = \"127.0.0.1:0\"\nplain = false\n";

fn dev_policy() -> Policy {
    Policy {
        allow_simulated: true,
        reference_values: vec![crate::harness::simulated_reference()],
        ..Policy::default()
    }
}

/// `curl -k` with the given HTTP version flag: (status, HTTP version, body).
fn curl(version: &str, url: &str) -> (String, String, String) {
    let out = Command::new("curl")
        .args(["-sk", version, "-w", "\n%{http_code} %{http_version}", url])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, tail) = text.rsplit_once('\n').expect("curl's write-out line");
    let (status, http_version) = tail.split_once(' ').expect("status and version");
    (status.into(), http_version.into(), body.into())
}

#[test]
fn https_answers_over_http1_and_http2_and_plain_http_cannot_bind_a_channel() {
    let server = TestServer::start_with(TLS_ONLY);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let (status, got, body) = curl(flag, &format!("{}/ping", server.url));
        assert_eq!(
            (status.as_str(), got.as_str(), body.as_str()),
            ("200", version, "pong")
        );
        let (status, _, body) = curl(flag, &format!("{}/attestation", server.url));
        assert_eq!(status, "200", "{body}");
        assert!(body.contains("\"simulated\":true"), "{body}");
    }
    // A nonce of the wrong size is refused with the usual error body.
    let (status, _, body) = curl(
        "--http2",
        &format!("{}/attestation/channel?nonce=00", server.url),
    );
    assert_eq!(status, "400", "{body}");
    assert!(body.contains("\"invalid_request\""), "{body}");

    // Plain HTTP has no exporter: the binding route says so, and the client refuses the URL.
    let plain = TestServer::start_with("[attestation]\nprovider = \"simulated\"\n");
    let nonce = "00".repeat(32);
    let (status, _, body) = curl(
        "--http1.1",
        &format!("{}/attestation/channel?nonce={nonce}", plain.url),
    );
    assert_eq!(status, "400", "{body}");
    assert!(body.contains("\"tls_required\""), "{body}");
    assert!(matches!(
        check_channel(&plain.url, &dev_policy()),
        Err(ChannelError::NotHttps(_))
    ));
}

#[test]
fn the_channel_check_accepts_the_host_and_fails_through_a_terminating_proxy() {
    let server = TestServer::start_with(TLS_ONLY);
    let report = check_channel(&server.url, &dev_policy()).expect("direct channel check");
    assert!(report.certificate_generated);
    assert!(report.key.simulated);
    // The certificate's own evidence names the same attested key.
    let evidence = report
        .certificate_evidence
        .as_ref()
        .expect("RA-TLS evidence");
    assert_eq!(evidence.signing_key, report.key.signing_key);
    // Without simulation allowed, the same host is refused.
    assert!(matches!(
        check_channel(&server.url, &Policy::default()),
        Err(ChannelError::NotBound(VerifyError::Simulated))
    ));

    // A proxy that terminates TLS with its own certificate and forwards the request to the
    // host over its own TLS session: the host signs the proxy's session, not the client's.
    let upstream = server.url.trim_start_matches("https://").to_owned();
    let proxy = terminating_proxy(upstream);
    let err = check_channel(&format!("https://{proxy}"), &dev_policy())
        .expect_err("a terminating proxy must fail the channel check");
    assert!(
        matches!(
            err,
            ChannelError::NotBound(VerifyError::Mismatch(_) | VerifyError::Signature(_))
        ),
        "{err}"
    );
}

#[test]
fn certificate_evidence_that_binds_another_key_is_refused() {
    let server = TestServer::start_with(TLS_ONLY);
    let report = check_channel(&server.url, &dev_policy()).expect("channel check");
    verify_certificate_evidence(&report.certificate, &dev_policy()).expect("the host's own");

    // The same evidence extension on a certificate with another key.
    let record = cmw_record(&report.certificate);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            &hypervisor_protocol::tls::CERTIFICATE_EVIDENCE_OID_ARCS,
            utf8_string_der(&record),
        ));
    let other = params.self_signed(&key).unwrap();
    assert_eq!(
        verify_certificate_evidence(other.der(), &dev_policy()),
        Err(VerifyError::Binding)
    );
    // And a certificate without the extension has no evidence at all.
    let bare = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    assert!(matches!(
        verify_certificate_evidence(bare.der(), &dev_policy()),
        Err(VerifyError::Malformed(_))
    ));
}

#[test]
fn certificate_files_reload_on_sighup_without_losing_a_request() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    let write_pair = || {
        let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        // Key first, then the certificate: a reload between the two writes fails the key
        // check and keeps the previous pair (logged), never serving a mismatched one.
        std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
        std::fs::write(&cert, pair.cert.pem()).unwrap();
        hypervisor_protocol::sha256(pair.cert.der())
    };
    let first = write_pair();
    let server = TestServer::start_with(&format!(
        "[attestation]\nprovider = \"simulated\"\n[tls]\nlisten = \"127.0.0.1:0\"\nplain = false\n\
         certificate = {:?}\nkey = {:?}\nreload_interval_ms = 0\n",
        cert.display().to_string(),
        key.display().to_string()
    ));
    let report = check_channel(&server.url, &dev_policy()).unwrap();
    assert_eq!(report.certificate_sha256, first);
    assert!(!report.certificate_generated && report.certificate_evidence.is_none());
    // A bound client whose (kept-alive) connection is open across the reload.
    let kept = Client::with_channel_binding(&server.url, dev_policy());
    assert_eq!(kept.ping().unwrap(), "pong");

    // Two clients open connection after connection while the files change and SIGHUP comes.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let loaders: Vec<_> = (0..2)
        .map(|_| {
            let (url, stop, done) = (server.url.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let report = check_channel(&url, &dev_policy()).expect("no request lost");
                    seen.push(report.certificate_sha256);
                    done.fetch_add(1, Ordering::Relaxed);
                }
                seen
            })
        })
        .collect();
    while done.load(Ordering::Relaxed) < 10 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = write_pair();
    let hup = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    assert!(
        server.wait_for_log("TLS certificate reloaded", Duration::from_secs(30)),
        "no reload logged"
    );
    let after = done.load(Ordering::Relaxed);
    while done.load(Ordering::Relaxed) < after + 10 {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<[u8; 32]> = loaders
        .into_iter()
        .flat_map(|t| t.join().expect("a loader failed"))
        .collect();
    assert!(seen.iter().all(|s| *s == first || *s == second));
    assert_eq!(
        seen.last(),
        Some(&second),
        "new connections get the new certificate"
    );
    assert_eq!(
        check_channel(&server.url, &dev_policy())
            .unwrap()
            .certificate_sha256,
        second
    );
    // The open connection was not dropped: it still answers, and was never bound again (its
    // binding names the first certificate).
    assert_eq!(kept.ping().unwrap(), "pong");
    assert_eq!(kept.channel().unwrap().certificate_sha256, first);
}

/// The self-generated certificate follows the attested key: after a rotation, new
/// connections get a new certificate whose evidence names the new key, which also signs
/// their channel bindings.
#[test]
fn the_generated_certificate_is_renewed_with_each_key_rotation() {
    let server = TestServer::start_with(
        "[attestation]\nprovider = \"simulated\"\nkey_rotation_seconds = 1\n\
         [tls]\nlisten = \"127.0.0.1:0\"\nplain = false\n",
    );
    let first = check_channel(&server.url, &dev_policy()).unwrap();
    assert!(
        server.wait_for_log("TLS certificate renewed", Duration::from_secs(30)),
        "no renewal logged"
    );
    let later = check_channel(&server.url, &dev_policy()).unwrap();
    assert_ne!(later.certificate_sha256, first.certificate_sha256);
    assert_ne!(later.key.signing_key, first.key.signing_key);
    for report in [&first, &later] {
        let evidence = report.certificate_evidence.as_ref().unwrap();
        assert_eq!(evidence.signing_key, report.key.signing_key);
    }
}

/// Every route class through the Rust client over HTTPS, each connection bound to the
/// attested key: encrypted verifiable execution, x402 payment, agent deploy and invoke, and an
/// HTTP agent (over HTTP/2 with curl).
#[test]
fn every_route_class_works_over_https_with_each_connection_bound() {
    let server = TestServer::start_with(&format!("{TLS_ONLY}{}", payments_table("")));
    let client = Client::with_channel_binding(&server.url, dev_policy());
    assert_eq!(client.ping().unwrap(), "pong");
    let channel = client.channel().expect("the connection was bound");
    assert!(channel.certificate_generated && channel.certificate_evidence.is_some());

    let key = ClientSecret::generate().unwrap();
    let session = client
        .create_verifiable_session(&key, &dev_policy())
        .unwrap();
    let run = client
        .execute_verifiable(&session, &ExecuteInput::new(&wasm("hello")).args(["tls"]))
        .unwrap();
    assert_eq!(run.stdout().unwrap(), b"Hello tls\n");

    let plain = client.create_session(&key).unwrap();
    let paid = client
        .execute_paid(
            &plain,
            &ExecuteInput::new(&wasm("hello")).args(["paid"]),
            false,
            &Wallet::random().unwrap(),
            &limit(),
        )
        .unwrap();
    assert_eq!(paid.stdout().unwrap(), b"Hello paid\n");
    assert_eq!(paid.settlement.unwrap()["success"], true);

    let owner = ClientSecret::generate().unwrap();
    for (name, guest) in [("stats", "text-stats"), ("web", "http-hello")] {
        client
            .deploy_agent(
                &owner,
                &Deployment {
                    name,
                    component: &wasm(guest),
                    ..Deployment::default()
                },
            )
            .unwrap();
    }
    let out = client
        .invoke("stats", json!({"text": "over tls now"}))
        .unwrap();
    assert_eq!(out.result_json().unwrap()["words"], 3);
    let (status, version, body) = curl("--http2", &format!("{}/agents/web/", server.url));
    assert_eq!((status.as_str(), version.as_str()), ("200", "2"), "{body}");

    // The same JSON routes over HTTP/2 (curl): an encrypted execution in the client's session,
    // and an agent invocation.
    let (request, digests) = plain
        .encrypt_execution(&ExecuteInput::new(&wasm("hello")).args(["h2"]))
        .unwrap();
    let (status, version, body) = curl_post(
        &format!("{}/test/execute/wasm", server.url),
        &serde_json::to_string(&request).unwrap(),
    );
    assert_eq!((status.as_str(), version.as_str()), ("200", "2"), "{body}");
    let run = plain
        .check_response(200, serde_json::from_str(&body).unwrap(), &digests)
        .unwrap();
    assert_eq!(run.stdout().unwrap(), b"Hello h2\n");
    let (status, version, body) = curl_post(
        &format!("{}/agents/stats/invoke", server.url),
        r#"{"event": {"text": "two words"}}"#,
    );
    assert_eq!((status.as_str(), version.as_str()), ("200", "2"), "{body}");
    assert!(body.contains("\"words\":2"), "{body}");
}

/// `curl -k --http2` POSTing JSON: (status, HTTP version, body).
fn curl_post(url: &str, json: &str) -> (String, String, String) {
    let mut child = Command::new("curl")
        .args(["-sk", "--http2", "-H", "content-type: application/json"])
        .args([
            "--data-binary",
            "@-",
            "-w",
            "\n%{http_code} %{http_version}",
            url,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, tail) = text.rsplit_once('\n').expect("curl's write-out line");
    let (status, version) = tail.split_once(' ').expect("status and version");
    (status.into(), version.into(), body.into())
}

/// The bound client in front of a TLS-terminating proxy: no request goes through.
#[test]
fn a_bound_client_refuses_a_host_behind_a_terminating_proxy() {
    let server = TestServer::start_with(TLS_ONLY);
    let proxy = terminating_proxy(server.url.trim_start_matches("https://").to_owned());
    let client = Client::with_channel_binding(&format!("https://{proxy}"), dev_policy());
    let err = client
        .ping()
        .expect_err("the proxy's channel is not the host's");
    assert!(
        matches!(&err, ClientError::Transport(m) if m.contains("not bound to an attested host")),
        "{err}"
    );
    assert!(client.channel().is_none());
}

/// The official x402 client (npm) pays over HTTPS, trusting the operator's certificate.
#[test]
fn the_official_x402_client_pays_over_https() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    let server = TestServer::start_with(&format!(
        "[attestation]\nprovider = \"simulated\"\n{}[tls]\nlisten = \"127.0.0.1:0\"\nplain = false\ncertificate = {:?}\nkey = {:?}\n",
        payments_table(""),
        cert.display().to_string(),
        key.display().to_string()
    ));
    assert!(server.url.starts_with("https://"));
    let client = Client::with_channel_binding(&server.url, dev_policy());
    let session = client
        .create_session(&ClientSecret::generate().unwrap())
        .unwrap();
    official_client_pays(
        &server,
        &session,
        "npm-tls",
        &[("NODE_EXTRA_CA_CERTS", cert.as_path())],
    );
}

/// An agent calling an agent on another hypervisor over HTTPS: the call goes through a
/// channel bound to the remote's attested key; behind a terminating proxy nothing is sent.
#[test]
fn a_remote_hypervisor_over_https_is_called_through_a_bound_channel() {
    let remote = TestServer::start_with(TLS_ONLY);
    let remote_client = Client::with_channel_binding(&remote.url, dev_policy());
    let owner = ClientSecret::generate().unwrap();
    remote_client
        .deploy_agent(
            &owner,
            &Deployment {
                name: "stats",
                component: &wasm("text-stats"),
                ..Deployment::default()
            },
        )
        .unwrap();
    let proxy = format!(
        "https://{}",
        terminating_proxy(remote.url.trim_start_matches("https://").to_owned())
    );
    let host = TestServer::start();
    let client = host.client();
    for (name, origin) in [("direct", remote.url.clone()), ("proxied", proxy.clone())] {
        client
            .deploy_agent(
                &owner,
                &Deployment {
                    name,
                    component: &wasm("caller"),
                    grants: Some(crate::harness::simulated_remote_grant(&origin)),
                    ..Deployment::default()
                },
            )
            .unwrap();
    }
    let call = |agent: &str, origin: &str| {
        let event = json!({
            "url": format!("{origin}/agents/stats/invoke"),
            "body": {"event": {"text": "words over tls"}},
        });
        let out = client.invoke(agent, event).unwrap();
        out.result_json().unwrap()["responses"][0].clone()
    };
    let answer = call("direct", &remote.url);
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(answer["body"]["result"]["words"], 3, "{answer}");
    let refused = call("proxied", &proxy);
    assert_eq!(refused["status"], 502, "{refused}");
    assert_eq!(refused["body"]["error"]["code"], "remote_not_attested");
    assert_eq!(
        remote_client.executions(&owner, 0, 1000).unwrap().len(),
        1,
        "the remote ran only the direct call"
    );
}

/// The JSON CMW record inside a certificate's evidence extension.
fn cmw_record(der: &[u8]) -> String {
    let text = String::from_utf8_lossy(der);
    let start = text
        .find("[\"application/vnd.wasm-hypervisor")
        .expect("the evidence extension");
    let end = start + text[start..].find(']').expect("end of the record") + 1;
    text[start..end].to_owned()
}

/// DER of a UTF8String.
fn utf8_string_der(s: &str) -> Vec<u8> {
    let len = s.len();
    let mut out = vec![0x0c];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend(s.as_bytes());
    out
}

/// A TLS-terminating proxy on loopback, with its own self-signed certificate, forwarding each
/// request (one per connection) to `upstream` over its own TLS session. Returns its address.
fn terminating_proxy(upstream: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![pair.cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(pair.signing_key.serialize_der().into()),
            )
            .unwrap(),
    );
    let client_config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate))
            .with_no_client_auth(),
    );
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let (server_config, client_config, upstream) = (
                server_config.clone(),
                client_config.clone(),
                upstream.clone(),
            );
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(server_config).unwrap();
                let mut down = rustls::StreamOwned::new(conn, client);
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") {
                    if down.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    request.push(byte[0]);
                }
                let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
                let conn = rustls::ClientConnection::new(client_config, name).unwrap();
                let mut up = rustls::StreamOwned::new(conn, TcpStream::connect(&upstream).unwrap());
                up.write_all(&request).unwrap();
                // The host's answer, exactly (its head, then Content-Length bytes), passed on
                // unchanged.
                let mut answer = Vec::new();
                while !answer.ends_with(b"\r\n\r\n") {
                    if up.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    answer.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&answer).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                if up.read_exact(&mut body).is_err() {
                    return;
                }
                answer.extend(body);
                let _ = down.write_all(&answer);
                down.conn.send_close_notify();
                let _ = down.flush();
            });
        }
    });
    addr
}

/// The proxy's upstream verifier: any certificate.
#[derive(Debug)]
struct AnyCertificate;

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.verify_tls12_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A relay that passes TLS through (TCP, byte for byte) to `upstream`: its address.
fn passthrough_relay(upstream: String) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut client_in, mut server_out) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut server_in, mut client_out) = (server, client);
            std::thread::spawn(move || std::io::copy(&mut client_in, &mut server_out));
            std::thread::spawn(move || std::io::copy(&mut server_in, &mut client_out));
        }
    });
    address
}

#[test]
fn a_relay_cannot_lead_a_client_pinned_to_one_deployment_to_another() {
    // Two deployments of the same build on the same (simulated) platform: each has its own
    // audience, drawn at its first start.
    let a = TestServer::start_with(TLS_ONLY);
    let b = TestServer::start_with(TLS_ONLY);
    let audience = |s: &TestServer| {
        check_channel(&s.url, &dev_policy())
            .expect("channel check")
            .audience
    };
    let (audience_a, audience_b) = (audience(&a), audience(&b));
    assert_ne!(audience_a, audience_b);
    assert_eq!(audience_a.len(), 32, "{audience_a}");

    // A relay that claims to be A but passes TLS through to B: the channel binds (B's
    // session is the client's), so without a pin the client accepts B...
    let relay = passthrough_relay(b.url.trim_start_matches("https://").to_owned());
    let relayed = format!("https://{relay}");
    let report = check_channel(&relayed, &dev_policy()).expect("an unpinned client accepts B");
    assert_eq!(report.audience, audience_b);
    // ...and a client pinned to A refuses it, naming both deployments.
    let pinned_a = Policy {
        expected_audience: Some(audience_a.clone()),
        ..dev_policy()
    };
    match check_channel(&relayed, &pinned_a) {
        Err(ChannelError::NotBound(VerifyError::OtherDeployment { expected, got })) => {
            assert_eq!((expected, got), (audience_a.clone(), audience_b.clone()));
        }
        other => panic!("{other:?}"),
    }
    // Pinned to A, A itself passes; so does an encrypted execution through the bound client.
    check_channel(&a.url, &pinned_a).expect("A is A");
    let client = Client::with_channel_binding(&a.url, pinned_a);
    let key = ClientSecret::generate().unwrap();
    let session = client.create_session(&key).expect("a session on A");
    let run = client
        .execute(
            &session,
            &ExecuteInput::new(&wasm("hello")).args(["pinned"]),
        )
        .expect("execute on A");
    assert_eq!(run.stdout().unwrap(), b"Hello pinned\n");
}
