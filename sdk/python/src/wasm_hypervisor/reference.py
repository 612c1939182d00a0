"""Reference value sets (PROTOCOL.md §12b): decoding with every rule of the spec, the digest
(SHA-256 of the RFC 8785 canonical JSON of the set as decoded) and the comparison with what a
platform measured, in the spec's order and with its messages."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rfc8785

from ._bytes import ct_equal, is_hex
from .errors import VerifyError

TEES = ("tdx", "sev-snp", "simulated")
_STATUS = re.compile(r"[A-Za-z0-9]{1,64}")
_SNP_PART = re.compile(r" *[0-9]{1,3} *")


@dataclass(frozen=True)
class ReferenceSet:
    """One decoded set; `digest` names it (grants sign it, §18)."""

    name: str
    tee: str
    tdx: dict[str, Any] | None
    sev_snp: dict[str, Any] | None
    host_measurements: tuple[str, ...]
    tdx_statuses: tuple[str, ...] = ()
    snp_minimum: tuple[int, int, int, int] | None = None
    canonical: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return hashlib.sha256(rfc8785.dumps(self.canonical)).hexdigest()

    def label(self, position: int) -> str:
        return self.name or f"#{position}"


def _refuse(label: str, what: str) -> VerifyError:
    return VerifyError("bad_reference", f"reference set `{label}`: {what}")


def _hex(label: str, field_name: str, value: object, lo: int, hi: int | None = None) -> str:
    hi = lo if hi is None else hi
    if not isinstance(value, str) or not value or not all(c in "0123456789abcdefABCDEF" for c in value):
        raise _refuse(label, f"`{field_name}` is not hex")
    if not is_hex(value) or not lo <= len(value) // 2 <= hi:
        size = f"{lo} bytes ({2 * lo} hex digits)" if lo == hi else f"{lo} to {hi} bytes"
        raise _refuse(label, f"`{field_name}` must be {size}")
    return value.lower()


def _fields(label: str, where: str, obj: object, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _refuse(label, f"`{where}` must be an object")
    for k in obj:
        if k not in allowed:
            raise _refuse(label, f"unknown field `{where + '.' if where else ''}{k}`")
    for k, v in obj.items():
        if v is None:
            raise _refuse(label, f"`{k}` is null (leave it out)")
    return obj


def decode(raw: object, position: int = 0) -> ReferenceSet:
    """Decodes one set as §12b says, refusing with a message that names the set and field."""
    label = f"#{position}"
    s = _fields(label, "", raw, {"version", "name", "tee", "tdx", "sev_snp", "host_measurements", "tcb"})
    name = s.get("name", "")
    if not isinstance(name, str):
        raise _refuse(label, "`name` must be a string")
    if len(name.encode()) > 200 or any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name):
        raise _refuse(label, "`name` is longer than 200 bytes or holds a control character")
    label = name or label
    if s.get("version") != 1 or type(s.get("version")) is not int:
        raise _refuse(label, "`version` must be 1")
    tee = s.get("tee")
    if tee not in TEES:
        raise _refuse(label, f"`tee` must be one of {', '.join(TEES)}")
    canonical: dict[str, Any] = {"version": 1, "tee": tee}
    if name:
        canonical["name"] = name
    tdx: dict[str, Any] | None = None
    snp: dict[str, Any] | None = None
    if tee in ("tdx", "simulated"):
        if "sev_snp" in s or "tdx" not in s:
            raise _refuse(label, f"a `{tee}` set has a `tdx` section and no `sev_snp` section")
        t = _fields(label, "tdx", s["tdx"], {"mrtd", "rtmr0", "rtmr1", "rtmr2", "app"})
        regs: dict[str, Any] = {
            r: _hex(label, f"tdx.{r}", t.get(r), 48) for r in ("mrtd", "rtmr0", "rtmr1", "rtmr2")
        }
        app = _fields(label, "tdx.app", t.get("app"), {"compose_hash", "app_id", "host_event"})
        capp: dict[str, Any] = {}
        if "compose_hash" in app:
            capp["compose_hash"] = _hex(label, "tdx.app.compose_hash", app["compose_hash"], 32)
        if "app_id" in app:
            capp["app_id"] = _hex(label, "tdx.app.app_id", app["app_id"], 1, 64)
        host_event = app.get("host_event", False)
        if not isinstance(host_event, bool):
            raise _refuse(label, "`tdx.app.host_event` must be a boolean")
        if host_event:
            capp["host_event"] = True
        if "compose_hash" not in capp and not host_event:
            raise _refuse(label, "`tdx.app` pins neither `compose_hash` nor `host_event`")
        regs["app"] = capp
        canonical["tdx"] = tdx = regs
    else:
        if "tdx" in s or "sev_snp" not in s:
            raise _refuse(label, "an `sev-snp` set has a `sev_snp` section and no `tdx` section")
        n = _fields(label, "sev_snp", s["sev_snp"], {"measurement", "host_data", "id_key_digest"})
        snp = {"measurement": _hex(label, "sev_snp.measurement", n.get("measurement"), 48)}
        if "host_data" in n:
            snp["host_data"] = _hex(label, "sev_snp.host_data", n["host_data"], 32)
        if "id_key_digest" in n:
            snp["id_key_digest"] = _hex(label, "sev_snp.id_key_digest", n["id_key_digest"], 48)
        canonical["sev_snp"] = snp
    hm = s.get("host_measurements")
    if not isinstance(hm, list) or not 1 <= len(hm) <= 32:
        raise _refuse(label, "`host_measurements` must list 1 to 32 values")
    measurements = tuple(_hex(label, "host_measurements", m, 32) for m in hm)
    canonical["host_measurements"] = list(measurements)
    statuses: tuple[str, ...] = ()
    minimum = None
    if "tcb" in s:
        tcb = _fields(label, "tcb", s["tcb"], {"tdx_statuses", "snp_minimum"})
        ctcb: dict[str, Any] = {}
        if "tdx_statuses" in tcb:
            st = tcb["tdx_statuses"]
            if tee != "tdx":
                raise _refuse(label, "`tcb.tdx_statuses` is for TDX sets only")
            if (
                not isinstance(st, list)
                or len(st) > 8
                or not all(isinstance(x, str) and _STATUS.fullmatch(x) for x in st)
            ):
                raise _refuse(
                    label, "`tcb.tdx_statuses` must list at most 8 statuses of 1-64 letters and digits"
                )
            statuses = tuple(st)
            if st:
                ctcb["tdx_statuses"] = list(st)
        if "snp_minimum" in tcb:
            if tee != "sev-snp":
                raise _refuse(label, "`tcb.snp_minimum` is for SEV-SNP sets only")
            minimum = parse_snp_tcb(label, tcb["snp_minimum"])
            ctcb["snp_minimum"] = tcb["snp_minimum"]
        if ctcb:
            canonical["tcb"] = ctcb
    return ReferenceSet(name, tee, tdx, snp, measurements, statuses, minimum, canonical)


def parse_snp_tcb(label: str, text: object) -> tuple[int, int, int, int]:
    """`"BOOTLOADER,TEE,SNP,MICROCODE"`: four decimal numbers 0-255, spaces around them allowed."""
    parts = text.split(",") if isinstance(text, str) else []
    if len(parts) != 4 or not all(_SNP_PART.fullmatch(p) for p in parts):
        raise _refuse(label, "`tcb.snp_minimum` must be four numbers 0-255: BOOTLOADER,TEE,SNP,MICROCODE")
    a, b, c, d = (int(p) for p in parts)
    if max(a, b, c, d) > 255:
        raise _refuse(label, "`tcb.snp_minimum` must be four numbers 0-255: BOOTLOADER,TEE,SNP,MICROCODE")
    return (a, b, c, d)


def load(document: object) -> list[ReferenceSet]:
    """A reference-values document: one set (object) or a list of 1 to 32 sets."""
    sets = document if isinstance(document, list) else [document]
    if not 1 <= len(sets) <= 32:
        raise VerifyError("bad_reference", "a reference-values document holds 1 to 32 sets")
    return [decode(s, i) for i, s in enumerate(sets)]


def load_file(path: str | Path) -> list[ReferenceSet]:
    return load(json.loads(Path(path).read_text()))


@dataclass
class Measured:
    """What a verified platform measured (the input of the comparison)."""

    tee: str
    mrtd: bytes | None = None
    rtmrs: tuple[bytes, bytes, bytes] | None = None
    identity: dict[str, bytes] | None = None
    snp_measurement: bytes | None = None
    snp_host_data: bytes | None = None
    snp_id_key_digest: bytes | None = None
    tdx_status: str | None = None
    snp_tcb: tuple[int, int, int, int] | None = None
    host_measurement: bytes = b""


def _hex_or_none(v: bytes | None) -> str:
    return v.hex() if v is not None else "none"


def first_difference(s: ReferenceSet, m: Measured, policy_statuses: tuple[str, ...]) -> str | None:
    """The first row of §12b's table where `m` differs from `s`, or None when it matches."""

    def differs(register: str, expected: str, got: bytes | None) -> str | None:
        if got is None or not ct_equal(bytes.fromhex(expected), got):
            return f"{register} differs: expected {expected}, the evidence has {_hex_or_none(got)}"
        return None

    if s.tee != m.tee:
        return f"tee differs: expected {s.tee}, the evidence has {m.tee}"
    if s.tdx is not None:
        regs = m.rtmrs or (None, None, None)
        for reg, key, got in (
            ("MRTD", "mrtd", m.mrtd),
            ("RTMR0", "rtmr0", regs[0]),
            ("RTMR1", "rtmr1", regs[1]),
            ("RTMR2", "rtmr2", regs[2]),
        ):
            d = differs(reg, s.tdx[key], got)
            if d:
                return d
        app = s.tdx["app"]
        ident = m.identity or {}
        if "compose_hash" in app:
            d = differs("compose-hash (RTMR3 event log)", app["compose_hash"], ident.get("compose-hash"))
            if d:
                return d
        if "app_id" in app:
            d = differs("app-id (RTMR3 event log)", app["app_id"], ident.get("app-id"))
            if d:
                return d
        if app.get("host_event"):
            got = ident.get("hypervisor-host-sha256")
            if got is None or not ct_equal(got, m.host_measurement):
                return (
                    "hypervisor-host-sha256 (RTMR3 event log) vs the claimed host_measurement "
                    f"differs: expected {m.host_measurement.hex()}, the evidence has {_hex_or_none(got)}"
                )
    if s.sev_snp is not None:
        d = differs("SNP launch measurement", s.sev_snp["measurement"], m.snp_measurement)
        if d:
            return d
        if "host_data" in s.sev_snp:
            d = differs("SNP HOST_DATA", s.sev_snp["host_data"], m.snp_host_data)
            if d:
                return d
        if "id_key_digest" in s.sev_snp:
            d = differs("SNP ID key digest", s.sev_snp["id_key_digest"], m.snp_id_key_digest)
            if d:
                return d
    if not any(ct_equal(bytes.fromhex(h), m.host_measurement) for h in s.host_measurements):
        return (
            f"host_measurement (claimed by the host) differs: expected one of "
            f"{', '.join(s.host_measurements)}, the evidence has {m.host_measurement.hex()}"
        )
    if s.tee == "tdx":
        allowed = s.tdx_statuses or policy_statuses
        if m.tdx_status not in allowed:
            return (
                f"TDX TCB status differs: expected one of {', '.join(allowed) or 'none'}, "
                f"the evidence has {m.tdx_status or 'none'}"
            )
    if s.snp_minimum is not None:
        got_tcb = m.snp_tcb
        if got_tcb is None or any(g < w for g, w in zip(got_tcb, s.snp_minimum, strict=True)):
            return (
                f"SNP reported TCB differs: expected at least {','.join(map(str, s.snp_minimum))}, "
                f"the evidence has {','.join(map(str, got_tcb)) if got_tcb else 'none'}"
            )
    return None


def match(sets: list[ReferenceSet], m: Measured, policy_statuses: tuple[str, ...]) -> ReferenceSet:
    """The first set that matches, or VerifyError(reference) with each set's first difference."""
    differences = []
    for i, s in enumerate(sets):
        d = first_difference(s, m, policy_statuses)
        if d is None:
            return s
        differences.append(f"reference set `{s.label(i)}`: {d}")
    raise VerifyError(
        "reference",
        "the platform's measurements match no pinned reference set: " + "; ".join(differences),
    )
