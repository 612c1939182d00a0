#!/usr/bin/env python3
"""Pays one request to a metered (x402 `upto`) WASM Hypervisor agent with the official x402
Python SDK (PyPI `x402`, pinned in requirements.txt) and prints what came back as one JSON line.

Usage:
  pay_upto.py URL --key 0xHEX --asset 0xTOKEN [--body JSON]

Flow: the SDK's drop-in `requests` adapter (`wrapRequestsWithPayment`) POSTs URL, takes the 402's
PAYMENT-REQUIRED (scheme `upto`), signs Permit2's PermitWitnessTransferFrom for the maximum
with its `UptoEvmScheme` (an eth-account local key through `EthAccountSigner`) and sends the
request again. Nothing here signs by hand. The payer must have approved Permit2 for the token
(once, on chain). The token is opted in to the SDK's spend controls (it is not a default asset).

stdout: {"sdk": "x402 2.25.0", "payer": "0x..", "status": 200, "body": ..., "settlement": {...}}
`settlement` is the decoded PAYMENT-RESPONSE (its `amount` is what was charged) or null.
Exit status 1 when the script could not do its job (the SDK refused to pay, a transport error).
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import version as package_version

import requests
from eth_account import Account
from x402 import x402ClientSync
from x402.http import PAYMENT_RESPONSE_HEADER, decode_payment_response_header
from x402.http.clients import wrapRequestsWithPayment
from x402.mechanisms.evm import EthAccountSigner
from x402.mechanisms.evm.upto import UptoEvmClientScheme

TIMEOUT_SECONDS = 60


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("url")
    p.add_argument("--key", required=True)
    p.add_argument("--asset", required=True)
    p.add_argument("--body", default='{"event": {}}')
    args = p.parse_args()
    account = Account.from_key(args.key)
    client = x402ClientSync()
    client.register("eip155:*", UptoEvmClientScheme(EthAccountSigner(account)))
    client.set_spend_controls(
        {"allowed_assets": [{"network": "eip155:*", "asset": args.asset}]}
    )
    paying = wrapRequestsWithPayment(requests.Session(), client)
    try:
        response = paying.post(
            args.url,
            data=args.body,
            headers={"content-type": "application/json"},
            timeout=TIMEOUT_SECONDS,
        )
    except Exception as e:  # the SDK refused to pay, or the transport failed
        sys.exit(f"[pay_upto.py] {type(e).__name__}: {e}")
    header = response.headers.get(PAYMENT_RESPONSE_HEADER)
    settlement = (
        decode_payment_response_header(header).model_dump(by_alias=True)
        if header
        else None
    )
    try:
        body = response.json()
    except ValueError:
        body = response.text
    print(
        json.dumps(
            {
                "sdk": f"x402 {package_version('x402')}",
                "payer": account.address,
                "status": response.status_code,
                "body": body,
                "settlement": settlement,
            }
        )
    )


if __name__ == "__main__":
    main()
