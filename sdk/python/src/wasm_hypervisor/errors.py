"""Typed errors. Every failure of the SDK is a `HypervisorSdkError`:

- `HostError`: the host answered with an error (`{"error": {"code", "message"}}`, PROTOCOL §9);
  `code` is the host's stable code, `status` the HTTP status. A stopped guest's answer (422 with
  an encrypted result) is a `GuestStopped`, which carries the decrypted, checked result.
- `PaymentRequired`: a 402 challenge (§6b), with the parsed challenge.
- `VerifyError`: evidence, a statement, a receipt or a reference set did not verify; `kind`
  names the check, as the Rust client's `VerifyError` variants do (§12a).
- `ProtocolError`: the host's answer breaks the protocol (bad hex, a commitment that does not
  match, an envelope that does not open).
- `TransportError`: the host could not be reached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .results import ExecutionResult


class HypervisorSdkError(Exception):
    """Base class of every error the SDK raises."""


class TransportError(HypervisorSdkError):
    """The host could not be reached, or the connection broke."""


class ProtocolError(HypervisorSdkError):
    """The host's answer does not follow PROTOCOL.md (it may be tampered with)."""


class HostError(HypervisorSdkError):
    """An error answer of the host: HTTP `status`, stable `code`, human `message`."""

    def __init__(self, status: int, code: str, message: str, body: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body


class GuestStopped(HostError):
    """The guest was stopped (time or memory limit, fuel, trap): `result` is what it wrote until
    then, decrypted and checked against its commitment (and receipt on verifiable sessions)."""

    def __init__(self, status: int, code: str, message: str, result: ExecutionResult) -> None:
        super().__init__(status, code, message)
        self.result = result


class PaymentRequired(HostError):
    """A 402 challenge (PROTOCOL §6b): `challenge` is the x402 object the host sent."""

    def __init__(self, code: str, message: str, challenge: Any, headers: dict[str, str]) -> None:
        super().__init__(402, code, message, challenge)
        self.challenge = challenge
        self.headers = headers


class PaymentFailed(HypervisorSdkError):
    """The x402 client given to the SDK could not or would not pay a 402 (its spend controls,
    no matching scheme or network, a signer error); nothing was paid."""


class VerifyError(HypervisorSdkError):
    """A verification failed. `kind` is one of: `simulated`, `malformed`, `label_mismatch`,
    `bad_reference`, `host_pin_only`, `no_expected_measurement`, `unsupported`, `evidence`,
    `event_log`, `binding`, `measurement`, `reference`, `signature`, `receipt`, `card`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
