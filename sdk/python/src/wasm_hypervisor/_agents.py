"""Agents' operations (PROTOCOL.md §17): deployments signed by their owner, clear and sealed
invocations, owner requests; written without I/O like `_ops`."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import owner as owner_mod
from ._bytes import from_hex
from ._ops import (
    Inputs,
    Op,
    Request,
    _audience,
    _body_or_parts,
    checked,
    finish_sealed,
    get_json,
    send_payable,
    settlement_of,
)
from .crypto import ClientKey, Role, sha256
from .errors import ProtocolError
from .js import JsSource
from .results import ExecutionResult
from .session import Session


@dataclass
class Deployment:
    """An agent deployment (§17). `component` is the component's (or RISC-V program's) bytes.
    Settings left None are left out of the request (and signed as `-`)."""

    name: str
    component: bytes | None = None
    description: str = ""
    tags: Sequence[str] = ()
    public: bool | None = None
    price: str | None = None
    ttl_seconds: int | None = None
    limits: Mapping[str, int] | None = None
    charge: str | None = None
    #: a metered agent's tariff (x402 `upto`, §6b): `fixed`, `per_million_fuel`, `per_ms`,
    #: `per_kib_out` as decimal strings; `price` is then the most a run costs
    tariff: Mapping[str, str] | None = None
    schemas: Mapping[str, Any] | None = None
    content_type: str | None = None
    program_kind: str | None = None
    #: a JavaScript/TypeScript agent's source (§24), in place of `component`
    js: JsSource | None = None

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        if self.tags:
            out["tags"] = list(self.tags)
        for k in ("public", "price", "ttl_seconds", "charge", "content_type", "program_kind"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        if self.limits is not None:
            out["limits"] = dict(self.limits)
        if self.tariff is not None:
            out["tariff"] = dict(self.tariff)
        if self.schemas is not None:
            out["schemas"] = dict(self.schemas)
        return out


def deploy(
    owner: ClientKey,
    d: Deployment,
    sequencer: owner_mod.Sequencer,
    session: Session | None,
    threshold: int,
) -> Op[Any]:
    """Deploys in the clear (base64 `component`) or sealed to `session` (role agent-component;
    the session must be the owner's)."""
    if (d.component is None) == (d.js is None):
        raise ValueError("a deployment has either a component or a JavaScript source")
    audience = yield from _audience()
    body = d.settings()
    body["public_key"] = owner.public_hex
    sequence = sequencer.next()
    code_sha256 = d.js.sha256 if d.js is not None else hashlib.sha256(d.component or b"").digest()
    detail = owner_mod.deploy_detail(code_sha256.hex(), body)
    signature, signed_at = owner_mod.signed(owner, audience, "deploy", d.name, detail, sequence)
    body.update(signature=signature.hex(), signed_at=signed_at, sequence=sequence)
    if session is not None:
        if session.key.public_bytes != owner.public_bytes:
            raise ValueError("a sealed deployment goes under a session of the owner's key")
        body["session_id"] = str(session.id)
        if d.js is not None:
            envelope = session.envelopes.seal(Role.AGENT_JS, d.js.sealed_plaintext())
            json_body, parts = dict(body, encrypted_js=envelope.hex()), None
        else:
            envelope = session.envelopes.seal(Role.AGENT_COMPONENT, d.component or b"")
            json_body, parts = _body_or_parts(body, "encrypted_component", envelope, threshold)
    elif d.js is not None:
        json_body, parts = dict(body, js=d.js.to_json()), None
    elif d.component is not None and len(d.component) > threshold:
        json_body, parts = (
            None,
            {
                "request": (None, json.dumps(body).encode(), "application/json"),
                "component": ("component", d.component, "application/octet-stream"),
            },
        )
    else:
        json_body, parts = dict(body, component=base64.b64encode(d.component or b"").decode()), None
    resp = yield Request("POST", "/agent/deploy", json=json_body, parts=parts)
    return checked(resp)


def owner_request(
    owner: ClientKey, method: str, path: str, action: str, name: str, sequencer: owner_mod.Sequencer
) -> Op[Any]:
    audience = yield from _audience()
    headers = owner_mod.owner_headers(owner, audience, action, name, sequencer.next())
    resp = yield Request(method, path, headers=headers)
    return checked(resp)


def agent_path(name: str) -> str:
    if (
        not name
        or len(name) > 64
        or name.startswith("-")
        or not all(c.isascii() and (c.islower() or c.isdigit() or c == "-") for c in name)
    ):
        raise ValueError(f"{name!r} is not an agent name (1-64 of a-z 0-9 -, not starting with -)")
    return f"/agents/{name}"


@dataclass(frozen=True)
class Invocation:
    """A clear invocation's answer (§17) and, for a paid agent, the settlement."""

    body: dict[str, Any]
    settlement: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.body.get("ok") is True

    @property
    def result(self) -> Any:
        return self.body.get("result")

    @property
    def execution_id(self) -> str | None:
        return self.body.get("execution_id")


def invoke(name: str, body: Mapping[str, Any]) -> Op[Invocation]:
    resp = yield from send_payable(Request("POST", agent_path(name) + "/invoke", json=dict(body)))
    answer = checked(resp)
    if not isinstance(answer, dict):
        raise ProtocolError("an invocation's answer is not a JSON object")
    return Invocation(answer, settlement_of(resp))


def invoke_sealed(
    session: Session,
    name: str,
    code_hash: str | None,
    event: Any = None,
    args: Sequence[str] | None = None,
    stdin: bytes | None = None,
    limits: Mapping[str, int] | None = None,
) -> Op[ExecutionResult]:
    """A sealed invocation: a handler's event (JSON, role event) or a CLI agent's arguments and
    stdin. The commitment binds the agent's code hash: the one given, else the one the host
    lists (`GET /agents/{name}`)."""
    path = agent_path(name)
    if code_hash is None:
        agent = yield from get_json(path)
        latest = agent.get("latest") if isinstance(agent, Mapping) else None
        code_hash = latest.get("code_hash") if isinstance(latest, Mapping) else None
        if not isinstance(code_hash, str):
            raise ProtocolError(f"GET {path} lists no code hash")
    program = from_hex("code_hash", code_hash, 32)
    env = session.envelopes
    body: dict[str, Any] = {"public_key": session.key.public_hex, "session_id": str(session.id)}
    if args is None and stdin is None:
        plain = json.dumps(event, separators=(",", ":")).encode()
        body["encrypted_event"] = env.seal(Role.EVENT, plain).hex()
        inputs = Inputs(program, [], sha256(plain), path + "/invoke")
    else:
        arg_bytes = [a.encode() for a in (args or [])]
        body["encrypted_arguments"] = [env.seal(Role.ARGUMENT, a, i).hex() for i, a in enumerate(arg_bytes)]
        if stdin is not None:
            body["encrypted_stdin"] = env.seal(Role.STDIN, stdin).hex()
        inputs = Inputs(program, [sha256(a) for a in arg_bytes], sha256(stdin or b""), path + "/invoke")
    if limits:
        body["limits"] = dict(limits)
    resp = yield from send_payable(Request("POST", path + "/invoke", json=body))
    return finish_sealed(session, resp, inputs)
