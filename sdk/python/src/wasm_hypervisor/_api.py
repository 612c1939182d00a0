"""The operations each client offers, shared by `Client` and `AsyncClient`: every method here
builds the I/O-free operation that the client's driver runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import _agents, _ops
from .crypto import ClientKey
from .owner import Sequencer
from .results import ExecutionResult
from .session import Session
from .verify import Policy, VerifiedKey


class Operations:
    """Builds operations; `policy` verifies verifiable sessions and `GET /attestation`."""

    def __init__(self, policy: Policy | None, upload_threshold: int) -> None:
        self.policy = policy or Policy()
        self.upload_threshold = upload_threshold
        self.sequencer = Sequencer()

    def session(self, key: ClientKey | None) -> _ops.Op[Session]:
        return _ops.create_session(key)

    def verifiable_session(self, key: ClientKey | None) -> _ops.Op[Session]:
        return _ops.create_verifiable_session(key, self.policy)

    def attestation(self) -> _ops.Op[VerifiedKey]:
        return _ops.attestation(self.policy)

    def execute_wasm(
        self,
        session: Session,
        wasm: bytes,
        args: Sequence[str],
        stdin: bytes | None,
        limits: Mapping[str, int] | None,
        program_kind: str | None,
        paid: bool,
    ) -> _ops.Op[ExecutionResult]:
        if paid:
            route = "/x402_execute/" + ("verifiable" if session.verifiable else "test") + "/wasm"
        else:
            route = "/verifiable/execute/wasm" if session.verifiable else "/test/execute/wasm"
        return _ops.execute(
            session, route, "encrypted_wasm", wasm, args, stdin, limits, program_kind, self.upload_threshold
        )

    def execute_python(
        self,
        session: Session,
        source: str | bytes,
        args: Sequence[str],
        stdin: bytes | None,
        limits: Mapping[str, int] | None,
        paid: bool,
    ) -> _ops.Op[ExecutionResult]:
        if paid and session.verifiable:
            raise ValueError("the paid Python route takes plain sessions only (PROTOCOL §6b)")
        if paid:
            route = "/x402_policy/unsafe/python"
        else:
            route = "/test/policy/unsafe/python" + ("/attest" if session.verifiable else "")
        code = source.encode() if isinstance(source, str) else source
        return _ops.execute(
            session, route, "encrypted_python", code, args, stdin, limits, None, self.upload_threshold
        )

    def deploy(
        self, owner: ClientKey, deployment: _agents.Deployment, session: Session | None
    ) -> _ops.Op[Any]:
        return _agents.deploy(owner, deployment, self.sequencer, session, self.upload_threshold)

    def invoke(
        self,
        name: str,
        event: Any,
        args: Sequence[str] | None,
        stdin: str | None,
        caller: ClientKey | None,
        limits: Mapping[str, int] | None,
    ) -> _ops.Op[_agents.Invocation]:
        body: dict[str, Any] = {}
        if args is not None or stdin is not None:
            if args is not None:
                body["args"] = list(args)
            if stdin is not None:
                body["stdin"] = stdin
        else:
            body["event"] = event
        if caller is not None:
            body["public_key"] = caller.public_hex
        if limits:
            body["limits"] = dict(limits)
        return _agents.invoke(name, body)

    def logs(self, owner: ClientKey, name: str) -> _ops.Op[Any]:
        return _agents.owner_request(
            owner, "GET", _agents.agent_path(name) + "/logs", "logs", name, self.sequencer
        )

    def delete(self, owner: ClientKey, name: str) -> _ops.Op[Any]:
        return _agents.owner_request(
            owner, "DELETE", _agents.agent_path(name), "delete", name, self.sequencer
        )

    def search(self, query: str, limit: int | None) -> _ops.Op[Any]:
        body: dict[str, Any] = {"query": query}
        if limit is not None:
            body["limit"] = limit
        return _ops.post_json("/search", body)
