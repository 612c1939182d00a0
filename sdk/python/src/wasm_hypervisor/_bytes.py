"""Byte-level helpers of PROTOCOL.md §1: hex, big-endian integers, the length-prefixed encoding
of §12, constant-time comparison."""

from __future__ import annotations

import hmac
import struct
from collections.abc import Iterable

from .errors import ProtocolError


def u32be(n: int) -> bytes:
    return struct.pack(">I", n)


def u64be(n: int) -> bytes:
    return struct.pack(">Q", n)


_HEX = frozenset("0123456789abcdefABCDEF")


def is_hex(text: str, lowercase: bool = False) -> bool:
    """Digits only (either case, or lowercase), no prefix, no spaces, an even count (§1)."""
    digits = _HEX if not lowercase else frozenset("0123456789abcdef")
    return len(text) % 2 == 0 and all(c in digits for c in text)


def from_hex(field: str, text: object, length: int | None = None) -> bytes:
    """Decodes a protocol hex field (no prefix, either case); raises ProtocolError naming the
    field when it is not hex or not `length` bytes."""
    if not isinstance(text, str):
        raise ProtocolError(f"{field} is not a hex string")
    if not all(c in _HEX for c in text):
        raise ProtocolError(f"{field} is not hex")
    if not is_hex(text):
        raise ProtocolError(f"{field} has an odd number of hex digits")
    value = bytes.fromhex(text)
    if length is not None and len(value) != length:
        raise ProtocolError(f"{field} must be {length} bytes ({2 * length} hex digits)")
    return value


def encode(label: bytes, purpose: int, fields: Iterable[bytes]) -> bytes:
    """`label || purpose (1 byte) || for each field: u32be(len) || field` (§12)."""
    out = bytearray(label)
    out.append(purpose)
    for f in fields:
        out += u32be(len(f))
        out += f
    return bytes(out)


def ct_equal(a: bytes, b: bytes) -> bool:
    """Constant-time equality (§12: verifiers compare REPORTDATA and hashes so)."""
    return hmac.compare_digest(a, b)
