"""What an execution gives back: the result document of PROTOCOL.md §7, decrypted and
checked against its commitment (§8), with the receipt (§14) on verifiable sessions."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

from . import _json
from .errors import ProtocolError


@dataclass(frozen=True)
class ExecutionResult:
    """A decrypted result whose commitment was recomputed and matched."""

    session_id: uuid.UUID
    #: the exact plaintext bytes of the result document (what the commitment binds)
    document: bytes
    commitment: bytes
    status: str
    exit_code: int | None
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool
    stderr_truncated: bool
    duration_us: int
    limits: dict[str, Any]
    trap: str | None = None
    fuel_consumed: int | None = None
    #: Python routes: what `main(ARGS)` returned (JSON), when it returned something
    returned: Any = None
    #: Python routes: the exception that escaped (`type`, `message`, `traceback`)
    exception: dict[str, Any] | None = None
    #: the verified receipt on verifiable sessions, else None
    receipt: dict[str, Any] | None = None
    execution_id: str | None = None
    #: a paid run's decoded settlement header (x402 `SettleResponse`), else None
    settlement: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "exited" and self.exit_code == 0

    @property
    def text(self) -> str:
        """stdout as UTF-8 (invalid bytes replaced)."""
        return self.stdout.decode("utf-8", "replace")


def parse_document(
    session_id: uuid.UUID,
    plaintext: bytes,
    commitment: bytes,
    receipt: dict[str, Any] | None,
    execution_id: str | None,
    settlement: dict[str, Any] | None = None,
) -> ExecutionResult:
    try:
        doc = _json.loads(plaintext)
        return ExecutionResult(
            session_id=session_id,
            document=plaintext,
            commitment=commitment,
            status=doc["status"],
            exit_code=doc.get("exit_code"),
            stdout=base64.b64decode(doc.get("stdout", ""), validate=True),
            stderr=base64.b64decode(doc.get("stderr", ""), validate=True),
            stdout_truncated=bool(doc.get("stdout_truncated", False)),
            stderr_truncated=bool(doc.get("stderr_truncated", False)),
            duration_us=int(doc.get("duration_us", 0)),
            limits=dict(doc.get("limits", {})),
            trap=doc.get("trap"),
            fuel_consumed=doc.get("fuel_consumed"),
            returned=doc.get("returned"),
            exception=doc.get("exception"),
            receipt=receipt,
            execution_id=execution_id,
            settlement=settlement,
        )
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as e:
        raise ProtocolError(f"the result document does not parse: {e!r}") from None
