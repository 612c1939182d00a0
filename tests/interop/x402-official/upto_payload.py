"""Signs an x402 `upto` payment with the official Python SDK (PyPI `x402`, >= 2.8).

Used by upto-smoke.mjs --python PYTHON to check that a Python-made upto payload is accepted and
settled by the official TypeScript facilitator.

Usage: PYTHON upto_payload.py 0xPAYER_PRIVATE_KEY < payment-required.json
  stdin:  a v2 PaymentRequired ({"x402Version":2, "resource", "accepts":[{"scheme":"upto", ...}]})
  stdout: one line, the PaymentPayload JSON (camelCase, as sent in PAYMENT-SIGNATURE)
"""

import json
import sys

from eth_account import Account
from x402 import x402ClientSync
from x402.mechanisms.evm.upto import UptoEvmClientScheme
from x402.schemas import PaymentRequired


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: upto_payload.py 0xPAYER_PRIVATE_KEY < payment-required.json")
    required = json.load(sys.stdin)
    account = Account.from_key(sys.argv[1])
    client = x402ClientSync()
    for network in sorted({a["network"] for a in required["accepts"]}):
        client.register(network, UptoEvmClientScheme(account))
    # Spend controls only allow the USDC addresses the SDK knows; opt the local token in.
    client.set_spend_controls(
        {"allowed_assets": [{"network": a["network"], "asset": a["asset"]} for a in required["accepts"]]}
    )
    payload = client.create_payment_payload(PaymentRequired.model_validate(required))
    print(json.dumps(payload.model_dump(by_alias=True, exclude_none=True)))


if __name__ == "__main__":
    main()
