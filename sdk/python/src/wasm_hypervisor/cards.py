"""A2A agent cards signed by the host's attested key (PROTOCOL.md §21.1): the detached JWS over
the card's canonical payload, checked against a key whose evidence was verified first, so the
card's URLs can be handed to the official A2A and MCP SDKs knowing which host answers there."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785

from . import _json
from ._bytes import ct_equal
from .crypto import verify_signature
from .errors import VerifyError
from .verify import VerifiedKey

ATTESTED_KEY_EXTENSION = "https://wasm-hypervisor.dev/a2a/extensions/attested-signing-key/v1"
#: fields only A2A 0.3 clients read, left out of the signed payload
UNSIGNED = ("signatures", "url", "protocolVersion", "preferredTransport")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise VerifyError("card", "not base64url") from None


def jwk(sec1: bytes) -> dict[str, str]:
    """The P-256 key (65-byte uncompressed SEC1) as a JWK."""
    return {"crv": "P-256", "kty": "EC", "x": b64url(sec1[1:33]), "y": b64url(sec1[33:65])}


def thumbprint(sec1: bytes) -> str:
    """RFC 7638: SHA-256 of the JWK's required members in canonical form, base64url."""
    return b64url(hashlib.sha256(rfc8785.dumps(jwk(sec1))).digest())


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in ("", [], {}, None)}
    if isinstance(value, list):
        items = [_prune(v) for v in value]
        return [v for v in items if v not in ("", [], {}, None)]
    return value


def payload(card: Mapping[str, Any]) -> bytes:
    """The signed payload: the card without its unsigned fields, empty values removed
    recursively, in RFC 8785 canonical JSON."""
    return rfc8785.dumps(_prune({k: v for k, v in card.items() if k not in UNSIGNED}))


def verify_card(card: Mapping[str, Any], key: VerifiedKey) -> None:
    """Refuses (`VerifyError` kind `card`) a card that no signature of the attested key covers,
    or whose attested-key extension names another key or evidence."""
    sigs = card.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise VerifyError("card", "the card is not signed")
    kid = thumbprint(key.signing_key)
    body = b64url(payload(card))
    for entry in sigs:
        if not isinstance(entry, Mapping):
            continue
        protected = entry.get("protected")
        signature = entry.get("signature")
        if not isinstance(protected, str) or not isinstance(signature, str):
            continue
        try:
            header = _json.loads(b64url_decode(protected))
        except ValueError:
            continue
        if not isinstance(header, dict) or header.get("alg") != "ES256" or header.get("kid") != kid:
            continue
        if verify_signature(key.signing_key, f"{protected}.{body}".encode(), b64url_decode(signature)):
            break
    else:
        raise VerifyError("card", "no signature on the card verifies under the attested key")
    capabilities = card.get("capabilities")
    extensions = capabilities.get("extensions") if isinstance(capabilities, Mapping) else None
    for ext in extensions if isinstance(extensions, list) else []:
        if isinstance(ext, Mapping) and ext.get("uri") == ATTESTED_KEY_EXTENSION:
            params = ext.get("params")
            if not isinstance(params, Mapping):
                raise VerifyError("card", "the attested-key extension has no params")
            named = str(params.get("signingKey", ""))
            evidence = str(params.get("evidenceSha256", ""))
            if named.lower() != key.signing_key.hex() or not ct_equal(
                evidence.lower().encode(), key.evidence_sha256.hex().encode()
            ):
                raise VerifyError("card", "the card's attested-key extension names another key or evidence")
            if bool(params.get("simulated", False)) != key.simulated:
                raise VerifyError("card", "the card's attested-key extension mislabels the evidence")


@dataclass(frozen=True)
class VerifiedCard:
    """A card whose signature verified under the attested key `verified`."""

    card: dict[str, Any]
    verified: VerifiedKey

    @property
    def url(self) -> str:
        """The preferred interface's URL (A2A 1.0, JSON-RPC)."""
        interfaces = self.card.get("supportedInterfaces")
        for i in interfaces if isinstance(interfaces, list) else []:
            if isinstance(i, Mapping) and i.get("protocolVersion") == "1.0" and isinstance(i.get("url"), str):
                return str(i["url"])
        raise VerifyError("card", "the card has no A2A 1.0 interface")

    def to_a2a_card(self) -> Any:
        """The card as the official A2A SDK's `AgentCard` (PyPI `a2a-sdk`, imported here), for
        `a2a.client.ClientFactory(...).create(card)`."""
        from a2a.types import a2a_pb2
        from google.protobuf.json_format import ParseDict

        return ParseDict(self.card, a2a_pb2.AgentCard(), ignore_unknown_fields=True)

    @property
    def mcp_url(self) -> str:
        """The MCP endpoint of the host that signed this (host) card: its `/a2a` interface's
        origin with `/mcp` (§20)."""
        url = self.url
        if not url.endswith("/a2a"):
            raise VerifyError("card", "the MCP endpoint is read from the host's card (interface /a2a)")
        return url[: -len("/a2a")] + "/mcp"
