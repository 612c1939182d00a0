"""A host (or whoever is on the path) answering nonsense: every failure is one of the SDK's
typed errors, never a KeyError, TypeError, struct.error or a crash; 402s that ask for no
payment are not challenges; hand-built reference sets meet the spec's rules."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from wasm_hypervisor import (
    Client,
    ClientKey,
    HostError,
    HypervisorSdkError,
    PaymentRequired,
    Policy,
    VerifyError,
)
from wasm_hypervisor.reference import ReferenceSet

SERVER = ClientKey.generate().public_hex
SID = "01936f3a-8c2e-7b4d-9f10-2a3b4c5d6e7f"


def client_answering(answer: Callable[[httpx.Request], httpx.Response]) -> Client:
    policy = Policy(
        reference_values=[
            {
                "version": 1,
                "tee": "simulated",
                "tdx": {
                    "mrtd": "00" * 48,
                    "rtmr0": "00" * 48,
                    "rtmr1": "00" * 48,
                    "rtmr2": "00" * 48,
                    "app": {"host_event": True},
                },
                "host_measurements": ["00" * 32],
            }
        ],
        allow_simulated=True,
    )
    return Client("http://hostile.invalid", policy, http=httpx.Client(transport=httpx.MockTransport(answer)))


def json_answer(body: Any, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, content=json.dumps(body).encode())


#: an event log whose event name, once parsed, is a lone surrogate (not encodable as UTF-8)
LONE_SURROGATE_LOG = json.dumps([{"imr": 3, "event_type": 134217729, "event": "\ud800", "event_payload": ""}])
#: a simulated attestation whose fields are well formed (the cases change one of them)
ATTESTATION = {
    "evidence_format": "simulated-not-for-production",
    "tee": "simulated",
    "simulated": True,
    "evidence": "7b7d",
    "report_data": "00" * 64,
    "signing_key": "04" + "11" * 64,
    "host_measurement": "00" * 32,
    "key_created_at": 1,
}
SESSION = {"session_pubkey": SERVER, "session_id": SID, "expires_in_seconds": 60}
BAD_ANSWERS = [
    [],
    "text",
    {"session_pubkey": "zz", "session_id": SID, "expires_in_seconds": 60},
    {"session_pubkey": SERVER, "session_id": "not-a-uuid", "expires_in_seconds": 60},
    dict(SESSION, expires_in_seconds=1e400),
    dict(SESSION, quote=[]),
    dict(SESSION, quote={"attestation": [], "session_created_at": -1}),
    dict(SESSION, quote={"attestation": dict(ATTESTATION, key_created_at=2**70)}),
    dict(SESSION, quote={"attestation": dict(ATTESTATION, event_log=LONE_SURROGATE_LOG)}),
]


@pytest.mark.parametrize("body", BAD_ANSWERS)
def test_sessions_refuse_nonsense_typed(body: Any) -> None:
    with client_answering(json_answer(body)) as c:
        with pytest.raises(HypervisorSdkError):
            c.verifiable_session()
    # A plain session reads fewer fields: it may open, or refuse typed, nothing else.
    with client_answering(json_answer(body)) as c:
        try:
            c.session()
        except HypervisorSdkError:
            pass


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"session_id": SID},
        {"session_id": SID, "encrypted_result": "00", "result_nonce": 1, "result_commitment": "00"},
        {"error": "x", "session_id": "nope"},
    ],
)
def test_executions_refuse_nonsense_typed(body: Any) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/encrypt/create_keypair":
            return httpx.Response(200, json=SESSION)
        return httpx.Response(422 if "error" in body else 200, content=json.dumps(body).encode())

    with client_answering(answer) as c:
        session = c.session()
        with pytest.raises(HypervisorSdkError):
            c.execute_wasm(session, b"\0asm")


@pytest.mark.parametrize("body", [[], {"agents": None}, {"results": 3}, "x", {"nested": [[[[[]]]]] * 3}])
def test_listings_refuse_nonsense_typed(body: Any) -> None:
    """Each call either refuses typed or gives the shape it promises."""
    with client_answering(json_answer(body)) as c:
        for call in (c.agents, lambda: c.search("x"), lambda: c.agent("x"), c.host):
            try:
                result = call()
            except HypervisorSdkError:
                continue
            assert isinstance(result, (list, dict)) and result is not None


def test_deeply_nested_json_is_refused_even_with_a_raised_recursion_limit() -> None:
    """Libraries raise the recursion limit (eth-account's stack: 100 000); Python's C JSON
    decoder would then overflow the C stack on deep nesting and kill the process. The SDK
    measures the nesting first."""
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        with client_answering(lambda request: httpx.Response(200, content=deep)) as c:
            with pytest.raises(HypervisorSdkError):
                c.agents()
    finally:
        sys.setrecursionlimit(limit)


def test_a_402_without_a_challenge_is_not_a_payment_request() -> None:
    """`settlement_failed`: the run happened and its payment could not be settled (§9): not a
    challenge to pay again."""
    body = {"error": {"code": "settlement_failed", "message": "the facilitator refused"}}
    with client_answering(json_answer(body, 402)) as c:
        with pytest.raises(HostError) as e:
            c.invoke("paid", {})
    assert not isinstance(e.value, PaymentRequired)
    assert (e.value.status, e.value.code) == (402, "settlement_failed")


def test_a_hand_built_reference_set_meets_the_rules() -> None:
    """A set that pins only the host's claim (no registers, no identity) is refused, however
    it was made."""
    loose = ReferenceSet(name="x", tee="simulated", tdx=None, sev_snp=None, host_measurements=("ab" * 32,))
    with pytest.raises(VerifyError) as e:
        Policy(reference_values=[loose], allow_simulated=True).reference_sets()
    assert e.value.kind == "bad_reference"
