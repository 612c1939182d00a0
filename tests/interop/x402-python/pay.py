#!/usr/bin/env python3
"""Pays one request to a WASM Hypervisor paid route with the official x402 Python SDK
(PyPI `x402`, pinned in requirements.txt) and prints what came back as one JSON line.

Usage:
  pay.py URL [--method GET|POST] [--body JSON] [--version auto|2|1] [--key 0xHEX]
             [--allow-asset 0xTOKEN] [--reuse-on URL] [--replay]

Flow: the request is sent without payment and must get a 402. The SDK then turns the 402 into
a payment header and the request is sent again with it:

  --version auto  the SDK's drop-in `requests` adapter (`wrapRequestsWithPayment`) does the
                  whole round trip, as an application would use it; it picks v2 whenever the
                  402 carries PAYMENT-REQUIRED (our server always sends it).
  --version 2     `x402HTTPClientSync.handle_402_response` on the 402 as received: v2, from the
                  PAYMENT-REQUIRED header; the proof goes in PAYMENT-SIGNATURE.
  --version 1     the same, but the 402 is handed to the SDK without its PAYMENT-REQUIRED
                  header, as a v1-only server would send it: v1, from the JSON body
                  (`accepts[].maxAmountRequired`, network `base-sepolia`); proof in X-PAYMENT.

Signing is the SDK's own (`register_exact_evm_client` with an eth-account local key: EIP-3009
TransferWithAuthorization under the token's EIP-712 domain). Nothing here signs by hand.

  --reuse-on URL  after the paid request, sends the SAME payment header to URL (same method and
                  body). Used to check that a payment the server did not settle (an agent's error
                  response) is still unused and pays the next request.
  --replay        finally sends the same payment header once more, to the last URL used, and
                  reports the answer (a server must refuse it: 402,
                  `invalid_exact_evm_nonce_already_used`).

The key defaults to a fresh random one (verify-only servers check the signature, not a
balance). Tokens the SDK does not know as a network's default asset (a token deployed on a
local chain) must be opted in with --allow-asset, like pay.mjs's 4th argument.

stdout: exactly one JSON line
  {"sdk": "x402 2.25.0", "version": "2", "payer": "0x..", "header": "PAYMENT-SIGNATURE",
   "challenge": {"status": 402, "payment_required_header": true, "body_x402Version": 1},
   "paid":   {"url", "status", "body", "settlement"},
   "reuse":  {...same keys...} or null,
   "replay": {...same keys...} or null}
`settlement` is the decoded PAYMENT-RESPONSE / X-PAYMENT-RESPONSE (the SDK's SettleResponse,
with its wire field names) or null when the response carried none. `body` is the parsed JSON
body, or the text when it is not JSON.
stderr: diagnostics. Exit status 0 when every exchange happened (whatever the statuses), 1 when
the script could not do its job (no 402 at first, the SDK refused to pay, a transport error).
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import version as package_version
from typing import Any

import requests
from eth_account import Account
from x402 import x402ClientSync
from x402.http import (
    PAYMENT_REQUIRED_HEADER,
    PAYMENT_RESPONSE_HEADER,
    X_PAYMENT_RESPONSE_HEADER,
    decode_payment_response_header,
    x402HTTPClientSync,
)
from x402.http.clients import wrapRequestsWithPayment
from x402.mechanisms.evm import EthAccountSigner
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.v1.constants import V1_NETWORKS

TIMEOUT_SECONDS = 60


def log(*parts: Any) -> None:
    print("[pay.py]", *parts, file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url", help="full URL of the paid resource, e.g. http://127.0.0.1:PORT/agents/NAME/invoke")
    p.add_argument("--method", default="POST", choices=["GET", "POST"])
    p.add_argument("--body", default=None, help="JSON request body (POST); sent as application/json")
    p.add_argument("--version", default="auto", choices=["auto", "2", "1"])
    p.add_argument("--key", default=None, help="payer private key, 0x + 64 hex digits (default: a fresh random key)")
    p.add_argument("--allow-asset", default=None, help="token address to opt in to the SDK's spend controls")
    p.add_argument("--reuse-on", default=None, help="send the same payment header to this URL next")
    p.add_argument("--replay", action="store_true", help="send the same payment header once more at the end")
    args = p.parse_args(argv)
    if args.body is not None:
        try:
            json.loads(args.body)
        except json.JSONDecodeError as e:
            p.error(f"--body is not JSON: {e}")
    return args


def make_client(account: Any, allow_asset: str | None) -> x402ClientSync:
    """The SDK's sync client with its EVM `exact` scheme for v2 (eip155:*) and v1 (named networks)."""
    client = x402ClientSync()
    register_exact_evm_client(client, EthAccountSigner(account))
    if allow_asset:
        # v2 names networks by CAIP-2 id; v1 by name (`base-sepolia`): opt the token in on both,
        # on the v1 names the SDK's EVM scheme registers itself for.
        networks = ["eip155:*", *V1_NETWORKS]
        client.set_spend_controls(
            {"allowed_assets": [{"network": n, "asset": allow_asset} for n in networks]}
        )
    return client


