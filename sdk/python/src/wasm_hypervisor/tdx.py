"""TDX quote verification through Phala's `dcap-qvl` (PyPI, Python bindings of the same Rust
crate the host and the Rust client use): Intel's root, the DCAP collateral, the verification
time. What it returns is what the platform measured: MRTD, RTMR0-3, REPORTDATA, TCB status."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import dcap_qvl

from .errors import VerifyError


@dataclass(frozen=True)
class TdxReport:
    status: str
    advisory_ids: tuple[str, ...]
    mrtd: bytes
    rtmrs: tuple[bytes, bytes, bytes, bytes]
    report_data: bytes
    td_attributes: bytes


def collateral_from_json(text: str | bytes | dict[str, Any]) -> Any:
    """`dcap-qvl`'s `QuoteCollateralV3` from its JSON (a file saved from a PCCS, as the Rust
    client's `--collateral`)."""
    if isinstance(text, dict):
        text = json.dumps(text)
    if isinstance(text, bytes):
        text = text.decode()
    try:
        return dcap_qvl.QuoteCollateralV3.from_json(text)
    except Exception as e:  # the binding raises ValueError or its own types
        raise VerifyError("evidence", f"the TDX collateral does not parse: {e}") from None


async def fetch_collateral(pccs_url: str, quote: bytes) -> Any:
    """Collateral from a PCCS, or Intel's PCS (`dcap_qvl.INTEL_PCS_URL`), over the v4 API."""
    try:
        return await dcap_qvl.get_collateral(pccs_url, quote)
    except Exception as e:
        raise VerifyError("evidence", f"fetching the TDX collateral from {pccs_url} failed: {e}") from None


def verify_quote(quote: bytes, collateral: Any, now: int) -> TdxReport:
    """Verifies the quote's signature chain to Intel's root and its collateral at `now`."""
    try:
        verified = dcap_qvl.verify(quote, collateral, now)
    except Exception as e:
        raise VerifyError("evidence", f"the TDX quote does not verify: {e}") from None
    doc = json.loads(verified.to_json())
    report = doc.get("report", {})
    body = report.get("TD10") or report.get("TD15") or report.get("TD15Ex")
    while isinstance(body, dict) and "base" in body:  # TD 1.5 (and its Ex) wrap the 1.0 body
        body = body["base"]
    if not isinstance(body, dict):
        raise VerifyError("evidence", "the quote is not a TD quote")
    h = bytes.fromhex
    try:
        return TdxReport(
            status=str(doc["status"]),
            advisory_ids=tuple(doc.get("advisory_ids", ())),
            mrtd=h(body["mr_td"]),
            rtmrs=(h(body["rt_mr0"]), h(body["rt_mr1"]), h(body["rt_mr2"]), h(body["rt_mr3"])),
            report_data=h(body["report_data"]),
            td_attributes=h(body["td_attributes"]),
        )
    except (KeyError, ValueError) as e:
        raise VerifyError("evidence", f"dcap-qvl's report lacks {e}") from None
