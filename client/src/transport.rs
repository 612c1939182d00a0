//! What a newcomer needs to hear when the server cannot be reached: a server URL is checked
//! before anything is sent, and a transport failure names the URL, says what went wrong in
//! words (refused, not TLS, an unknown certificate authority, …) and what to try.

use crate::ClientError;

/// Checks a server base URL (`--server`): `http://` or `https://`, a host, no query or
/// fragment. Returns it without a trailing `/`.
///
/// # Errors
/// [`ClientError::BadUrl`], with the likely fix (`127.0.0.1:3000` → `http://127.0.0.1:3000`).
pub fn check_server_url(url: &str) -> Result<String, ClientError> {
    let bad = |why: String| Err(ClientError::BadUrl(why));
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &url[7..]
    } else if lower.starts_with("https://") {
        &url[8..]
    } else if url.contains("://") {
        return bad(format!(
            "{url}: only http:// and https:// servers are spoken to"
        ));
    } else {
        return bad(format!(
            "{url} has no scheme: write http://{url} (or https://{url} for a TLS port)"
        ));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return bad(format!("{url} names no host"));
    }
    if url.contains('?') || url.contains('#') {
        return bad(format!(
            "{url}: a server URL has no query or fragment (the client adds the paths)"
        ));
    }
    if let Err(e) = url.parse::<ureq::http::Uri>() {
        return bad(format!("{url} is not a URL: {e}"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Whether `url` is an `https://` one (any case).
pub fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// A transport failure of a request to `url`, explained.
pub(crate) fn explain(url: &str, error: ureq::Error) -> ClientError {
    let detail = error.to_string();
    let hint = hint(url, &error);
    ClientError::Transport(match hint {
        Some(hint) => format!("{url}: {hint} ({detail})"),
        None => format!("{url}: {detail}"),
    })
}

fn hint(url: &str, error: &ureq::Error) -> Option<String> {
    let https = is_https(url);
    match error {
        ureq::Error::HostNotFound => return Some("the server's host name does not resolve".into()),
        ureq::Error::Timeout(_) => return Some("the server did not answer in time".into()),
        ureq::Error::Http(_) | ureq::Error::BadUri(_) => {
            return Some("not a server URL: write it as http://HOST:PORT".into());
        }
        _ => {}
    }
    // The cause is an I/O error or a TLS error: ureq's own variants, or somewhere in the
    // chain of sources.
    let mut cause: Option<&(dyn std::error::Error + 'static)> = match error {
        ureq::Error::Io(io) => Some(io),
        ureq::Error::Rustls(tls) => return Some(tls_hint(tls)),
        ureq::Error::ConnectionFailed => return Some(refused()),
        other => Some(other),
    };
    while let Some(e) = cause {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls_hint(tls));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return Some(tls_hint(tls));
            }
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return Some(refused()),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
                    if !https =>
                {
                    return Some(
                        "the connection was closed before an answer: is this a TLS port? \
                         (then use https://)"
                            .into(),
                    );
                }
                _ => {}
            }
        }
        cause = e.source();
    }
    None
}

fn refused() -> String {
    "connection refused: is the server running there? (`./scripts/serve.sh` starts one on \
     http://127.0.0.1:3000; --server or HYPERVISOR_URL names another)"
        .into()
}

fn tls_hint(error: &rustls::Error) -> String {
    use rustls::{CertificateError, Error, InvalidMessage};
    match error {
        Error::InvalidMessage(InvalidMessage::InvalidContentType)
        | Error::InvalidMessage(InvalidMessage::MessageTooLarge)
        | Error::InvalidMessage(InvalidMessage::UnknownProtocolVersion) => {
            "the server does not speak TLS there: is it a plain-HTTP port? (then use http://)"
                .into()
        }
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the server's certificate is not signed by an authority this client trusts: give \
             the authority's certificate (or the server's own) with --cacert FILE; an attested \
             host's self-made certificate is checked by binding the channel to its attestation \
             instead (`attestation`, `exec --verifiable`)"
                .into()
        }
        Error::InvalidCertificate(CertificateError::NotValidForName)
        | Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => {
            "the server's certificate is for another name than the URL's host".into()
        }
        Error::InvalidCertificate(CertificateError::Expired)
        | Error::InvalidCertificate(CertificateError::ExpiredContext { .. }) => {
            "the server's certificate has expired".into()
        }
        _ => "the TLS handshake failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_without_scheme_is_refused_with_the_fix() {
        let err = check_server_url("127.0.0.1:3000").unwrap_err().to_string();
        assert!(err.contains("http://127.0.0.1:3000"), "{err}");
        assert!(err.contains("no scheme"), "{err}");
        assert!(check_server_url("ftp://h").is_err());
        assert!(check_server_url("http://").is_err());
        assert!(check_server_url("http://h:1/?x=1").is_err());
        assert_eq!(
            check_server_url("HTTP://127.0.0.1:3000/").unwrap(),
            "HTTP://127.0.0.1:3000"
        );
        assert_eq!(
            check_server_url("https://h.example/prefix").unwrap(),
            "https://h.example/prefix"
        );
    }

    #[test]
    fn a_refused_connection_names_the_url_and_what_to_do() {
        // A port nothing listens on: bind one, then close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let err = ureq::get(format!("{url}/ping")).call().unwrap_err();
        let text = explain(&url, err).to_string();
        assert!(text.contains(&url), "{text}");
        assert!(text.contains("connection refused"), "{text}");
        assert!(text.contains("serve.sh"), "{text}");
    }
}
