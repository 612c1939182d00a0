"""Sends one A2A message larger than the host's body limit with the official A2A Python SDK
(PyPI `a2a-sdk`, HTTP/1.1 through httpx, no `Expect: 100-continue`), for tests/e2e/linger.rs.
Prints one JSON object on stdout: what the SDK raised, with its causes.

    oversized.py URL AGENT BYTES
"""
import asyncio
import json
import sys
import uuid

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import a2a_pb2 as pb


def chain(e: BaseException):
    """The exception, its group members and its causes, flattened."""
    yield e
    for sub in getattr(e, "exceptions", None) or []:
        yield from chain(sub)
    if e.__cause__ is not None:
        yield from chain(e.__cause__)
    elif e.__context__ is not None and not e.__suppress_context__:
        yield from chain(e.__context__)


async def main(url: str, agent: str, size: int) -> dict:
    async with httpx.AsyncClient(timeout=120) as http:
        card = await A2ACardResolver(http, url).get_agent_card(
            relative_card_path=f"/agents/{agent}/.well-known/agent-card.json"
        )
        client = ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create(card)
        message = pb.Message(
            message_id=str(uuid.uuid4()), role=pb.Role.ROLE_USER, parts=[pb.Part(text="a" * size)]
        )
        try:
            async for _ in client.send_message(pb.SendMessageRequest(message=message)):
                pass
            return {"sent": True}
        except Exception as e:  # noqa: BLE001 - what the SDK raises is the result
            return {"errors": [f"{type(x).__module__}.{type(x).__name__}: {x}"[:400] for x in chain(e)]}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))))
