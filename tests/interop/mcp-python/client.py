"""Drives a WASM Hypervisor host's MCP endpoint with the official MCP Python SDK (PyPI `mcp`),
for tests/e2e/mcp.rs. Prints one JSON object on stdout.

    client.py URL REVISION TOOL ARGUMENTS_JSON

REVISION: `2026-07-28` (the stateless revision, no probe), `auto` (the SDK's own choice:
`server/discover` first, `initialize` if that fails), or an `initialize`-based revision
(`2025-11-25`, `2025-06-18`, `2025-03-26`). The SDK always offers its newest
`initialize`-based revision; an older one is offered by setting the module constant it reads.
"""
import json
import sys

import anyio
import mcp.client.session as sdk_session
from mcp import Client
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS


async def main(url, revision, tool, arguments):
    mode = revision
    if revision in HANDSHAKE_PROTOCOL_VERSIONS:
        sdk_session.LATEST_HANDSHAKE_VERSION = revision
        mode = "legacy"
    out = {}
    async with Client(url, mode=mode, cache=None) as client:
        out["protocol_version"] = client.protocol_version
        listed = await client.list_tools()
        out["tools"] = [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in listed.tools]
        result = await client.call_tool(tool, arguments)
        out["result"] = result.model_dump(by_alias=True, exclude_none=True, mode="json")
        try:
            await client.call_tool("no-such-tool", {})
            out["unknown_tool"] = None
        except Exception as e:  # the SDK raises McpError for a JSON-RPC error
            error = getattr(e, "error", None)
            out["unknown_tool"] = {"code": getattr(error, "code", None), "message": str(e)}
    print(json.dumps(out))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))
