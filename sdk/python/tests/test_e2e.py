"""The SDK against a real host on loopback (started by the `host` fixture, simulated
attestation): sessions, encrypted executions with commitments and receipts, typed errors,
binary uploads, agents."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from conftest import Host

from wasm_hypervisor import (
    AsyncClient,
    Client,
    ClientKey,
    Deployment,
    GuestStopped,
    HostError,
    Policy,
    ProtocolError,
    VerifyError,
)


def policy(host: Host, **set_changes: Any) -> Policy:
    return Policy(reference_values=[host.reference_set(**set_changes)], allow_simulated=True)


@pytest.fixture
def client(host: Host) -> Any:
    with Client(host.url, policy(host)) as c:
        yield c


def test_plain_session_runs_a_component_with_args_and_stdin(client: Client, wasm: Any) -> None:
    session = client.session()
    result = client.execute_wasm(session, wasm("hello"), args=["sealed", "world"], stdin=b"line\n")
    assert result.ok
    assert result.stdout == b"Hello sealed world\nstdin: line\n"
    assert result.receipt is None
    assert result.execution_id


def test_verifiable_session_verifies_the_host_and_each_receipt(client: Client, host: Host, wasm: Any) -> None:
    session = client.verifiable_session()
    assert session.verified is not None
    assert session.verified.simulated
    assert session.verified.reference is not None
    assert session.verified.reference.name == "the host under test, simulated"
    result = client.execute_wasm(session, wasm("hello"), args=["attested"])
    assert result.text == "Hello attested\n"
    assert result.receipt is not None
    assert result.receipt["route"] == "/verifiable/execute/wasm"
    assert result.receipt["result_commitment"] == result.commitment.hex()
    assert client.attestation().signing_key == session.verified.signing_key


def test_simulated_evidence_is_refused_unless_allowed(host: Host) -> None:
    with Client(host.url, Policy(reference_values=[host.reference_set()])) as c:
        with pytest.raises(VerifyError) as e:
            c.verifiable_session()
    assert e.value.kind == "simulated"
    # Every answer of a simulated host says so.
    assert httpx.get(host.url + "/ping").headers["x-attestation"] == "simulated-not-for-production"


def test_another_build_or_no_pin_is_refused(host: Host) -> None:
    with Client(host.url, policy(host, host_measurements=["00" * 32])) as c:
        with pytest.raises(VerifyError) as e:
            c.verifiable_session()
    assert e.value.kind == "reference" and "host_measurement" in e.value.message
    with Client(host.url, Policy(allow_simulated=True)) as c:
        with pytest.raises(VerifyError) as e:
            c.verifiable_session()
    assert e.value.kind == "no_expected_measurement"
    with Client(host.url, Policy(allow_simulated=True, accept_any_measurement=True)) as c:
        with pytest.warns(UserWarning, match="whatever code it runs"):
            assert c.verifiable_session().verified is not None


def test_a_stopped_guest_gives_its_checked_partial_result(client: Client, wasm: Any) -> None:
    session = client.verifiable_session()
    with pytest.raises(GuestStopped) as e:
        client.execute_wasm(session, wasm("endless-loop"), limits={"time_ms": 300})
    assert e.value.status == 422 and e.value.code == "time_limit_exceeded"
    assert e.value.result.status == "time_limit_exceeded"
    assert e.value.result.receipt is not None and e.value.result.receipt["status"] == "time_limit_exceeded"


def test_python_scripts(client: Client) -> None:
    script = (
        "import sys\nprint('args', ARGS)\ndef main(args):\n    return {'n': len(args), 'first': args[0]}\n"
    )
    for session in (client.session(), client.verifiable_session()):
        result = client.execute_python(session, script, args=["a", "b"])
        assert result.ok
        assert result.returned == {"n": 2, "first": "a"}
        assert result.text == "args ['a', 'b']\n"
        assert (result.receipt is not None) == session.verifiable
    failing = client.execute_python(client.session(), "raise ValueError('no')")
    assert failing.exit_code == 1 and failing.exception is not None
    assert failing.exception["type"] == "ValueError"


def test_binary_uploads_give_the_same_result(host: Host, wasm: Any) -> None:
    """Above the threshold, programs and components travel as multipart parts (§6c)."""
    kinds: list[str] = []
    seen = httpx.Client(event_hooks={"request": [lambda r: kinds.append(r.headers.get("content-type", ""))]})
    with Client(host.url, policy(host), upload_threshold=1024, http=seen) as c:
        session = c.verifiable_session()
        assert c.execute_wasm(session, wasm("hello"), args=["multipart"]).text == "Hello multipart\n"
        owner = ClientKey.generate()
        for sealed in (False, True):
            name = f"upload-{uuid.uuid4().hex[:8]}"
            agent = c.deploy(
                owner,
                Deployment(name, wasm("text-stats"), public=True),
                session=c.session(owner) if sealed else None,
            )
            assert agent["latest"]["size"] == len(wasm("text-stats"))
            assert c.invoke(name, {"text": "up loaded"}).result["words"] == 2
            c.delete(owner, name)
    assert sum(k.startswith("multipart/form-data") for k in kinds) == 3, kinds


class Tamper(httpx.BaseTransport):
    """Flips one hex digit of the encrypted result on its way back."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        body = response.read()
        if b"encrypted_result" in body:
            doc = json.loads(body)
            er = doc["encrypted_result"]
            doc["encrypted_result"] = er[:40] + ("0" if er[40] != "0" else "1") + er[41:]
            body = json.dumps(doc).encode()
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        return httpx.Response(response.status_code, headers=headers, content=body)


