"""The synchronous client (httpx)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import httpx

from . import _agents, _manage, _ops, tdx, tls
from ._base import ClientBase
from .cards import VerifiedCard, verify_card
from .crypto import ClientKey
from .errors import ProtocolError, TransportError
from .results import ExecutionResult
from .session import Session
from .verify import Policy, VerifiedKey

T = TypeVar("T")


class Client(ClientBase):
    """A client of one host (`base_url`, e.g. `http://127.0.0.1:8080`).

    `policy` is what verifiable sessions and `attestation()` verify against: pin reference
    value sets there (see `Policy`). Plain sessions verify nothing about the host; use them only
    where the host is trusted by other means.

    An `https://` URL is checked as PROTOCOL §19 says before the first request: the host's
    channel binding (its attested key signs a connection of ours, under `policy`) and the
    RA-TLS evidence of its self-generated certificate, which then becomes the only certificate
    the client's connections accept (`channel`). `tls_binding=False` uses ordinary web-PKI
    TLS instead (a host behind a TLS-terminating balancer); `expected_audience` pins the
    deployment."""

    def __init__(
        self,
        base_url: str,
        policy: Policy | None = None,
        *,
        timeout: float = 120.0,
        upload_threshold: int = _ops.UPLOAD_THRESHOLD,
        http: httpx.Client | None = None,
        payer: Any = None,
        tls_binding: bool | None = None,
        expected_audience: str | None = None,
    ) -> None:
        super().__init__(
            base_url,
            policy,
            timeout,
            upload_threshold,
            http is not None,
            payer,
            tls_binding,
            expected_audience,
        )
        self._http = http or httpx.Client(timeout=timeout)
        self._bind_lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _bind(self, stale: tls.BoundChannel | None) -> None:
        """Checks the host's channel binding and pins its certificate (§19), once for
        concurrent first requests (`stale`: the binding a failed handshake was pinned to)."""
        with self._bind_lock:
            if self.channel is not None and self.channel is not stale:
                return
            self._bind_now()

    def _bind_now(self) -> None:
        bound = self._bind_blocking()
        old, self._http = (
            self._http,
            httpx.Client(timeout=self._timeout, verify=tls.pinned_context(bound.certificate)),
        )
        old.close()
        self.channel = bound

    def _send(self, req: _ops.Request) -> _ops.Response:
        if self._tls_binding and self.channel is None:
            self._bind(None)
        pinned = self.channel
        try:
            return self._send_once(req)
        except TransportError as e:
            if not self._rotated(e):
                raise
            self._bind(pinned)
            return self._send_once(req)

    def _send_once(self, req: _ops.Request) -> _ops.Response:
        try:
            with self._http.stream(**self._httpx_args(req)) as r:
                chunks: list[bytes] = []
                size = 0
                for chunk in r.iter_bytes():
                    size += len(chunk)
                    self._over_cap(req, size)
                    chunks.append(chunk)
                return self._response(req, r.status_code, r.headers, chunks)
        except httpx.HTTPError as e:
            raise self._transport_error(req, e) from e

    def _pay(self, step: _ops.Pay) -> dict[str, str] | None:
        """Payment headers for a 402, made by the official x402 SDK (`x402` on PyPI): it picks
        the requirements, applies its spend controls and signs; this SDK only carries them."""
        if self.payer is None:
            return None
        from x402.http import x402HTTPClientSync

        try:
            headers, _ = x402HTTPClientSync(self.payer).handle_402_response(
                dict(step.response.headers), step.response.content, self.base_url + step.path
            )
        except Exception as e:  # the x402 SDK raises its own error types
            raise self._payment_failed(step, e) from e
        return dict(headers)

    def _audience_value(self) -> str:
        if self._audience is None:
            info = _ops.checked(self._send(_ops.Request("GET", "/host")))
            return self._accept_audience(_ops.audience_of(info))
        return self._audience

    def _run(self, op: _ops.Op[T]) -> T:
        try:
            step = next(op)
            while True:
                if isinstance(step, _ops.FetchCollateral):
                    result: Any = asyncio.run(tdx.fetch_collateral(step.pccs_url, step.quote))
                elif isinstance(step, _ops.Pay):
                    result = self._pay(step)
                elif isinstance(step, _ops.NeedAudience):
                    result = self._audience_value()
                else:
                    result = self._send(step)
                step = op.send(result)
        except StopIteration as done:
            value: T = done.value
            return value

    # Host and attestation.

    def ping(self) -> bool:
        return self._send(_ops.Request("GET", "/ping")).status == 200

    def host(self) -> dict[str, Any]:
        """`GET /host`: audience, provider, version, RISC-V backend."""
        return self._run(_ops.host_info())

    def attestation(self) -> VerifiedKey:
        """`GET /attestation`, verified against the policy (§12a)."""
        return self._run(self._ops.attestation())

    def agent_card(self, agent: str | None = None) -> VerifiedCard:
        """The host's A2A card (or one agent's), its signature verified under the host's
        attested key, which is verified first (`attestation()`): hand `card` or `url` to the
        official A2A SDK."""
        verified = self.attestation()
        path = (
            "/.well-known/agent-card.json"
            if agent is None
            else _agents.agent_path(agent) + "/.well-known/agent-card.json"
        )
        card = self._run(_ops.get_json(path))
        if not isinstance(card, dict):
            raise ProtocolError("the agent card is not a JSON object")
        verify_card(card, verified)
        return VerifiedCard(card, verified)

    def mcp_url(self) -> str:
        """The MCP endpoint named by the host's verified card (see `agent_card`)."""
        return (self.agent_card()).mcp_url

    # Sessions and executions.

    def session(self, key: ClientKey | None = None) -> Session:
        """A plain session (§3); a fresh key unless one is given."""
        return self._run(self._ops.session(key))

    def verifiable_session(self, key: ClientKey | None = None) -> Session:
        """A verifiable session (§13): the evidence, the reference sets and the session
        statement are verified before it is returned; `VerifyError` otherwise."""
        return self._run(self._ops.verifiable_session(key))

    def execute_wasm(
        self,
        session: Session,
        wasm: bytes,
        args: Sequence[str] = (),
        stdin: bytes | None = None,
        limits: Mapping[str, int] | None = None,
        program_kind: str | None = None,
        paid: bool = False,
    ) -> ExecutionResult:
        """Runs a component (or RISC-V program) sealed to `session`; on a verifiable session
        the receipt is verified too. A stopped guest raises `GuestStopped` with its result."""
        return self._run(self._ops.execute_wasm(session, wasm, args, stdin, limits, program_kind, paid))

    def execute_python(
        self,
        session: Session,
        source: str | bytes,
        args: Sequence[str] = (),
        stdin: bytes | None = None,
        limits: Mapping[str, int] | None = None,
        paid: bool = False,
    ) -> ExecutionResult:
        """Runs a Python script sealed to `session` (§6a)."""
        return self._run(self._ops.execute_python(session, source, args, stdin, limits, paid))

    # Agents.

    def deploy(
        self, owner: ClientKey, deployment: _agents.Deployment, session: Session | None = None
    ) -> dict[str, Any]:
        """Deploys an agent, signed by `owner`; sealed when `session` (the owner's) is given."""
        return self._run(self._ops.deploy(owner, deployment, session))

    def agents(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = _ops.field_of(self._run(_ops.get_json("/agents")), "agents")
        return out

    def agent(self, name: str) -> dict[str, Any]:
        return self._run(_ops.get_object(_agents.agent_path(name)))

    def search(self, query: str, limit: int | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = _ops.field_of(self._run(self._ops.search(query, limit)), "results")
        return out

    def invoke(
        self,
        name: str,
        event: Any = None,
        *,
        args: Sequence[str] | None = None,
        stdin: str | None = None,
        caller: ClientKey | None = None,
        limits: Mapping[str, int] | None = None,
    ) -> _agents.Invocation:
        """A clear invocation of a public agent: a handler's `event`, or a CLI agent's `args`
        and `stdin`."""
        return self._run(self._ops.invoke(name, event, args, stdin, caller, limits))

    def invoke_sealed(
        self,
        session: Session,
        name: str,
        event: Any = None,
        *,
        args: Sequence[str] | None = None,
        stdin: bytes | None = None,
        code_hash: str | None = None,
        limits: Mapping[str, int] | None = None,
    ) -> ExecutionResult:
        """A sealed invocation (§17); the commitment and receipt bind `code_hash`. Pass the code
        hash you expect (your deployment's answer, an audit): by default it is the one the host
        lists for the agent's latest version, which proves the result is that listing's code,
        not that the listing is what you meant to run."""
        return self._run(_agents.invoke_sealed(session, name, code_hash, event, args, stdin, limits))

    def logs(self, owner: ClientKey, name: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = _ops.field_of(self._run(self._ops.logs(owner, name)), "logs")
        return out

    def delete(self, owner: ClientKey, name: str) -> None:
        self._run(self._ops.delete(owner, name))

    # Owner operations (PROTOCOL §18, §23): signed by `owner`; sealed values go under `session`
    # (a session of the owner's key; a new plain one when not given).

    def grants(self, owner: ClientKey, name: str) -> dict[str, Any]:
        """The agent's grants (`read-grants`)."""
        return self._run(_manage.read(owner, name, "/grants", "read-grants", self._ops.sequencer))

    def set_grants(self, owner: ClientKey, name: str, grants: Mapping[str, Any]) -> dict[str, Any]:
        """Replaces the agent's grants (§18), signed over the grants detail."""
        return self._run(_manage.set_grants(owner, name, grants, self._ops.sequencer))

    def calls(self, owner: ClientKey, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The agent's outgoing calls, newest first (§18)."""
        params = None if limit is None else {"limit": str(limit)}
        out: list[dict[str, Any]] = _ops.field_of(
            self._run(_manage.read(owner, name, "/calls", "calls", self._ops.sequencer, params)),
            "calls",
        )
        return out

    def wallet(self, owner: ClientKey, name: str) -> dict[str, Any]:
        """The agent's wallet without its key: address, policy, spends (`read-wallet`)."""
        return self._run(_manage.read(owner, name, "/wallet", "read-wallet", self._ops.sequencer))

    def set_wallet(
        self,
        owner: ClientKey,
        name: str,
        key: bytes,
        policy: Mapping[str, Any],
        *,
        address: str | None = None,
        session: Session | None = None,
    ) -> dict[str, Any]:
        """Attaches a secp256k1 wallet (32-byte key, sealed to the owner's session) and its
        spending policy (§18). `address` defaults to the key's EVM address (needs
        `eth-account`, installed with the `x402` extra)."""
        if address is None:
            from eth_account import Account

            address = str(Account.from_key(key).address)
        return self._run(
            _manage.set_wallet(owner, session, name, key, address, policy, self._ops.sequencer, self.policy)
        )

    def config(self, owner: ClientKey, name: str) -> list[dict[str, Any]]:
        """The configuration's entries: names, versions, value hashes; never values."""
        out: list[dict[str, Any]] = _ops.field_of(
            self._run(_manage.read(owner, name, "/config", "read-config", self._ops.sequencer)),
            "entries",
        )
        return out

    def set_config(
        self,
        owner: ClientKey,
        name: str,
        set: Mapping[str, str] | None = None,
        remove: Sequence[str] = (),
        *,
        session: Session | None = None,
    ) -> list[dict[str, Any]]:
        """Sets and removes configuration values and secrets (§23.2), sealed and signed."""
        out: list[dict[str, Any]] = _ops.field_of(
            self._run(
                _manage.set_config(owner, session, name, set or {}, remove, self._ops.sequencer, self.policy)
            ),
            "entries",
        )
        return out

    def export_state(self, owner: ClientKey, name: str, *, session: Session | None = None) -> dict[str, Any]:
        """The agent's state, sealed to the owner's session and opened here (§23.3)."""
        return self._run(_manage.export_state(owner, session, name, self._ops.sequencer, self.policy))

    def import_state(
        self,
        owner: ClientKey,
        name: str,
        state: Mapping[str, Any],
        *,
        replace: bool = False,
        session: Session | None = None,
    ) -> dict[str, Any]:
        """Puts an exported state back, merged or replacing (§23.3)."""
        return self._run(
            _manage.import_state(owner, session, name, state, replace, self._ops.sequencer, self.policy)
        )

    def wipe_state(self, owner: ClientKey, name: str) -> int:
        """Removes every key of every bucket; the number removed."""
        return int(
            _ops.field_of(
                self._run(_manage.wipe_state(owner, name, self._ops.sequencer)), "keys_removed", int
            )
        )

    def execution(self, reader: ClientKey, execution_id: str) -> dict[str, Any]:
        """One execution record, readable by the key that ran it and the agent's owner."""
        return self._run(_manage.execution(reader, execution_id, self._ops.sequencer))

    def executions(
        self, reader: ClientKey, since_ms: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The records `reader` may read, oldest first."""
        params = {k: str(v) for k, v in (("since_ms", since_ms), ("limit", limit)) if v is not None}
        out: list[dict[str, Any]] = (self._run(_manage.execution(reader, None, self._ops.sequencer, params)))[
            "executions"
        ]
        return out
