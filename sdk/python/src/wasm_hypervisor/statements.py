"""What the host's attested key signs (PROTOCOL.md §12-§15) and the result commitment (§8):
REPORTDATA, the session statement, receipts, component statements."""

from __future__ import annotations

import hashlib
import struct
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ._bytes import encode, from_hex, u32be, u64be
from .errors import ProtocolError

REPORT_DATA_LABEL = b"wasm-hypervisor/v1/report-data"
STATEMENT_LABEL = b"wasm-hypervisor/v1/statement"
COMMITMENT_LABEL = b"wasm-hypervisor/v1/result-commitment"

SESSION = 0x01
RECEIPT = 0x02
COMPONENT = 0x03


SESSION_KEY_PURPOSE = 0x01
TLS_CERTIFICATE_PURPOSE = 0x02
TLS_CHANNEL = 0x04


def report_data_of(purpose: int, fields: Sequence[bytes]) -> bytes:
    """§12: `SHA-512(encode("wasm-hypervisor/v1/report-data", purpose, fields))`."""
    return hashlib.sha512(encode(REPORT_DATA_LABEL, purpose, fields)).digest()


def report_data(signing_key: bytes, host_measurement: bytes, key_created_at: int) -> bytes:
    """The REPORTDATA of an attested signing key (purpose 0x01)."""
    return report_data_of(SESSION_KEY_PURPOSE, [signing_key, host_measurement, u64be(key_created_at)])


def channel_statement(exporter: bytes, nonce: bytes, certificate_sha256: bytes, audience: str) -> bytes:
    """§19, kind 0x04: what the attested key signs for one TLS connection."""
    return statement(TLS_CHANNEL, [exporter, nonce, certificate_sha256, audience.encode()])


def statement(kind: int, fields: Sequence[bytes]) -> bytes:
    return encode(STATEMENT_LABEL, kind, fields)


def session_statement(
    session_id: uuid.UUID,
    session_pubkey: bytes,
    client_pubkey: bytes,
    created_at: int,
    expires_at: int,
) -> bytes:
    """§13, kind 0x01."""
    return statement(
        SESSION,
        [session_id.bytes, session_pubkey, client_pubkey, u64be(created_at), u64be(expires_at)],
    )


def component_statement(component_sha256: bytes, user_data: bytes) -> bytes:
    """§15, kind 0x03."""
    return statement(COMPONENT, [component_sha256, user_data])


def result_commitment(
    session_id: uuid.UUID,
    program_sha256: bytes,
    argument_sha256: Sequence[bytes],
    stdin_sha256: bytes,
    result: bytes,
) -> bytes:
    """§8, from the hashes of the inputs (so agents' code hashes fit the same equation)."""
    h = hashlib.sha256()
    h.update(COMMITMENT_LABEL + session_id.bytes + program_sha256 + u32be(len(argument_sha256)))
    for a in argument_sha256:
        h.update(a)
    h.update(stdin_sha256 + u64be(len(result)) + result)
    return h.digest()


def _hash32(field: str, value: object) -> bytes:
    return from_hex(field, value, 32)


def receipt_statement(r: Mapping[str, Any]) -> bytes:
    """§14, kind 0x02: a receipt's signed fields, in order (versions 2 and 3)."""
    try:
        version = r["version"]
        if version not in (2, 3):
            raise ProtocolError(f"receipt version {version!r} is not 2 or 3")
        limits = r["limits"]
        fuel = limits.get("fuel")
        fields = [
            uuid.UUID(r["session_id"]).bytes,
            u64be(r["sequence"]),
            r["route"].encode(),
            _hash32("program_sha256", r["program_sha256"]),
            b"".join(_hash32("argument_sha256", h) for h in r["argument_sha256"]),
            _hash32("stdin_sha256", r["stdin_sha256"]),
            _hash32("result_commitment", r["result_commitment"]),
            r["status"].encode(),
            u64be(limits["time_ms"]),
            u64be(limits["memory_bytes"]),
            u64be(fuel) if fuel is not None else b"",
            u64be(r["issued_at"]),
            (r.get("policy") or "").encode(),
            (r.get("payment") or "").encode(),
            r["tee"].encode(),
            _hash32("evidence_sha256", r["evidence_sha256"]),
        ]
        if version >= 3:
            fields.append(r["replica"].encode())
        calls = r.get("calls")
        if calls is not None:
            fields.append(
                "".join(
                    f"{c['callee']}\n{c.get('callee_execution') or '-'}\n"
                    f"{c['response_sha256']}\n{c.get('transaction') or '-'}\n"
                    for c in calls
                ).encode()
            )
    except (KeyError, TypeError, ValueError, AttributeError, struct.error, UnicodeError) as e:
        raise ProtocolError(f"malformed receipt: {e!r}") from None
    return statement(RECEIPT, fields)
