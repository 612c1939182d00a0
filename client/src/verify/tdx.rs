//! Intel TDX quotes, verified offline with dcap-qvl against Intel's root and the supplied
//! collateral, then held to the policy (TCB status, debug, measurements). dcap-qvl checks the
//! signatures and the TCB level; it does not look at REPORTDATA or measurements, and it reports
//! out-of-date TCB as valid, so those checks are ours.

use dcap_qvl::QuoteCollateralV3;

use super::{Policy, VerifyError};
use hypervisor_protocol::attest::ct_eq;

/// What a verified TDX quote says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxClaims {
    /// REPORTDATA.
    pub report_data: [u8; 64],
    /// MRTD: measurement of the initial TD image.
    pub mrtd: [u8; 48],
    /// RTMR0..3.
    pub rtmrs: [[u8; 48]; 4],
    /// TD attributes (bit 0: debug).
    pub td_attributes: [u8; 8],
    /// dcap-qvl's TCB status (`UpToDate`, `SWHardeningNeeded`, `OutOfDate`, ...).
    pub tcb_status: String,
    /// Intel security advisories that apply.
    pub advisory_ids: Vec<String>,
}

/// Verifies a TDX quote (v4 or v5) with collateral (`QuoteCollateralV3` JSON) at the policy's
/// time, then applies the policy.
///
/// # Errors
/// [`VerifyError`] naming what failed.
pub fn verify_tdx_quote(
    quote: &[u8],
    collateral_json: &str,
    policy: &Policy,
) -> Result<TdxClaims, VerifyError> {
    let collateral: QuoteCollateralV3 = serde_json::from_str(collateral_json)
        .map_err(|e| VerifyError::Malformed(format!("TDX collateral: {e}")))?;
    verify_tdx_quote_with(quote, &collateral, policy)
}

/// [`verify_tdx_quote`] with parsed collateral (e.g. from [`super::fetch_tdx_collateral`]).
///
/// # Errors
/// [`VerifyError`] naming what failed.
pub fn verify_tdx_quote_with(
    quote: &[u8],
    collateral: &QuoteCollateralV3,
    policy: &Policy,
) -> Result<TdxClaims, VerifyError> {
    let verified = dcap_qvl::verify::verify(quote, collateral, policy.now())
        .map_err(|e| VerifyError::Evidence(format!("{e:#}")))?;
    let td = verified
        .report
        .as_td10()
        .ok_or_else(|| VerifyError::Evidence("the quote is not a TDX quote".into()))?;
    let claims = TdxClaims {
        report_data: td.report_data,
        mrtd: td.mr_td,
        rtmrs: [td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3],
        td_attributes: td.td_attributes,
        tcb_status: verified.status.clone(),
        advisory_ids: verified.advisory_ids.clone(),
    };
    if !policy
        .accepted_tcb_statuses
        .iter()
        .any(|s| s == &claims.tcb_status)
    {
        return Err(VerifyError::TcbStatus(claims.tcb_status));
    }
    if claims.td_attributes[0] & 0x01 != 0 && !policy.allow_debug {
        return Err(VerifyError::Debug);
    }
    if let Some(want) = &policy.expected_mrtd
        && !ct_eq(want, &claims.mrtd)
    {
        return Err(VerifyError::Measurement("MRTD".into()));
    }
    for (i, want) in policy.expected_rtmrs.iter().enumerate() {
        if let Some(want) = want
            && !ct_eq(want, &claims.rtmrs[i])
        {
            return Err(VerifyError::Measurement(format!("RTMR{i}")));
        }
    }
    Ok(claims)
}