def send(session: requests.Session, method: str, url: str, body: str | None, headers: dict[str, str]) -> requests.Response:
    h = dict(headers)
    data = None
    if body is not None:
        h["content-type"] = "application/json"
        data = body.encode("utf-8")
    return session.request(method, url, data=data, headers=h, timeout=TIMEOUT_SECONDS)


def settlement_of(resp: requests.Response) -> dict[str, Any] | None:
    """The settlement header, decoded with the SDK (v2 PAYMENT-RESPONSE, else v1 X-PAYMENT-RESPONSE)."""
    for name in (PAYMENT_RESPONSE_HEADER, X_PAYMENT_RESPONSE_HEADER):
        value = resp.headers.get(name)
        if value:
            return decode_payment_response_header(value).model_dump(by_alias=True, exclude_none=True)
    return None


def report(resp: requests.Response) -> dict[str, Any]:
    try:
        body: Any = resp.json()
    except ValueError:
        body = resp.text
    return {"url": resp.url, "status": resp.status_code, "body": body, "settlement": settlement_of(resp)}


def challenge_of(resp: requests.Response) -> dict[str, Any]:
    """The unpaid answer: its status, whether it carried the v2 PAYMENT-REQUIRED header, and the
    x402Version of its JSON body (1 for a v1 challenge)."""
    try:
        body_version = resp.json().get("x402Version")
    except (ValueError, AttributeError):
        body_version = None
    return {
        "status": resp.status_code,
        "payment_required_header": bool(resp.headers.get(PAYMENT_REQUIRED_HEADER)),
        "body_x402Version": body_version,
    }


def pay_explicitly(args: argparse.Namespace, client: x402ClientSync, session: requests.Session):
    """--version 2 / 1: request, 402, the SDK's handle_402_response, retry. Returns the
    challenge, the paid response and the payment headers."""
    first = send(session, args.method, args.url, args.body, {})
    if first.status_code != 402:
        raise RuntimeError(f"expected 402 from {args.url}, got {first.status_code}: {first.text[:500]}")
    headers = dict(first.headers)
    if args.version == "1":
        # A v1 client: it reads only the JSON body of the 402.
        headers = {k: v for k, v in headers.items() if k.upper() != PAYMENT_REQUIRED_HEADER}
    http_client = x402HTTPClientSync(client)
    payment_headers, payload = http_client.handle_402_response(headers, first.content, args.url)
    if payload is None or payload.x402_version != int(args.version):
        raise RuntimeError(f"the SDK built {payload and payload.x402_version!r}, not a v{args.version} payment")
    paid = send(session, args.method, args.url, args.body, payment_headers)
    return first, paid, payment_headers


def pay_with_adapter(args: argparse.Namespace, client: x402ClientSync, session: requests.Session):
    """--version auto: the SDK's requests adapter does request → 402 → pay → retry by itself.
    The payload it created is caught with the client's after-payment hook, to be replayed."""
    created: list[Any] = []
    client.on_after_payment_creation(lambda ctx: created.append(ctx.payment_payload))
    # The unpaid challenge, seen separately (the adapter hides it), for the report.
    first = send(session, args.method, args.url, args.body, {})
    if first.status_code != 402:
        raise RuntimeError(f"expected 402 from {args.url}, got {first.status_code}: {first.text[:500]}")
    paying = wrapRequestsWithPayment(requests.Session(), client)
    paid = send(paying, args.method, args.url, args.body, {})
    if len(created) != 1:
        raise RuntimeError(f"the SDK's adapter created {len(created)} payments, expected 1 (status {paid.status_code})")
    payment_headers = x402HTTPClientSync(client).encode_payment_signature_header(created[0])
    return first, paid, payment_headers


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    account = Account.from_key(args.key) if args.key else Account.create()
    client = make_client(account, args.allow_asset)
    session = requests.Session()
    try:
        if args.version == "auto":
            first, paid, payment_headers = pay_with_adapter(args, client, session)
        else:
            first, paid, payment_headers = pay_explicitly(args, client, session)
        (header_name,) = payment_headers.keys()
        log(f"paid {args.url} with {header_name}: {paid.status_code}")
        out: dict[str, Any] = {
            "sdk": f"x402 {package_version('x402')}",
            "version": args.version,
            "payer": account.address,
            "header": header_name,
            "challenge": challenge_of(first),
            "paid": report(paid),
            "reuse": None,
            "replay": None,
        }
        last_url = args.url
        if args.reuse_on:
            reused = send(session, args.method, args.reuse_on, args.body, payment_headers)
            log(f"same payment on {args.reuse_on}: {reused.status_code}")
            out["reuse"] = report(reused)
            last_url = args.reuse_on
        if args.replay:
            replayed = send(session, args.method, last_url, args.body, payment_headers)
            log(f"replay on {last_url}: {replayed.status_code}")
            out["replay"] = report(replayed)
    except Exception as e:  # noqa: BLE001 - any failure is reported the same way
        log(f"error: {type(e).__name__}: {e}")
        return 1
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
