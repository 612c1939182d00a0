#!/usr/bin/env python3
"""Signs in to a WASM Hypervisor paid agent with the official x402 Python SDK's sign-in-with-x
client (PyPI `x402[extensions]`, pinned in requirements.txt) and prints what came back as one
JSON line.

Usage:
  sign_in.py URL --key 0xHEX [--body JSON]

Flow: POST URL without payment; the 402's PAYMENT-REQUIRED header must declare
`sign-in-with-x`. The SDK (`create_siwx_payload`, with the first supported chain, and
`encode_siwx_header`) signs the challenge with the key (eth-account, EIP-191 over the SIWE
message the `signinwithethereum` package builds); the request is sent again with the
SIGN-IN-WITH-X header. Nothing here builds or signs the message by hand.

stdout: {"sdk": "x402 2.25.0", "address": "0x..", "status": 200, "body": ..., "settlement": bool}
`settlement` says whether the answer carried a PAYMENT-RESPONSE header. Exit status 1 when the
script could not do its job (no 402, no declaration, a transport error).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from importlib.metadata import version as package_version

import requests
from eth_account import Account
from x402.extensions.sign_in_with_x import create_siwx_payload, encode_siwx_header
from x402.http import PAYMENT_REQUIRED_HEADER, decode_payment_required_header


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--key", required=True)
    parser.add_argument("--body", default='{"event": {"text": "signed in with python"}}')
    args = parser.parse_args(argv)
    account = Account.from_key(args.key)
    headers = {"content-type": "application/json"}
    first = requests.post(args.url, data=args.body, headers=headers, timeout=60)
    if first.status_code != 402 or PAYMENT_REQUIRED_HEADER not in first.headers:
        print(f"expected a 402 with {PAYMENT_REQUIRED_HEADER}, got {first.status_code}", file=sys.stderr)
        return 1
    required = decode_payment_required_header(first.headers[PAYMENT_REQUIRED_HEADER])
    declared = (required.extensions or {}).get("sign-in-with-x")
    if not declared:
        print("the 402 declares no sign-in-with-x", file=sys.stderr)
        return 1
    chain = declared["supportedChains"][0]
    info = {**declared["info"], "chainId": chain["chainId"], "type": chain["type"]}
    payload = asyncio.run(create_siwx_payload(info, account, first.url))
    signed = requests.post(
        args.url,
        data=args.body,
        headers={**headers, "SIGN-IN-WITH-X": encode_siwx_header(payload)},
        timeout=60,
    )
    try:
        body = signed.json()
    except ValueError:
        body = signed.text
    print(
        json.dumps(
            {
                "sdk": f"x402 {package_version('x402')}",
                "address": account.address,
                "status": signed.status_code,
                "body": body,
                "settlement": "payment-response" in signed.headers,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
