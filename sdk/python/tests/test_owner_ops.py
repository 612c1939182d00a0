"""An owner's operations through the SDK against a real host: JavaScript agents (clear and
sealed source), configuration and secrets, state export/import/wipe, grants, wallets, execution
records, and a payment challenge for another resource refused before anything is paid."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest
from conftest import Host
from eth_account import Account

from wasm_hypervisor import (
    Client,
    ClientKey,
    Deployment,
    HostError,
    JsSource,
    PaymentFailed,
    Policy,
    VerifyError,
)
from wasm_hypervisor.owner import value_hash

COUNTER_JS = """
import { label } from "./lib/label.ts";
export async function handler(event, context) {
  const bucket = agentState.bucket("default");
  const n = await bucket.increment("visits", 1);
  return { visits: n, label: label(agentConfig.get("REGION", "none")), agent: context.agentName };
}
"""
LABEL_TS = "export const label = (region: string): string => `region:${region}`;\n"


def js_source() -> JsSource:
    return JsSource("main.js", {"main.js": COUNTER_JS, "lib/label.ts": LABEL_TS})


@pytest.fixture
def client(host: Host) -> Any:
    with Client(host.url, Policy(reference_values=[host.reference_set()], allow_simulated=True)) as c:
        yield c


def test_js_agents_config_and_state(client: Client) -> None:
    owner = ClientKey.generate()
    name = f"js-{uuid.uuid4().hex[:8]}"
    agent = client.deploy(owner, Deployment(name, js=js_source(), public=True))
    assert agent["latest"]["kind"] == "handler"
    first = client.invoke(name, {})
    assert first.ok and first.result == {"visits": 1, "label": "region:none", "agent": name}, first.body

    # Configuration: values sealed to the owner's session, signed; the host returns hashes only.
    entries = client.set_config(owner, name, {"REGION": "eu-west", "API_KEY": "sk-1"})
    by_name = {e["name"]: e for e in entries}
    assert by_name["REGION"]["sha256"] == value_hash(name, "REGION", "eu-west")
    assert "eu-west" not in json.dumps(entries)
    assert client.invoke(name, {}).result["label"] == "region:eu-west"
    assert {e["name"] for e in client.set_config(owner, name, remove=["API_KEY"])} == {"REGION"}
    assert [e["name"] for e in client.config(owner, name)] == ["REGION"]

    # State: exported sealed, opened here; imported elsewhere; wiped.
    state = client.export_state(owner, name)
    visits = base64.b64decode(state["buckets"]["default"]["visits"])
    assert int.from_bytes(visits, "little") == 2
    other = f"js-{uuid.uuid4().hex[:8]}"
    client.deploy(owner, Deployment(other, js=js_source(), public=True))
    imported = client.import_state(owner, other, state, replace=True)
    assert imported["keys"] == 1
    assert client.invoke(other, {}).result["visits"] == 3
    assert client.wipe_state(owner, other) == 1
    assert client.invoke(other, {}).result["visits"] == 1

    # A stranger can do none of it.
    stranger = ClientKey.generate()
    for call in (
        lambda: client.set_config(stranger, name, {"REGION": "x"}),
        lambda: client.export_state(stranger, name),
        lambda: client.wipe_state(stranger, name),
    ):
        with pytest.raises(HostError) as e:
            call()
        assert e.value.code in ("not_owner", "owner_signature_invalid")
    client.delete(owner, name)
    client.delete(owner, other)


def test_sealed_js_source_and_records(client: Client) -> None:
    owner = ClientKey.generate()
    name = f"sealed-js-{uuid.uuid4().hex[:6]}"
    agent = client.deploy(owner, Deployment(name, js=js_source()), session=client.session(owner))
    assert agent["public"] is False
    caller = ClientKey.generate()
    result = client.invoke_sealed(client.session(caller), name, {})
    assert json.loads(result.stdout)["visits"] == 1
    record = client.execution(caller, result.execution_id or "")
    assert record["agent"] == name and record["commitment"] == result.commitment.hex()
    assert any(r["id"] == result.execution_id for r in client.executions(owner))
    with pytest.raises(HostError) as e:
        client.execution(ClientKey.generate(), result.execution_id or "")
    assert e.value.code == "execution_not_found"
    client.delete(owner, name)


def test_grants_and_wallet(client: Client, wasm: Any) -> None:
    owner = ClientKey.generate()
    name = f"buyer-{uuid.uuid4().hex[:6]}"
    client.deploy(owner, Deployment(name, wasm("text-stats"), public=True))
    grants = {"agents": [{"name": "word-seller", "owner_key": owner.public_hex}], "search": True}
    set_ = client.set_grants(owner, name, grants)
    assert set_["grants"]["search"] is True
    assert client.grants(owner, name)["grants"]["agents"][0]["name"] == "word-seller"
    account = Account.create()
    policy = {
        "networks": ["eip155:84532"],
        "assets": ["0x036CbD53842c5426634e7929541eC2318f3dCF7e"],
        "max_per_call": "10000",
        "max_per_day": "50000",
        "max_total": "1000000",
    }
    wallet = client.set_wallet(owner, name, bytes(account.key), policy)
    assert wallet["address"].lower() == account.address.lower()
    assert client.wallet(owner, name)["spent_total"] in ("0", 0)
    assert "key" not in json.dumps(client.wallet(owner, name)).lower().replace("keys", "")
    assert client.calls(owner, name) == []
    with pytest.raises(HostError) as e:
        client.set_wallet(owner, name, bytes(account.key), policy, address=Account.create().address)
    assert e.value.code == "invalid_request"
    client.delete(owner, name)


class Misdirect(httpx.BaseTransport):
    """A 402 for another agent than the one called (as a host or proxy might substitute)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        doc = {
            "x402Version": 2,
            "error": "payment_required",
            "resource": {"url": "http://127.0.0.1/agents/expensive/invoke"},
            "accepts": [],
        }
        header = base64.b64encode(json.dumps(doc).encode()).decode()
        return httpx.Response(
            402,
            headers={"payment-required": header},
            json={
                "x402Version": 2,
                "error": "payment_required",
                "code": "payment_required",
                "message": "pay",
            },
        )


