//! Intel TDX evidence through the dstack guest agent (Dstack-TEE/dstack), for a host running as
//! a dstack app: `POST /GetQuote {"report_data": "<hex, 64 bytes>"}` over the agent's Unix
//! socket (HTTP/1.1, pRPC's JSON form). The agent pads REPORTDATA to 64 bytes without hashing,
//! so ours goes in unchanged, and answers `{quote, event_log, report_data, vm_config}`, where
//! `event_log` is a JSON string holding the event array (boot events and dstack's RTMR3
//! runtime events: `compose-hash`, `app-id`, `instance-id`, `key-provider`, …).
//!
//! The quote goes out as `tdx-dcap-quote` evidence and the event log with it: verifiers replay
//! RTMR3 from the log, require the quote's RTMR3, and take the app's identity from the
//! `compose-hash` event (which pins the compose file, so the image digest, so the binary).
//! Before handing the evidence out, the provider checks what it can without collateral: the
//! quote carries our REPORTDATA and the log replays to the quote's RTMR3 (an agent answering
//! otherwise is broken or not dstack).
//!
//! Facts from `../shared/notes/dstack.md`: socket paths, the request, the response shape.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hypervisor_eventlog as eventlog;

use super::{AttestationError, AttestationProvider, Evidence, TeeKind};

/// Where dstack's clients look for the agent's socket, in order (after `DSTACK_AGENT_ADDRESS`).
pub const SOCKET_CANDIDATES: [&str; 4] = [
    "/var/run/dstack.sock",
    "/run/dstack.sock",
    "/var/run/dstack/dstack.sock",
    "/run/dstack/dstack.sock",
];

/// The largest answer read from the agent (a quote is ~5 KB, an event log tens of KB).
const MAX_RESPONSE_BYTES: usize = 8 << 20;

/// How long one quote may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The agent's socket: `configured`, else `DSTACK_AGENT_ADDRESS` (`unix:PATH` or a path), else
/// the first candidate that exists.
pub fn find_socket(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = configured {
        return Some(p.to_path_buf());
    }
    if let Ok(a) = std::env::var("DSTACK_AGENT_ADDRESS")
        && !a.is_empty()
    {
        return Some(PathBuf::from(a.strip_prefix("unix:").unwrap_or(&a)));
    }
    SOCKET_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// The dstack guest agent's `GetQuote` response.
#[derive(serde::Deserialize)]
struct GetQuoteResponse {
    quote: String,
    #[serde(default)]
    event_log: String,
    #[serde(default)]
    report_data: String,
}

/// TDX evidence from the dstack guest agent.
#[derive(Debug)]
pub struct DstackProvider {
    socket: PathBuf,
}

impl DstackProvider {
    /// A provider asking the agent at `socket`.
    pub fn new(socket: PathBuf) -> Self {
        Self { socket }
    }

    /// One `POST /GetQuote` on a thread of its own, with its own small runtime: `attest` is
    /// called from blocking code and from inside the server's runtime alike.
    fn get_quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, AttestationError> {
        let socket = self.socket.clone();
        let body = serde_json::json!({ "report_data": hex::encode(report_data) }).to_string();
        std::thread::Builder::new()
            .name("dstack-quote".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| failed(format!("runtime: {e}")))?;
                rt.block_on(async {
                    tokio::time::timeout(TIMEOUT, post(&socket, "/GetQuote", body))
                        .await
                        .map_err(|_| {
                            failed(format!(
                                "the dstack guest agent at {} did not answer within {} s",
                                socket.display(),
                                TIMEOUT.as_secs()
                            ))
                        })?
                })
            })
            .map_err(|e| failed(format!("thread: {e}")))?
            .join()
            .map_err(|_| failed("the quote thread panicked".into()))?
    }
}

fn failed(why: String) -> AttestationError {
    AttestationError::ProviderFailed(format!("dstack: {why}"))
}

async fn post(socket: &Path, path: &str, body: String) -> Result<Vec<u8>, AttestationError> {
    let stream = tokio::net::UnixStream::connect(socket).await.map_err(|e| {
        failed(format!(
            "cannot connect to the guest agent at {} ({e}); mount it into the container \
             (volumes: - /var/run/dstack.sock:/var/run/dstack.sock) or set \
             attestation.dstack_socket",
            socket.display()
        ))
    })?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| failed(format!("HTTP handshake: {e}")))?;
    let driver = tokio::spawn(connection);
    let request = http::Request::post(path)
        .header(http::header::HOST, "localhost")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| failed(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| failed(format!("{path}: {e}")))?;
    let status = response.status();
    let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| failed(format!("{path}: reading the answer: {e}")))?
        .to_bytes();
    driver.abort();
    if !status.is_success() {
        return Err(failed(format!(
            "{path} answered {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        )));
    }
    Ok(bytes.to_vec())
}

/// Checks the agent's answer against what was asked, and turns it into evidence.
fn evidence_from(answer: &[u8], report_data: &[u8; 64]) -> Result<Evidence, AttestationError> {
    let r: GetQuoteResponse = serde_json::from_slice(answer)
        .map_err(|e| failed(format!("GetQuote answer is not the expected JSON: {e}")))?;
    let quote = hex::decode(r.quote.trim_start_matches("0x"))
        .map_err(|_| failed("GetQuote `quote` is not hex".into()))?;
    // Read through dcap-qvl's parser (v4 and v5 quotes; TDX only), not fixed offsets. Nothing
    // is verified here: clients do that.
    let parsed = dcap_qvl::quote::Quote::parse(&quote)
        .map_err(|e| failed(format!("GetQuote `quote` is not a TDX quote: {e}")))?;
    let td = parsed
        .report
        .as_td10()
        .ok_or_else(|| failed("GetQuote `quote` is not a TDX quote".into()))?;
    if td.report_data != *report_data {
        return Err(failed(
            "the quote does not carry the REPORTDATA asked for (is the agent hashing it? \
             Tappd's TdxQuote does; DstackGuest's GetQuote must not)"
                .into(),
        ));
    }
    if !r.report_data.is_empty()
        && hex::decode(r.report_data.trim_start_matches("0x"))
            .ok()
            .as_deref()
            != Some(&report_data[..])
    {
        return Err(failed(
            "GetQuote `report_data` differs from the request".into(),
        ));
    }
    let events =
        eventlog::parse_json(&r.event_log).map_err(|e| failed(format!("event log: {e}")))?;
    let replayed = eventlog::replay(&events).map_err(|e| failed(format!("event log: {e}")))?;
    if td.rt_mr3 != replayed[3] {
        return Err(failed(
            "the agent's event log does not replay to the quote's RTMR3".into(),
        ));
    }
    Ok(Evidence {
        tee: TeeKind::Tdx,
        format: "tdx-dcap-quote",
        report_data: *report_data,
        evidence: quote,
        event_log: Some(r.event_log),
    })
}

impl AttestationProvider for DstackProvider {
    fn kind(&self) -> TeeKind {
        TeeKind::Tdx
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestationError> {
        let answer = self.get_quote(report_data)?;
        evidence_from(&answer, report_data)
    }
}

#[cfg(test)]
mod tests;
