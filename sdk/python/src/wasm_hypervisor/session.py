"""A session (PROTOCOL.md §3-§5, §13): its id, the client key it belongs to, the envelopes of
its key and, on verifiable sessions, the verified attested key that signed its statement."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._bytes import from_hex
from .crypto import ClientKey, Envelopes, public_key_from_bytes, session_key, uncompressed, verify_signature
from .errors import ProtocolError, VerifyError
from .statements import session_statement
from .verify import VerifiedKey


@dataclass
class Session:
    id: uuid.UUID
    key: ClientKey
    server_public: bytes
    envelopes: Envelopes
    #: local monotonic deadline (the host's TTL counted from when the answer arrived)
    expires_at: float
    #: the verified attestation behind a verifiable session; None for a plain one
    verified: VerifiedKey | None = None

    @property
    def verifiable(self) -> bool:
        return self.verified is not None

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.expires_at


def parse_session_id(value: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ProtocolError(f"session_id {value!r} is not a UUID") from None


def open_session(key: ClientKey, body: Mapping[str, Any]) -> Session:
    """A plain session from `create_keypair`'s answer."""
    if not isinstance(body, Mapping):
        raise ProtocolError("create_keypair's answer is not a JSON object")
    server = uncompressed(public_key_from_bytes(from_hex("session_pubkey", body.get("session_pubkey"))))
    sid = parse_session_id(body.get("session_id"))
    ttl = body.get("expires_in_seconds")
    if type(ttl) is not int or ttl <= 0:
        raise ProtocolError("expires_in_seconds is not a positive integer")
    k = session_key(key, key.public_bytes, server, sid)
    return Session(sid, key, server, Envelopes(k, sid), time.monotonic() + ttl)


def check_session_statement(session: Session, quote: Mapping[str, Any], verified: VerifiedKey) -> None:
    """§13: the attested key signed this session: its id, both public keys and its times."""
    created, expires = quote.get("session_created_at"), quote.get("session_expires_at")
    if not all(type(t) is int and 0 <= t < 2**64 for t in (created, expires)):
        raise VerifyError("signature", "the session quote's times are not Unix seconds")
    assert isinstance(created, int) and isinstance(expires, int)
    try:
        signature = from_hex("session_signature", quote.get("session_signature"), 64)
    except ProtocolError as e:
        raise VerifyError("signature", str(e)) from None
    message = session_statement(session.id, session.server_public, session.key.public_bytes, created, expires)
    if not verify_signature(verified.signing_key, message, signature):
        raise VerifyError("signature", "the session statement is not signed by the attested key")
