"""What `Client` and `AsyncClient` share besides the operations: settings, the TLS channel
state, and how an operation's request becomes an httpx call."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from . import _ops, tdx, tls
from ._api import Operations
from .errors import PaymentFailed, ProtocolError, TransportError, VerifyError
from .verify import Policy

#: the largest answer the client reads (as the Rust client's cap)
MAX_RESPONSE_BYTES = 256 * 1024 * 1024


class ClientBase:
    def __init__(
        self,
        base_url: str,
        policy: Policy | None,
        timeout: float,
        upload_threshold: int,
        custom_http: bool,
        payer: Any,
        tls_binding: bool | None,
        expected_audience: str | None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        #: the official x402 SDK's client that pays 402s (None: a 402 is raised)
        self.payer = payer
        self._ops = Operations(policy, upload_threshold)
        self._timeout = timeout
        https = self.base_url.startswith("https://")
        self._tls_binding = https if tls_binding is None else tls_binding
        if self._tls_binding and not https:
            raise ValueError("tls_binding needs an https:// URL")
        if self._tls_binding and custom_http:
            # The binding pins the host's certificate in a client of its own; a client given
            # here would be replaced, or (kept) would skip the check. Say which is meant.
            raise ValueError(
                "an https:// host is bound and pinned by the SDK's own HTTP client: leave `http` "
                "out, or pass tls_binding=False to use yours over ordinary (web PKI) TLS"
            )
        self.expected_audience = expected_audience
        #: the verified channel binding of an https:// host (after the first request)
        self.channel: tls.BoundChannel | None = None
        self._audience: str | None = None

    def _accept_audience(self, audience: str) -> str:
        """The audience owner statements name: the bound channel's when there is one (the
        attested key signed it), held to `expected_audience`, then kept for this client."""
        if self.channel is not None and audience != self.channel.audience:
            raise ProtocolError("GET /host names another audience than the bound channel")
        if self.expected_audience is not None and audience != self.expected_audience:
            raise VerifyError(
                "channel", f"the host is deployment {audience}, not the pinned {self.expected_audience}"
            )
        self._audience = audience
        return audience

    @property
    def policy(self) -> Policy:
        return self._ops.policy

    def _bind_blocking(self) -> tls.BoundChannel:
        """Checks the host's channel binding (§19); blocking."""
        return tls.bind_channel(
            self.base_url, self.policy, self.expected_audience, self._fetch_collateral_blocking
        )

    def _fetch_collateral_blocking(self, quote: bytes) -> Any:
        from dcap_qvl import INTEL_PCS_URL

        return asyncio.run(tdx.fetch_collateral(self.policy.pccs_url or INTEL_PCS_URL, quote))

    def _rotated(self, e: TransportError) -> bool:
        """Whether a failure is the pinned handshake refusing a new certificate (the host's key
        rotated): then the client binds again, once."""
        return (
            self._tls_binding
            and isinstance(e.__cause__, httpx.ConnectError)
            and "CERTIFICATE_VERIFY_FAILED" in str(e)
        )

    @staticmethod
    def _response(req: _ops.Request, status: int, headers: Any, chunks: list[bytes]) -> _ops.Response:
        return _ops.Response(status, headers, b"".join(chunks))

    @staticmethod
    def _over_cap(req: _ops.Request, size: int) -> None:
        if size > MAX_RESPONSE_BYTES:
            raise TransportError(
                f"{req.method} {req.path}: the answer is larger than {MAX_RESPONSE_BYTES} bytes"
            )

    def _httpx_args(self, req: _ops.Request) -> dict[str, Any]:
        files = None
        if req.parts is not None:
            files = {k: (fn, data, ct) for k, (fn, data, ct) in req.parts.items()}
        return {
            "method": req.method,
            "url": self.base_url + req.path,
            "json": req.json if req.parts is None and req.json is not None else None,
            "files": files,
            "headers": req.headers,
            "params": req.params,
        }

    @staticmethod
    def _transport_error(req: _ops.Request, e: httpx.HTTPError) -> TransportError:
        error = TransportError(f"{req.method} {req.path}: {e}")
        error.__cause__ = e
        return error

    @staticmethod
    def _payment_failed(step: _ops.Pay, e: Exception) -> PaymentFailed:
        return PaymentFailed(f"the x402 client did not pay {step.path}: {type(e).__name__}: {e}")
