"""Calls a tool with arguments larger than the host's body limit through the official MCP
Python SDK (PyPI `mcp`, HTTP/1.1 through httpx, no `Expect: 100-continue`), for
tests/e2e/linger.rs. Prints one JSON object on stdout: what the SDK raised, with its causes.

    oversized.py URL TOOL BYTES
"""
import json
import sys

import anyio
from mcp import Client


def chain(e: BaseException):
    """The exception, its group members and its causes, flattened."""
    yield e
    for sub in getattr(e, "exceptions", None) or []:
        yield from chain(sub)
    if e.__cause__ is not None:
        yield from chain(e.__cause__)
    elif e.__context__ is not None and not e.__suppress_context__:
        yield from chain(e.__context__)


async def main(url, tool, size):
    out = {}
    try:
        async with Client(url, mode="2026-07-28", cache=None) as client:
            await client.call_tool(tool, {"text": "a" * size})
            out["sent"] = True
    except Exception as e:  # noqa: BLE001 - what the SDK raises is the result
        out["errors"] = [f"{type(x).__module__}.{type(x).__name__}: {x}"[:400] for x in chain(e)]
    print(json.dumps(out))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
