"""Paying with the official x402 Python SDK (PyPI `x402`) through this SDK, on a local chain
with Circle's USDC and the official facilitator: tokens move exactly once per charged request,
receipts name the payer, the x402 SDK's spend controls are respected."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from chain import Chain, start_chain
from conftest import Host, start_host, wasm_dir
from eth_account import Account
from x402 import x402Client, x402ClientSync
from x402.mechanisms.evm import EthAccountSigner
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.v1.constants import V1_NETWORKS

from wasm_hypervisor import (
    AsyncClient,
    Client,
    ClientKey,
    Deployment,
    PaymentFailed,
    PaymentRequired,
    Policy,
)

PRICE = 10_000  # the host's default price of its paid code routes
AGENT_PRICE = 7_000
TX = re.compile(r"0x[0-9a-fA-F]{64}")


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    yield from start_chain()


@pytest.fixture(scope="module")
def paid_host(chain: Chain) -> Iterator[Host]:
    yield from start_host(
        f"""[payments]
enabled = true
component = "{wasm_dir() / "payments.wasm"}"
mode = "facilitator"
facilitator_url = "{chain.facilitator_url}"
[payments.price]
pay_to = "{chain.pay_to}"
asset = "{chain.token}"
"""
    )


def x402_client(chain: Chain, cls: Any = x402ClientSync, cap: int | None = None) -> Any:
    """The x402 SDK's client with the payer's key; the local token opted in (it is no network's
    default asset), with a per-payment cap when given."""
    client = cls()
    register_exact_evm_client(client, EthAccountSigner(Account.from_key(chain.payer_key)))
    assets = []
    for network in ["eip155:*", *V1_NETWORKS]:
        entry: dict[str, Any] = {"network": network, "asset": chain.token}
        if cap is not None:
            entry["max_amount_per_payment"] = str(cap)
        assets.append(entry)
    client.set_spend_controls({"allowed_assets": assets})
    return client


def policy(host: Host) -> Policy:
    return Policy(reference_values=[host.reference_set()], allow_simulated=True)


def test_paid_verifiable_execution_settles_once_and_the_receipt_names_the_payer(
    chain: Chain, paid_host: Host
) -> None:
    before = chain.balance(chain.payer), chain.balance(chain.pay_to)
    with Client(paid_host.url, policy(paid_host), payer=x402_client(chain)) as c:
        session = c.verifiable_session()
        hello = (wasm_dir() / "hello.wasm").read_bytes()
        result = c.execute_wasm(session, hello, args=["paid"], paid=True)
        assert result.text == "Hello paid\n"
        assert result.settlement is not None and result.settlement["success"] is True
        assert TX.fullmatch(result.settlement["transaction"])
        assert result.receipt is not None
        assert result.receipt["route"] == "/x402_execute/verifiable/wasm"
        assert f"payer={chain.payer.lower()}" in result.receipt["payment"].lower()
        assert f" {PRICE} " in result.receipt["payment"]
    assert chain.balance(chain.payer) == before[0] - PRICE
    assert chain.balance(chain.pay_to) == before[1] + PRICE


def test_without_a_payer_the_challenge_is_raised_and_nothing_moves(chain: Chain, paid_host: Host) -> None:
    before = chain.balance(chain.payer)
    with Client(paid_host.url) as c:
        with pytest.raises(PaymentRequired) as e:
            c.execute_python(c.session(), "print(1)", paid=True)
    assert e.value.code == "payment_required"
    assert e.value.challenge["accepts"][0]["maxAmountRequired"] == str(PRICE)
    assert "payment-required" in {k.lower() for k in e.value.headers}
    assert chain.balance(chain.payer) == before


def test_the_x402_sdk_spend_cap_is_respected(chain: Chain, paid_host: Host) -> None:
    before = chain.balance(chain.payer)
    with Client(paid_host.url, payer=x402_client(chain, cap=PRICE - 1)) as c:
        with pytest.raises(PaymentFailed):
            c.execute_wasm(c.session(), (wasm_dir() / "hello.wasm").read_bytes(), paid=True)
    assert chain.balance(chain.payer) == before


def test_paid_agents_clear_and_sealed(chain: Chain, paid_host: Host) -> None:
    name = f"paid-stats-{uuid.uuid4().hex[:6]}"
    owner = ClientKey.generate()
    before = chain.balance(chain.payer)
    with Client(paid_host.url, policy(paid_host), payer=x402_client(chain)) as c:
        c.deploy(
            owner,
            Deployment(
                name, (wasm_dir() / "text-stats.wasm").read_bytes(), public=True, price=str(AGENT_PRICE)
            ),
        )
        clear = c.invoke(name, {"text": "paid in the clear"})
        assert clear.ok and clear.result["words"] == 4
        assert clear.settlement is not None and clear.settlement["success"] is True
        session = c.verifiable_session()
        sealed = c.invoke_sealed(session, name, {"text": "paid and sealed"})
        assert sealed.settlement is not None and TX.fullmatch(sealed.settlement["transaction"])
        assert sealed.receipt is not None and f" {AGENT_PRICE} " in sealed.receipt["payment"]
    assert chain.balance(chain.payer) == before - 2 * AGENT_PRICE


async def test_the_async_client_pays_with_the_async_x402_client(chain: Chain, paid_host: Host) -> None:
    before = chain.balance(chain.payer)
    async with AsyncClient(paid_host.url, payer=x402_client(chain, x402Client)) as c:
        session = await c.session()
        result = await c.execute_python(session, "def main(a):\n    return 41 + 1\n", paid=True)
        assert result.returned == 42
        assert result.settlement is not None and result.settlement["success"] is True
    assert chain.balance(chain.payer) == before - PRICE