def test_a_challenge_for_another_resource_is_not_paid() -> None:
    paid: list[Any] = []

    class Payer:
        def __getattr__(self, name: str) -> Any:
            paid.append(name)
            raise AssertionError("the x402 client was asked to pay")

    with Client("http://127.0.0.1:9", http=httpx.Client(transport=Misdirect()), payer=Payer()) as c:
        with pytest.raises(PaymentFailed, match="/agents/expensive/invoke"):
            c.invoke("cheap", {})
    assert paid == []


def test_secrets_are_sealed_only_to_an_attested_session(host: Host) -> None:
    """Without a session given, configuration and wallets go under a verifiable session: a
    client that cannot verify the host refuses to send them (no plain session is opened)."""
    owner = ClientKey.generate()
    with Client(host.url) as c:  # no reference set pinned
        with pytest.raises(VerifyError) as e:
            c.set_config(owner, "anything", {"API_KEY": "sk-secret"})
        assert e.value.kind in ("simulated", "no_expected_measurement")


def test_owner_statements_name_the_pinned_deployment_only(host: Host, wasm: Any) -> None:
    owner = ClientKey.generate()
    with Client(host.url, expected_audience="00" * 16) as c:
        with pytest.raises(VerifyError, match="not the pinned"):
            c.deploy(owner, Deployment("pinned-elsewhere", wasm("hello")))
    with Client(host.url) as c:
        audience = c.host()["audience"]
    with Client(host.url, expected_audience=audience) as c:
        name = f"pinned-{uuid.uuid4().hex[:6]}"
        c.deploy(owner, Deployment(name, wasm("hello")))
        c.delete(owner, name)
