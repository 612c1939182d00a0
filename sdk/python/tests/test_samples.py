"""Real evidence (../shared/attestation-samples): a dstack TDX quote from near/mpc with its DCAP
collateral, event log and app-compose file, verified through the SDK's TDX path (dcap-qvl),
event-log replay and reference-set comparison; SEV-SNP evidence is refused as unsupported."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from conftest import SAMPLES

from wasm_hypervisor import Policy, VerifyError, eventlog, reference, tdx
from wasm_hypervisor.statements import report_data
from wasm_hypervisor.verify import verify_attestation

NEAR = SAMPLES / "dstack" / "near-mpc"
#: 2026-08-13T12:00:00Z, inside the near-mpc collateral's validity window
NEAR_TIME = 1_786_622_400


@pytest.fixture(scope="module")
def near() -> dict[str, Any]:
    if not NEAR.is_dir():
        pytest.fail(f"{NEAR} is missing (the shared attestation samples)")
    return {
        "quote": bytes(json.loads((NEAR / "quote.json").read_text())),
        "collateral": (NEAR / "collateral.json").read_text(),
        "tcb": json.loads((NEAR / "tcb_info.json").read_text()),
        "compose": (NEAR / "app_compose.json").read_bytes(),
    }


def near_set(n: dict[str, Any], compose: bytes, host: str) -> dict[str, Any]:
    t = n["tcb"]
    return {
        "version": 1,
        "name": "near-mpc localnet",
        "tee": "tdx",
        "tdx": {
            "mrtd": t["mrtd"],
            "rtmr0": t["rtmr0"],
            "rtmr1": t["rtmr1"],
            "rtmr2": t["rtmr2"],
            "app": {"compose_hash": hashlib.sha256(compose).hexdigest()},
        },
        "host_measurements": [host],
    }


def test_the_near_quote_verifies_replays_and_matches_its_set(near: dict[str, Any]) -> None:
    report = tdx.verify_quote(near["quote"], tdx.collateral_from_json(near["collateral"]), NEAR_TIME)
    assert report.status == "UpToDate"
    assert report.mrtd.hex() == near["tcb"]["mrtd"]
    replay = eventlog.replay(eventlog.parse(json.dumps(near["tcb"]["event_log"])))
    assert replay.rtmrs == list(report.rtmrs), "the log replays to all four RTMRs of the quote"
    assert replay.rtmrs[3].hex() == (
        "86f1808cffc050f3c0c09d29da2bfcec7eba3e8fa52016a7341f28884230f9ca8b56400413d57bce00b578e36790b555"
    )
    assert replay.identity["compose-hash"].hex() == hashlib.sha256(near["compose"]).hexdigest()
    host = "ab" * 32
    measured = reference.Measured(
        tee="tdx",
        mrtd=report.mrtd,
        rtmrs=report.rtmrs[:3],
        identity=replay.identity,
        tdx_status=report.status,
        host_measurement=bytes.fromhex(host),
    )
    good = reference.decode(near_set(near, near["compose"], host))
    assert reference.match([good], measured, ("UpToDate",)) is good
    # A re-serialised app-compose.json is another file: refused at compose-hash.
    reserialised = json.dumps(json.loads(near["compose"])).encode()
    assert reserialised != near["compose"]
    other = reference.decode(near_set(near, reserialised, host))
    with pytest.raises(VerifyError, match="compose-hash") as e:
        reference.match([other], measured, ("UpToDate",))
    assert e.value.kind == "reference"


def attestation_of(near: dict[str, Any], **changes: Any) -> dict[str, Any]:
    att = {
        "tee": "tdx",
        "simulated": False,
        "evidence_format": "tdx-dcap-quote",
        "evidence": near["quote"].hex(),
        "report_data": near["quote"][568:632].hex(),
        "signing_key": "04" + "11" * 64,
        "host_measurement": "ab" * 32,
        "key_created_at": NEAR_TIME,
        "event_log": json.dumps(near["tcb"]["event_log"]),
    }
    att.update(changes)
    return att


def policy(near: dict[str, Any], **changes: Any) -> Policy:
    p = Policy(
        reference_values=[near_set(near, near["compose"], "ab" * 32)],
        collateral=near["collateral"],
        now=NEAR_TIME,
    )
    for k, v in changes.items():
        setattr(p, k, v)
    return p


def test_the_whole_chain_stops_at_the_binding(near: dict[str, Any]) -> None:
    """Evidence, TCB, debug bit and log replay pass; the quote's REPORTDATA is near's, not a
    hypervisor's, so the binding refuses it."""
    with pytest.raises(VerifyError) as e:
        verify_attestation(attestation_of(near), policy(near))
    assert e.value.kind == "binding"
    assert near["quote"][568:632] != report_data(
        bytes.fromhex("04" + "11" * 64), bytes.fromhex("ab" * 32), NEAR_TIME
    )


def test_a_flipped_byte_expired_collateral_and_a_foreign_log_are_refused(near: dict[str, Any]) -> None:
    flipped = bytearray(near["quote"])
    flipped[200] ^= 1
    with pytest.raises(VerifyError) as e:
        verify_attestation(attestation_of(near, evidence=bytes(flipped).hex()), policy(near))
    assert e.value.kind == "evidence"
    with pytest.raises(VerifyError) as e:
        verify_attestation(attestation_of(near), policy(near, now=1_900_000_000))
    assert e.value.kind == "evidence"
    log = near["tcb"]["event_log"]
    with pytest.raises(VerifyError) as e:
        verify_attestation(attestation_of(near, event_log=json.dumps(log[:-1])), policy(near))
    assert e.value.kind == "event_log" and "RTMR3" in e.value.message
    with pytest.raises(VerifyError) as e:
        verify_attestation(attestation_of(near), policy(near, tdx_statuses=("OutOfDate",)))
    assert e.value.kind == "evidence"


def test_simulated_claims_on_a_real_quote_are_refused(near: dict[str, Any]) -> None:
    with pytest.raises(VerifyError) as e:
        verify_attestation(
            attestation_of(near, tee="simulated", simulated=True), policy(near, allow_simulated=True)
        )
    assert e.value.kind == "simulated"


def test_sev_snp_evidence_is_refused_as_unsupported() -> None:
    report = (SAMPLES / "sev-snp" / "report_milan.hex").read_text().strip()
    att = {
        "tee": "sev-snp",
        "simulated": False,
        "evidence_format": "sev-snp-report",
        "evidence": report,
        "report_data": "00" * 64,
        "signing_key": "04" + "11" * 64,
        "host_measurement": "ab" * 32,
        "key_created_at": 1,
    }
    sets = [
        {
            "version": 1,
            "tee": "sev-snp",
            "sev_snp": {"measurement": "00" * 48},
            "host_measurements": ["ab" * 32],
        }
    ]
    with pytest.raises(VerifyError) as e:
        verify_attestation(att, Policy(reference_values=sets))
    assert e.value.kind == "unsupported" and "SEV-SNP" in e.value.message
