"""Pays a WASM Hypervisor host's priced MCP tool through the x402 MCP binding, with the official
MCP Python SDK (PyPI `mcp`) calling and the official x402 Python SDK (PyPI `x402`) signing, for
tests/e2e/mcp.rs. Prints one JSON object on stdout.

    pay.py URL REVISION TOOL ARGUMENTS_JSON

REVISION as in client.py (`2026-07-28`, or an `initialize`-based one). The tool is called
without payment (an `isError` result carrying PaymentRequired), then with the x402 SDK's
payment in `params._meta["x402/payment"]` (the result, with the settlement in
`_meta["x402/payment-response"]`), then with the same payment again (refused as a replay).
"""
import json
import sys

import anyio
import mcp.client.session as sdk_session
from eth_account import Account
from mcp import Client
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from x402 import x402ClientSync
from x402.mcp.constants import MCP_PAYMENT_META_KEY, MCP_PAYMENT_RESPONSE_META_KEY
from x402.mcp.types import MCPToolResult
from x402.mcp.utils import extract_payment_required_from_result
from x402.mechanisms.evm import EthAccountSigner
from x402.mechanisms.evm.exact import register_exact_evm_client


def dump(result) -> dict:
    return result.model_dump(by_alias=True, exclude_none=True, mode="json")


def as_x402(result) -> MCPToolResult:
    """An MCP SDK result in the x402 SDK's own result type. (x402 2.25.0's converter,
    `convert_mcp_result`, reads camelCase attributes, which mcp 2.3.0's models do not have: it
    would see no payment request. The wire JSON is the binding's either way.)"""
    d = dump(result)
    return MCPToolResult(
        content=d.get("content", []),
        is_error=d.get("isError", False),
        meta=d.get("_meta"),
        structured_content=d.get("structuredContent"),
    )


async def main(url, revision, tool, arguments):
    mode = revision
    if revision in HANDSHAKE_PROTOCOL_VERSIONS:
        sdk_session.LATEST_HANDSHAKE_VERSION = revision
        mode = "legacy"
    payer = x402ClientSync()
    register_exact_evm_client(payer, EthAccountSigner(Account.create()))
    out = {}
    async with Client(url, mode=mode, cache=None) as client:
        out["protocol_version"] = client.protocol_version
        listed = await client.list_tools()
        out["tools"] = [t.name for t in listed.tools]
        first = await client.call_tool(tool, arguments)
        # The x402 SDK's own reading of the binding's payment-required result.
        required = extract_payment_required_from_result(as_x402(first))
        out["first"] = {
            "isError": first.is_error,
            "x402Version": getattr(required, "x402_version", None),
            "text_is_json": json.loads(first.content[0].text).get("x402Version"),
        }
        payload = payer.create_payment_payload(required).model_dump(by_alias=True, exclude_none=True, mode="json")
        meta = {MCP_PAYMENT_META_KEY: payload}
        paid = await client.call_tool(tool, arguments, meta=meta)
        paid_dump = dump(paid)
        out["paid"] = {
            "isError": paid.is_error,
            "structuredContent": paid_dump.get("structuredContent"),
            "payment_response": (paid_dump.get("_meta") or {}).get(MCP_PAYMENT_RESPONSE_META_KEY),
        }
        replay = await client.call_tool(tool, arguments, meta=meta)
        out["replay"] = {"isError": replay.is_error, "error": (dump(replay).get("structuredContent") or {}).get("error")}
    print(json.dumps(out))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))
