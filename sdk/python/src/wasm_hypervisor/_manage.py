"""An owner's operations on a deployed agent beyond deploy and delete (PROTOCOL.md §18, §23):
grants, wallet, configuration and secrets, state export, import and wipe, and reading execution
records. Each is signed by the owner (§17); sealed values travel under the owner's session."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from . import _json
from . import owner as owner_mod
from ._agents import agent_path
from ._bytes import from_hex
from ._ops import Op, Request, _audience, checked, field_of
from .crypto import ClientKey, Role
from .errors import ProtocolError
from .session import Session
from .verify import Policy


def _signed_body(
    owner: ClientKey, action: str, name: str, detail: str, seq: owner_mod.Sequencer
) -> Op[dict[str, Any]]:
    audience = yield from _audience()
    sequence = seq.next()
    signature, signed_at = owner_mod.signed(owner, audience, action, name, detail, sequence)
    return {"signature": signature.hex(), "signed_at": signed_at, "sequence": sequence}


def owner_session(owner: ClientKey, session: Session | None, policy: Policy) -> Op[Session]:
    """The owner's session to seal secrets to: the one given (it must be the owner's key's),
    else a new **verifiable** one (§13: only code in the attested TEE then holds the other half
    of the key; a plain session's key could be anyone's on an unauthenticated path)."""
    if session is None:
        from ._ops import create_verifiable_session

        session = yield from create_verifiable_session(owner, policy)
    if session.key.public_bytes != owner.public_bytes:
        raise ValueError("sealed owner operations go under a session of the owner's key")
    return session


def _owner_session(owner: ClientKey, session: Session) -> dict[str, str]:
    return {"public_key": owner.public_hex, "session_id": str(session.id)}


def read(
    owner: ClientKey,
    name: str,
    path: str,
    action: str,
    seq: owner_mod.Sequencer,
    params: dict[str, str] | None = None,
) -> Op[Any]:
    """A signed read (`read-grants`, `calls`, `read-wallet`, `read-config`): empty detail."""
    audience = yield from _audience()
    headers = owner_mod.owner_headers(owner, audience, action, name, seq.next())
    resp = yield Request("GET", agent_path(name) + path, headers=headers, params=params)
    return checked(resp)


def set_grants(owner: ClientKey, name: str, grants: Mapping[str, Any], seq: owner_mod.Sequencer) -> Op[Any]:
    body = yield from _signed_body(owner, "grants", name, owner_mod.grants_detail(grants), seq)
    resp = yield Request(
        "PUT",
        agent_path(name) + "/grants",
        json=dict(body, grants=dict(grants)),
        headers={"x-agent-owner": owner.public_hex},
    )
    return checked(resp)


def set_wallet(
    owner: ClientKey,
    session: Session | None,
    name: str,
    key: bytes,
    address: str,
    policy: Mapping[str, Any],
    seq: owner_mod.Sequencer,
    verify_policy: Policy,
) -> Op[Any]:
    """Attaches a secp256k1 wallet key (32 bytes), sealed (role wallet-key), with its policy."""
    if len(key) != 32:
        raise ValueError("a wallet key is a 32-byte secp256k1 scalar")
    session = yield from owner_session(owner, session, verify_policy)
    body = yield from _signed_body(owner, "wallet", name, owner_mod.wallet_detail(address, policy), seq)
    body.update(_owner_session(owner, session))
    body.update(
        encrypted_key=session.envelopes.seal(Role.WALLET_KEY, key).hex(), address=address, policy=dict(policy)
    )
    resp = yield Request(
        "PUT", agent_path(name) + "/wallet", json=body, headers={"x-agent-owner": owner.public_hex}
    )
    return checked(resp)


def set_config(
    owner: ClientKey,
    session: Session | None,
    name: str,
    set_values: Mapping[str, str],
    remove: Sequence[str],
    seq: owner_mod.Sequencer,
    policy: Policy,
) -> Op[Any]:
    """A configuration change (§23.2), sealed (role agent-config) and signed over its SHA-256."""
    session = yield from owner_session(owner, session, policy)
    change: dict[str, Any] = {}
    if set_values:
        change["set"] = dict(set_values)
    if remove:
        change["remove"] = list(remove)
    plain = json.dumps(change, separators=(",", ":")).encode()
    body = yield from _signed_body(owner, "config", name, hashlib.sha256(plain).hexdigest(), seq)
    body.update(_owner_session(owner, session))
    body["encrypted_config"] = session.envelopes.seal(Role.AGENT_CONFIG, plain).hex()
    resp = yield Request(
        "PUT", agent_path(name) + "/config", json=body, headers={"x-agent-owner": owner.public_hex}
    )
    return checked(resp)


def export_state(
    owner: ClientKey, session: Session | None, name: str, seq: owner_mod.Sequencer, policy: Policy
) -> Op[dict[str, Any]]:
    """The agent's whole state, sealed to the owner's session (role state-export), opened here:
    `{"agent", "exported_at_ms", "buckets": {bucket: {key: base64 value}}}`."""
    session = yield from owner_session(owner, session, policy)
    body = yield from _signed_body(owner, "export-state", name, "", seq)
    body.update(_owner_session(owner, session))
    resp = yield Request(
        "POST", agent_path(name) + "/state/export", json=body, headers={"x-agent-owner": owner.public_hex}
    )
    answer = checked(resp)
    sealed = from_hex("encrypted_state", field_of(answer, "encrypted_state", str))
    plain = session.envelopes.open(Role.STATE_EXPORT, sealed, field="encrypted_state")
    try:
        doc = _json.loads(plain)
    except (ValueError, RecursionError):
        raise ProtocolError("the exported state is not JSON") from None
    if not isinstance(doc, dict) or doc.get("agent") != name:
        raise ProtocolError("the exported state is not this agent's")
    return doc


def import_state(
    owner: ClientKey,
    session: Session | None,
    name: str,
    state: Mapping[str, Any],
    replace: bool,
    seq: owner_mod.Sequencer,
    policy: Policy,
) -> Op[Any]:
    """Puts an export's document back (role state-import), merged or replacing (§23.3)."""
    session = yield from owner_session(owner, session, policy)
    plain = json.dumps(state, separators=(",", ":")).encode()
    detail = hashlib.sha256(plain).hexdigest() + "\nreplace=" + ("true" if replace else "false")
    body = yield from _signed_body(owner, "import-state", name, detail, seq)
    body.update(_owner_session(owner, session))
    body.update(encrypted_state=session.envelopes.seal(Role.STATE_IMPORT, plain).hex(), replace=replace)
    resp = yield Request(
        "POST", agent_path(name) + "/state/import", json=body, headers={"x-agent-owner": owner.public_hex}
    )
    return checked(resp)


def wipe_state(owner: ClientKey, name: str, seq: owner_mod.Sequencer) -> Op[Any]:
    audience = yield from _audience()
    headers = owner_mod.owner_headers(owner, audience, "wipe-state", name, seq.next())
    resp = yield Request("DELETE", agent_path(name) + "/state", headers=headers)
    return checked(resp)


def execution(
    reader: ClientKey,
    execution_id: str | None,
    seq: owner_mod.Sequencer,
    params: dict[str, str] | None = None,
) -> Op[Any]:
    """`GET /executions/{id}` (or the listing), signed `read-executions` by the key that ran it
    or the agent's owner (§17)."""
    canonical = str(uuid.UUID(execution_id)) if execution_id else ""
    audience = yield from _audience()
    headers = owner_mod.owner_headers(reader, audience, "read-executions", canonical, seq.next())
    path = "/executions" + (f"/{canonical}" if canonical else "")
    resp = yield Request("GET", path, headers=headers, params=params)
    return checked(resp)
