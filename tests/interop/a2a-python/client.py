"""Drives a WASM Hypervisor host's A2A front with the official A2A Python SDK (PyPI `a2a-sdk`)
and, for payments, the official x402 Python SDK (PyPI `x402`), for tests/e2e/a2a.rs. Prints
one JSON object on stdout.

    client.py flow URL AGENT LOOP_AGENT VERSION
        VERSION `1.0` (the SDK's own client) or `0.3` (its v0.3 compatibility client, chosen by
        offering it only the card's 0.3 interface). Resolves and verifies the agent's card and
        the host's, sends a message, reads the task back, lists tasks (1.0), streams a message,
        cancels a running task on LOOP_AGENT, and checks that another caller cannot read it.
    client.py pay URL AGENT [KEY ASSET]
        The x402 extension's standalone flow on a priced AGENT: the payment-required task, the
        payment signed by the x402 SDK, the completed task and its receipt, then the same
        payment replayed on a new task. KEY: the payer's private key (default: a fresh one);
        ASSET: a token the SDK does not know as a network's default, opted in to its spend
        controls (a token deployed on a local chain).

A card's signature is checked with the SDK's own verifier (`create_signature_verifier`), the key
taken from the host's attestation (`GET /attestation`, its `signing_key`), not from the card.
"""
import asyncio
import base64
import json
import sys
import uuid

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.client.client import ClientCallContext
from a2a.types import a2a_pb2 as pb
from a2a.utils.signing import create_signature_verifier
from google.protobuf.json_format import MessageToDict
from jwt.api_jwk import PyJWK

X402_URI = "https://github.com/google-agentic-commerce/a2a-x402/blob/main/spec/v0.2"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def attested_key(http: httpx.AsyncClient, url: str) -> PyJWK:
    """The host's attested signing key as a JWK, from its attestation (not from the card)."""
    att = (await http.get(f"{url}/attestation")).json()["attestation"]
    sec1 = bytes.fromhex(att["signing_key"])
    jwk = {"kty": "EC", "crv": "P-256", "x": b64url(sec1[1:33]), "y": b64url(sec1[33:65])}
    return PyJWK(jwk, algorithm="ES256")


def text_message(text: str, task_id: str | None = None, metadata: dict | None = None) -> pb.Message:
    m = pb.Message(message_id=str(uuid.uuid4()), role=pb.Role.ROLE_USER, parts=[pb.Part(text=text)])
    if task_id:
        m.task_id = task_id
    if metadata:
        m.metadata.update(metadata)
    return m


def state_name(task: pb.Task) -> str:
    return pb.TaskState.Name(task.status.state)


async def last_task(client, request, context=None) -> pb.Task:
    task = None
    async for event in client.send_message(request, context=context):
        if event.HasField("task"):
            task = event.task
    return task


def only(card: pb.AgentCard, version: str) -> pb.AgentCard:
    """The card with only its interfaces of `version` (the SDK picks 1.0 when offered)."""
    copy = pb.AgentCard()
    copy.CopyFrom(card)
    del copy.supported_interfaces[:]
    copy.supported_interfaces.extend(i for i in card.supported_interfaces if i.protocol_version == version)
    return copy


async def flow(url: str, agent: str, loop_agent: str, version: str) -> dict:
    out: dict = {}
    alice = httpx.AsyncClient(headers={"Authorization": "Bearer alice-secret"}, timeout=60)
    mallory = httpx.AsyncClient(headers={"Authorization": "Bearer mallory-secret"}, timeout=60)
    key = await attested_key(alice, url)
    verifier = create_signature_verifier(lambda kid, jku: key, ["ES256"])
    resolver = A2ACardResolver(alice, url)
    card = await resolver.get_agent_card(
        relative_card_path=f"/agents/{agent}/.well-known/agent-card.json", signature_verifier=verifier
    )
    host_card = await resolver.get_agent_card(signature_verifier=verifier)
    out["card"] = {
        "name": card.name,
        "interfaces": [[i.protocol_binding, i.protocol_version, i.url] for i in card.supported_interfaces],
        "skills": [s.id for s in card.skills],
        "extensions": [e.uri for e in card.capabilities.extensions],
        "streaming": card.capabilities.streaming,
    }
    out["host_card_skills"] = sorted(s.id for s in host_card.skills)
    # A card changed after signing fails the same verifier.
    tampered = pb.AgentCard()
    tampered.CopyFrom(card)
    tampered.description += " (changed)"
    try:
        verifier(tampered)
        out["tampered_card_verified"] = True
    except Exception as e:  # noqa: BLE001 - the SDK's SignatureVerificationError
        out["tampered_card_verified"] = type(e).__name__

    card = only(card, version)
    blocking = ClientFactory(ClientConfig(streaming=False, httpx_client=alice))
    client = blocking.create(card)
    out["transport"] = type(client._transport).__name__
    task = await last_task(client, pb.SendMessageRequest(message=text_message("the cat saw the other cat")))
    out["send"] = {
        "state": state_name(task),
        "artifact": MessageToDict(task.artifacts[0].parts[0]) if task.artifacts else None,
        "history_roles": [pb.Role.Name(m.role) for m in task.history],
    }
    got = await client.get_task(pb.GetTaskRequest(id=task.id))
    out["get"] = {"same_id": got.id == task.id, "state": state_name(got)}
    if version == "1.0":
        listed = await client.list_tasks(pb.ListTasksRequest())
        out["list"] = {"ids": [t.id for t in listed.tasks], "total": listed.total_size, "contains": task.id in [t.id for t in listed.tasks]}
        mallory_client = ClientFactory(ClientConfig(streaming=False, httpx_client=mallory)).create(card)
        out["list_other_caller"] = len((await mallory_client.list_tasks(pb.ListTasksRequest())).tasks)
    try:
        mallory_client = ClientFactory(ClientConfig(streaming=False, httpx_client=mallory)).create(card)
        await mallory_client.get_task(pb.GetTaskRequest(id=task.id))
        out["other_caller_get"] = "read"
    except Exception as e:  # noqa: BLE001
        out["other_caller_get"] = type(e).__name__

    streaming = ClientFactory(ClientConfig(streaming=True, httpx_client=alice)).create(card)
    kinds = []
    final = None
    async for event in streaming.send_message(pb.SendMessageRequest(message=text_message("stream me please"))):
        kind = event.WhichOneof("payload")
        kinds.append(kind)
        if kind == "status_update":
            final = pb.TaskState.Name(event.status_update.status.state)
        if kind == "artifact_update":
            out["stream_artifact"] = MessageToDict(event.artifact_update.artifact.parts[0])
    out["stream"] = {"kinds": kinds, "final": final}

    # A task that runs until canceled: sent without waiting, then canceled.
    loop_card = only(
        await resolver.get_agent_card(relative_card_path=f"/agents/{loop_agent}/.well-known/agent-card.json"),
        version,
    )
    poller = ClientFactory(ClientConfig(streaming=False, polling=True, httpx_client=alice)).create(loop_card)
    running = await last_task(poller, pb.SendMessageRequest(message=text_message("spin")))
    out["running_state"] = state_name(running)
    canceled = await poller.cancel_task(pb.CancelTaskRequest(id=running.id))
    out["cancel_state"] = state_name(canceled)
    again = await poller.get_task(pb.GetTaskRequest(id=running.id))
    out["after_cancel_state"] = state_name(again)
    try:
        await poller.cancel_task(pb.CancelTaskRequest(id=running.id))
        out["second_cancel"] = "accepted"
    except Exception as e:  # noqa: BLE001
        out["second_cancel"] = type(e).__name__
    await alice.aclose()
    await mallory.aclose()
    return out


