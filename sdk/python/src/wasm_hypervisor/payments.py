"""What a 402 challenge must name before the SDK lets the x402 client pay it (PROTOCOL.md §6b):
the resource of the route that was asked for, so a challenge for another route or agent (at any
price) is never paid from this request."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from . import _json
from .errors import PaymentFailed


def resource_of(
    public_url: str, requested: str, kind: str, agent: str | None, content_type: str | None
) -> tuple[str, str]:
    """The resource URL and `mimeType` a host's challenge names for a request to `requested`
    (a path and query): the route itself for code routes, the invoke route for handler and CLI
    agents, the agent's prefix for HTTP agents (§6b's table, vector `x402_resources`)."""
    base = public_url.rstrip("/")
    if kind == "code route":
        return base + requested.split("?")[0], "application/json"
    if kind == "handler or CLI agent":
        return f"{base}/agents/{agent}/invoke", "application/json"
    return f"{base}/agents/{agent}/", content_type or "application/octet-stream"


def challenged_resource(headers: Any, body: bytes) -> str | None:
    """The resource URL a 402 names: v2's `PAYMENT-REQUIRED` header, else v1's `accepts`."""
    header = headers.get("payment-required")
    if header:
        try:
            doc = _json.loads_b64(header)
            return str(doc["resource"]["url"])
        except (ValueError, KeyError, TypeError):
            raise PaymentFailed("the 402's PAYMENT-REQUIRED header does not parse") from None
    try:
        return str(_json.loads(body)["accepts"][0]["resource"])
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def check_challenge(headers: Any, body: bytes, path: str) -> None:
    """Refuses to pay a challenge whose resource is not the route asked for (its path; the
    host's public origin may differ from the URL the client uses, behind a balancer)."""
    resource = challenged_resource(headers, body)
    if resource is None:
        raise PaymentFailed("the 402 names no resource")
    if urlsplit(resource).path != path:
        raise PaymentFailed(f"the 402 asks payment for {resource}, not for {path}")
