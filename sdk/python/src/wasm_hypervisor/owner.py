"""Owner signatures (PROTOCOL.md §17): the owner statement, the deploy detail, the sequence
numbers that order an agent's operations, and the headers of owner operations."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping
from typing import Any

import rfc8785

from .crypto import ClientKey

STATEMENT_VERSION = "wasm-hypervisor/v2/agent-owner"


def owner_message(audience: str, action: str, name: str, signed_at: int, sequence: int, detail: str) -> bytes:
    """The UTF-8 owner statement: version, audience, action, name, signing time, sequence and
    detail, one per line (no trailing newline)."""
    for part in (audience, action, name):
        if "\n" in part:
            raise ValueError("audience, action and name hold no newline")
    return "\n".join(
        [STATEMENT_VERSION, audience, action, name, str(signed_at), str(sequence), detail]
    ).encode()


def _field(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value < 0:
            raise ValueError("deployment numbers are not negative")
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return value
    raise ValueError(f"{value!r} cannot be part of a deploy detail")


def deploy_detail(component_sha256_hex: str, request: Mapping[str, Any]) -> str:
    """The deploy detail of a deployment request (its JSON fields as sent): the component's
    SHA-256 and every signed setting, `-` for a field left out."""
    limits = request.get("limits") or {}
    lines = [
        component_sha256_hex,
        "public=" + _field(request.get("public")),
        "price=" + _field(request.get("price")),
        "ttl_seconds=" + _field(request.get("ttl_seconds")),
        "limits=" + ",".join(_field(limits.get(k)) for k in ("time_ms", "memory_bytes", "fuel")),
    ]
    if request.get("charge") is not None:
        if request["charge"] not in ("success", "always"):
            raise ValueError("charge is `success` or `always`")
        lines.append("charge=" + request["charge"])
    if request.get("tariff") is not None:
        tariff = request["tariff"]
        rates = ("fixed", "per_million_fuel", "per_ms", "per_kib_out")
        lines.append("tariff=" + ",".join(_field(tariff.get(k, "0")) for k in rates))
    if request.get("grants") is not None:
        lines.append(grants_detail(request["grants"]))
    if request.get("schemas") is not None:
        lines.append("schemas=" + hashlib.sha256(rfc8785.dumps(request["schemas"])).hexdigest())
    return "\n".join(lines)


def _refs(items: Any) -> str:
    return ",".join(f"{r['name']}:{str(r['owner_key']).lower()}" for r in items or [])


def grants_detail(grants: Mapping[str, Any]) -> str:
    """§18: the four lines (then `hypervisors` and `sign_in` when present) an owner signs for
    an agent's grants; each
    hypervisor's reference sets by their digests (§12b)."""
    from .reference import decode

    callers = grants.get("callers")
    lines = [
        "agents=" + _refs(grants.get("agents")),
        "origins=" + ",".join(grants.get("origins") or []),
        "search=" + ("true" if grants.get("search") else "false"),
        "callers=" + ("-" if callers is None else _refs(callers)),
    ]
    hypervisors = grants.get("hypervisors") or []
    if hypervisors:
        entries = []
        for h in hypervisors:
            refs = ["ref:" + decode(r, i).digest for i, r in enumerate(h.get("reference_values") or [])]
            refs += [str(m).lower() for m in h.get("measurements") or []]
            entries.append(
                f"{h['origin']}|{'+'.join(refs)}|{'true' if h.get('allow_simulated') else 'false'}"
            )
        lines.append("hypervisors=" + ",".join(entries))
    sign_in = grants.get("sign_in")
    if sign_in is not None:
        wallets = ",".join(str(w).lower() for w in sign_in.get("wallets") or [])
        lines.append(f"sign_in={_field(sign_in.get('after_payment_seconds', 0))}|{wallets}")
    return "\n".join(lines)


def wallet_detail(address: str, policy: Mapping[str, Any]) -> str:
    """§18: the address and the spending policy's six lines."""
    payees = policy.get("payees")
    return "\n".join(
        [
            "address=" + address.lower(),
            "networks=" + ",".join(policy["networks"]),
            "assets=" + ",".join(a.lower() for a in policy["assets"]),
            "max_per_call=" + str(policy["max_per_call"]),
            "max_per_day=" + str(policy["max_per_day"]),
            "max_total=" + str(policy["max_total"]),
            "payees=" + ("-" if payees is None else ",".join(p.lower() for p in payees)),
        ]
    )


def value_hash(agent: str, name: str, value: str) -> str:
    """§23.2: how the host names a configuration value without returning it."""
    pre = (
        b"wasm-hypervisor/v1/config-value\0" + agent.encode() + b"\0" + name.encode() + b"\0" + value.encode()
    )
    return hashlib.sha256(pre).hexdigest()


class Sequencer:
    """Strictly increasing sequence numbers: Unix time in microseconds, pushed past the last
    value given (as the Rust client numbers them)."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1000)
            return self._last


def signed(
    owner: ClientKey, audience: str, action: str, name: str, detail: str, sequence: int
) -> tuple[bytes, int]:
    """(signature, signed_at) of an owner statement signed now."""
    signed_at = int(time.time())
    return owner.sign(owner_message(audience, action, name, signed_at, sequence, detail)), signed_at


def owner_headers(owner: ClientKey, audience: str, action: str, name: str, sequence: int) -> dict[str, str]:
    """The headers of an owner operation with an empty detail (delete, logs, …)."""
    signature, signed_at = signed(owner, audience, action, name, "", sequence)
    return {
        "x-agent-owner": owner.public_hex,
        "x-agent-signature": signature.hex(),
        "x-agent-signed-at": str(signed_at),
        "x-agent-sequence": str(sequence),
    }