async def pay(url: str, agent: str, key: str | None = None, asset: str | None = None) -> dict:
    from eth_account import Account
    from x402 import x402ClientSync
    from x402.mechanisms.evm import EthAccountSigner
    from x402.mechanisms.evm.exact import register_exact_evm_client
    from x402.schemas import PaymentRequired

    out: dict = {}
    http = httpx.AsyncClient(headers={"Authorization": "Bearer payer"}, timeout=60)
    card = await A2ACardResolver(http, url).get_agent_card(
        relative_card_path=f"/agents/{agent}/.well-known/agent-card.json"
    )
    out["extensions"] = [[e.uri, e.required] for e in card.capabilities.extensions]
    client = ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create(card)
    context = ClientCallContext(service_parameters={"A2A-Extensions": X402_URI})
    # Without activating the extension: refused.
    try:
        await last_task(client, pb.SendMessageRequest(message=text_message("pay me")))
        out["unactivated"] = "accepted"
    except Exception as e:  # noqa: BLE001
        out["unactivated"] = type(e).__name__

    payer = x402ClientSync()
    account = Account.from_key(key) if key else Account.create()
    register_exact_evm_client(payer, EthAccountSigner(account))
    if asset:
        payer.set_spend_controls({"allowed_assets": [{"network": "eip155:*", "asset": asset}]})

    async def ask() -> tuple[pb.Task, dict]:
        task = await last_task(client, pb.SendMessageRequest(message=text_message("count these words")), context)
        meta = MessageToDict(task.status.message.metadata)
        return task, meta

    task, meta = await ask()
    out["required"] = {"state": state_name(task), "status": meta.get("x402.payment.status"), "x402Version": meta.get("x402.payment.required", {}).get("x402Version")}
    required = PaymentRequired.model_validate(meta["x402.payment.required"])
    payload = payer.create_payment_payload(required).model_dump(by_alias=True, exclude_none=True, mode="json")
    paid_meta = {"x402.payment.status": "payment-submitted", "x402.payment.payload": payload}
    done = await last_task(client, pb.SendMessageRequest(message=text_message("here is the payment", task.id, paid_meta)), context)
    done_meta = MessageToDict(done.status.message.metadata)
    out["paid"] = {
        "state": state_name(done),
        "status": done_meta.get("x402.payment.status"),
        "receipts": done_meta.get("x402.payment.receipts"),
        "artifact": MessageToDict(done.artifacts[0].parts[0]) if done.artifacts else None,
    }
    # The same payment on a new task: refused, and nothing runs.
    task2, _ = await ask()
    replay = await last_task(client, pb.SendMessageRequest(message=text_message("again", task2.id, paid_meta)), context)
    replay_meta = MessageToDict(replay.status.message.metadata)
    out["replay"] = {
        "state": state_name(replay),
        "status": replay_meta.get("x402.payment.status"),
        "error": replay_meta.get("x402.payment.error"),
        "artifacts": len(replay.artifacts),
    }
    await http.aclose()
    return out


def main() -> None:
    mode, url, *rest = sys.argv[1:]
    if mode == "flow":
        out = asyncio.run(flow(url, *rest))
    elif mode == "pay":
        out = asyncio.run(pay(url, *rest))
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
