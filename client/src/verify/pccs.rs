//! Fetching TDX collateral online, from a PCCS or Intel's PCS (API v4), for verifiers that do
//! not have it in a file. The endpoints and their quirks follow dcap-qvl's own client:
//!
//! ```text
//! GET {base}/sgx/certification/v4/pckcrl?ca={processor|platform}&encoding=der   body: CRL (DER)   header SGX-PCK-CRL-Issuer-Chain
//! GET {base}/tdx/certification/v4/tcb?fmspc={FMSPC}&update=standard           body: {tcbInfo, signature}          header TCB-Info-Issuer-Chain
//! GET {base}/tdx/certification/v4/qe/identity?update=standard                  body: {enclaveIdentity, signature}  header SGX-Enclave-Identity-Issuer-Chain
//! GET {base}/sgx/certification/v4/rootcacrl                                    body: root CA CRL, hex (PCCS only)
//! ```
//!
//! Issuer chains arrive URL-encoded (PEM). FMSPC and the PCK CA come from the PCK leaf
//! certificate embedded in the quote. Against Intel's PCS, which has no `rootcacrl`, the root CA
//! CRL is taken from the Intel SGX Root CA's published distribution point.

use std::time::Duration;

use dcap_qvl::QuoteCollateralV3;
use dcap_qvl::quote::Quote;

use super::VerifyError;

/// The CRL distribution point of the Intel SGX Root CA (used when the server has no
/// `rootcacrl` endpoint, as Intel's PCS does not).
const INTEL_ROOT_CA_CRL: &str = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";

fn err(what: impl std::fmt::Display) -> VerifyError {
    VerifyError::MissingInput(format!("collateral from PCCS: {what}"))
}

struct Response {
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Response {
    fn header(&self, names: &[&str]) -> Result<String, VerifyError> {
        let value = names
            .iter()
            .find_map(|n| {
                self.headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(n))
                    .map(|(_, v)| v)
            })
            .ok_or_else(|| err(format!("missing header {}", names.join(" / "))))?;
        percent_decode(value)
    }
}

fn get(agent: &ureq::Agent, url: &str) -> Result<Response, VerifyError> {
    let mut resp = agent
        .get(url)
        .call()
        .map_err(|e| err(format!("GET {url}: {e}")))?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(err(format!("GET {url}: HTTP {status}")));
    }
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp
        .body_mut()
        .with_config()
        .limit(16 << 20)
        .read_to_vec()
        .map_err(|e| err(format!("GET {url}: {e}")))?;
    Ok(Response { body, headers })
}

/// `%XX` decoding of a header value (issuer chains are URL-encoded PEM).
fn percent_decode(s: &str) -> Result<String, VerifyError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or_else(|| err("bad percent-encoding"))?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).map_err(err)?, 16).map_err(err)?;
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(err)
}

/// Fetches the collateral needed to verify `quote` from the PCCS/PCS at `base_url`
/// (e.g. `https://pccs.example:8081` or `https://api.trustedservices.intel.com`).
///
/// # Errors
/// [`VerifyError::Malformed`] for an unparsable quote, [`VerifyError::MissingInput`] when the
/// server cannot be reached or answers something unexpected.
pub fn fetch_tdx_collateral(
    base_url: &str,
    quote: &[u8],
) -> Result<QuoteCollateralV3, VerifyError> {
    let parsed =
        Quote::parse(quote).map_err(|e| VerifyError::Malformed(format!("TDX quote: {e:#}")))?;
    let chain = dcap_qvl::intel::extract_cert_chain(&parsed)
        .map_err(|e| VerifyError::Malformed(format!("PCK chain in quote: {e:#}")))?;
    let leaf = chain
        .first()
        .ok_or_else(|| VerifyError::Malformed("empty PCK chain in quote".into()))?;
    let ext = dcap_qvl::intel::parse_pck_extension(leaf)
        .map_err(|e| VerifyError::Malformed(format!("PCK extension: {e:#}")))?;
    let ca = dcap_qvl::intel::pck_ca(leaf)
        .map_err(|e| VerifyError::Malformed(format!("PCK CA: {e:#}")))?;
    let fmspc = hex::encode_upper(ext.fmspc);
    let tee = if parsed.header.is_sgx() { "sgx" } else { "tdx" };
    let base = base_url
        .trim_end_matches('/')
        .trim_end_matches("/sgx/certification/v4")
        .trim_end_matches("/tdx/certification/v4");
    let url = |t: &str, path: &str| format!("{base}/{t}/certification/v4/{path}");

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();

    let crl = get(
        &agent,
        &url("sgx", &format!("pckcrl?ca={}&encoding=der", ca.as_id_str())),
    )?;
    let pck_crl_issuer_chain = crl.header(&["SGX-PCK-CRL-Issuer-Chain"])?;

    let tcb = get(
        &agent,
        &url(tee, &format!("tcb?fmspc={fmspc}&update=standard")),
    )?;
    let tcb_info_issuer_chain =
        tcb.header(&["SGX-TCB-Info-Issuer-Chain", "TCB-Info-Issuer-Chain"])?;
    let tcb_doc: serde_json::Value =
        serde_json::from_slice(&tcb.body).map_err(|e| err(format!("TCB info: {e}")))?;

    let qe = get(&agent, &url(tee, "qe/identity?update=standard"))?;
    let qe_identity_issuer_chain = qe.header(&["SGX-Enclave-Identity-Issuer-Chain"])?;
    let qe_doc: serde_json::Value =
        serde_json::from_slice(&qe.body).map_err(|e| err(format!("QE identity: {e}")))?;

    let root_ca_crl = match get(&agent, &url("sgx", "rootcacrl")) {
        // A PCCS serves the root CA CRL hex-encoded.
        Ok(r) => hex::decode(String::from_utf8_lossy(&r.body).trim())
            .map_err(|_| err("root CA CRL is not hex"))?,
        Err(_) => get(&agent, INTEL_ROOT_CA_CRL)?.body,
    };

    let signature = |doc: &serde_json::Value, what: &str| -> Result<Vec<u8>, VerifyError> {
        doc["signature"]
            .as_str()
            .and_then(|s| hex::decode(s).ok())
            .ok_or_else(|| err(format!("{what} signature missing or not hex")))
    };
    let member = |doc: &serde_json::Value, key: &str| -> Result<String, VerifyError> {
        doc.get(key)
            .map(|v| v.to_string())
            .ok_or_else(|| err(format!("`{key}` missing")))
    };
    Ok(QuoteCollateralV3 {
        pck_crl_issuer_chain,
        root_ca_crl,
        pck_crl: crl.body,
        tcb_info_issuer_chain,
        tcb_info: member(&tcb_doc, "tcbInfo")?,
        tcb_info_signature: signature(&tcb_doc, "TCB info")?,
        qe_identity_issuer_chain,
        qe_identity: member(&qe_doc, "enclaveIdentity")?,
        qe_identity_signature: signature(&qe_doc, "QE identity")?,
        pck_certificate_chain: None,
    })
}
