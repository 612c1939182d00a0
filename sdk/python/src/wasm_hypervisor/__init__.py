"""Python SDK of WASM Hypervisor: encrypted, verified execution on a confidential host.

The normative protocol is `docs/PROTOCOL.md` of the repository; this package implements its
client side: sessions (plain and verifiable), encrypted executions of WebAssembly components
and Python scripts with their commitments and receipts checked, attestation verification
against pinned reference value sets, and agents (deploy, invoke, search, logs, delete).
"""

from ._agents import Deployment, Invocation
from .aio import AsyncClient
from .cards import VerifiedCard
from .client import Client
from .crypto import ClientKey, Role
from .errors import (
    GuestStopped,
    HostError,
    HypervisorSdkError,
    PaymentFailed,
    PaymentRequired,
    ProtocolError,
    TransportError,
    VerifyError,
)
from .js import JsSource
from .reference import ReferenceSet
from .results import ExecutionResult
from .session import Session
from .verify import Policy, VerifiedKey

__all__ = [
    "AsyncClient",
    "Client",
    "ClientKey",
    "Deployment",
    "ExecutionResult",
    "GuestStopped",
    "HostError",
    "Invocation",
    "JsSource",
    "PaymentFailed",
    "HypervisorSdkError",
    "PaymentRequired",
    "Policy",
    "ProtocolError",
    "ReferenceSet",
    "Role",
    "Session",
    "TransportError",
    "VerifiedCard",
    "VerifiedKey",
    "VerifyError",
]