def test_a_tampered_result_is_refused(host: Host, wasm: Any) -> None:
    with Client(host.url, http=httpx.Client(transport=Tamper())) as c:
        with pytest.raises(ProtocolError, match="does not open"):
            c.execute_wasm(c.session(), wasm("hello"))


def test_host_errors_are_typed(client: Client, host: Host, wasm: Any) -> None:
    session = client.session()
    with pytest.raises(HostError) as e:
        client.execute_wasm(session, b"\0asm not a component")
    assert (e.value.status, e.value.code) == (422, "invalid_component")
    session.id = uuid.uuid4()
    with pytest.raises(HostError) as e:
        client.execute_wasm(session, wasm("hello"))
    assert (e.value.status, e.value.code) == (404, "session_not_found")
    with pytest.raises(HostError) as e:
        client.agent("no-such-agent")
    assert (e.value.status, e.value.code) == (404, "agent_not_found")
    with pytest.raises(HostError) as e:
        client.execute_wasm(client.session(), wasm("hello"), limits={"time_ms": 10**9})
    assert e.value.code == "limit_exceeds_maximum"


def test_agents_deploy_invoke_find_log_delete(client: Client, wasm: Any) -> None:
    owner = ClientKey.generate()
    name = f"stats-{uuid.uuid4().hex[:8]}"
    component = wasm("text-stats")
    agent = client.deploy(
        owner, Deployment(name, component, description="counts words of sdk text", tags=["text"], public=True)
    )
    assert agent["owner_key"] == owner.public_hex and agent["latest"]["kind"] == "handler"
    clear = client.invoke(name, {"text": "One two. Three"})
    assert clear.ok and clear.result["words"] == 3 and clear.settlement is None
    assert any(a["name"] == name for a in client.agents())
    assert client.search("counts words sdk")[0]["name"] == name
    # Sealed, on a verifiable session: the receipt binds the agent's code hash and the event.
    session = client.verifiable_session()
    sealed = client.invoke_sealed(session, name, {"text": "a b c d"})
    assert json.loads(sealed.stdout)["words"] == 4
    assert sealed.receipt is not None and sealed.receipt["route"] == f"/agents/{name}/invoke"
    # The wrong code hash (another build than expected) fails the commitment check.
    with pytest.raises(ProtocolError, match="result_commitment"):
        client.invoke_sealed(client.session(), name, {"text": "x"}, code_hash="00" * 32)
    logs = client.logs(owner, name)
    assert any("text-stats: 3 words" in entry["stderr"] for entry in logs)
    stranger = ClientKey.generate()
    with pytest.raises(HostError) as e:
        client.delete(stranger, name)
    assert e.value.code == "not_owner"
    with pytest.raises(HostError) as e:
        client.deploy(stranger, Deployment(name, component))
    assert e.value.code == "not_owner"
    client.delete(owner, name)
    with pytest.raises(HostError) as e:
        client.agent(name)
    assert e.value.code == "agent_not_found"


def test_sealed_deployment_and_cli_agents(client: Client, wasm: Any) -> None:
    owner = ClientKey.generate()
    name = f"hello-{uuid.uuid4().hex[:8]}"
    session = client.session(owner)
    agent = client.deploy(owner, Deployment(name, wasm("hello"), limits={"time_ms": 5000}), session=session)
    assert agent["public"] is False
    with pytest.raises(HostError) as e:
        client.invoke(name, args=["x"])
    assert e.value.code == "agent_not_public"
    result = client.invoke_sealed(client.session(), name, args=["private"], stdin=b"in\n")
    assert result.stdout == b"Hello private\nstdin: in\n"
    client.delete(owner, name)


async def test_the_async_client(host: Host, wasm: Any) -> None:
    async with AsyncClient(host.url, policy(host)) as c:
        session = await c.verifiable_session()
        result = await c.execute_wasm(session, wasm("hello"), args=["async"])
        assert result.text == "Hello async\n" and result.receipt is not None
        assert (await c.host())["provider"] == "simulated"
