"""Measurement event logs in dstack's JSON form (PROTOCOL.md §12c): parsing with its limits,
replay into RTMR0-3 (runtime events' digests recomputed, never taken from the log), and the
application identity read from the first runtime events before `system-ready`."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

import rfc8785

from . import _json
from ._bytes import is_hex
from .errors import VerifyError

RUNTIME_EVENT = 0x08000001
MAX_TEXT = 4 * 1024 * 1024
MAX_EVENTS = 4096
MAX_NAME = 256
MAX_PAYLOAD = 64 * 1024
IDENTITY_EVENTS = (
    "compose-hash",
    "app-id",
    "instance-id",
    "key-provider",
    "os-image-hash",
    "hypervisor-host-sha256",
)


@dataclass(frozen=True)
class Event:
    imr: int
    event_type: int
    digest: bytes  # recomputed for runtime events
    name: str
    payload: bytes

    @property
    def runtime(self) -> bool:
        return self.imr == 3 and self.event_type == RUNTIME_EVENT


@dataclass
class Replay:
    rtmrs: list[bytes]
    #: which of RTMR0-3 the log has at least one event for
    touched: list[bool]
    #: first payload of each identity event before the first `system-ready`
    identity: dict[str, bytes] = field(default_factory=dict)


def _fail(index: int, what: str) -> VerifyError:
    return VerifyError("event_log", f"event {index}: {what}")


def _hex(index: int, name: str, value: object, limit: int) -> bytes:
    if not isinstance(value, str):
        raise _fail(index, f"`{name}` is not a hex string")
    if len(value) > 2 * limit:
        raise _fail(index, f"`{name}` is longer than {limit} bytes")
    if not is_hex(value):
        raise _fail(index, f"`{name}` is not hex")
    return bytes.fromhex(value)


def runtime_digest(name: str, payload: bytes, version: int) -> tuple[bytes, bytes]:
    """(preimage, SHA-384) of a runtime event, v1 or v2 (§12c)."""
    if version == 1:
        pre = struct.pack("<I", RUNTIME_EVENT) + b":" + name.encode() + b":" + payload
    else:
        pre = rfc8785.dumps({"name": name, "payload": payload.hex(), "type": RUNTIME_EVENT})
    return pre, hashlib.sha384(pre).digest()


def parse(text: str) -> list[Event]:
    """Parses the JSON form; every limit and rule of §12c refuses the log naming the event."""
    try:
        size = len(text.encode())
    except UnicodeError:
        raise VerifyError("event_log", "the log is not valid UTF-8 text") from None
    if size > MAX_TEXT:
        raise VerifyError("event_log", f"the log is larger than {MAX_TEXT} bytes")
    try:
        raw = _json.loads(text)
    except (ValueError, RecursionError) as e:
        raise VerifyError("event_log", f"the log is not JSON: {e}") from None
    if not isinstance(raw, list):
        raise VerifyError("event_log", "the log is not a JSON array")
    if len(raw) > MAX_EVENTS:
        raise VerifyError("event_log", f"the log has more than {MAX_EVENTS} events")
    events = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise _fail(i, "not an object")
        imr, etype = item.get("imr"), item.get("event_type")
        if type(imr) is not int or not 0 <= imr <= 3:
            raise _fail(i, "`imr` must be an integer 0-3")
        if type(etype) is not int or not 0 <= etype < 2**32:
            raise _fail(i, "`event_type` must be a 32-bit integer")
        name = item.get("event")
        if not isinstance(name, str):
            raise _fail(i, "`event` is required (a string)")
        try:
            name.encode()
        except UnicodeError:
            raise _fail(i, "`event` is not valid UTF-8") from None
        if len(name.encode()) > MAX_NAME:
            raise _fail(i, f"`event` is longer than {MAX_NAME} bytes")
        if "event_payload" not in item:
            raise _fail(i, "`event_payload` is required")
        payload = _hex(i, "event_payload", item["event_payload"], MAX_PAYLOAD)
        supplied = _hex(i, "digest", item.get("digest", ""), 48)
        runtime = imr == 3 and etype == RUNTIME_EVENT
        if imr == 3 and not runtime:
            raise _fail(i, "an RTMR3 event that is not a runtime event (type 0x08000001)")
        if runtime:
            version = item.get("version", 1)
            if version not in (1, 2) or type(version) is not int:
                raise _fail(i, f"runtime digest version {version!r} is not 1 or 2")
            if version == 1 and ":" in name:
                raise _fail(i, "a v1 runtime event name holds ':'")
            pre, digest = runtime_digest(name, payload, version)
            if supplied and supplied != digest:
                raise _fail(i, f"`{name}`: the supplied digest is not the event's")
            if "preimage" in item and _hex(i, "preimage", item["preimage"], MAX_TEXT) != pre:
                raise _fail(i, f"`{name}`: the supplied preimage is not the bytes hashed")
        else:
            if len(supplied) != 48:
                raise _fail(i, "`digest` must be 48 bytes")
            digest = supplied
        events.append(Event(imr, etype, digest, name, payload))
    return events


def replay(events: list[Event]) -> Replay:
    rtmrs = [bytes(48)] * 4
    touched = [False] * 4
    identity: dict[str, bytes] = {}
    ready = False
    for e in events:
        rtmrs[e.imr] = hashlib.sha384(rtmrs[e.imr] + e.digest).digest()
        touched[e.imr] = True
        if e.runtime and not ready:
            if e.name == "system-ready":
                ready = True
            elif e.name in IDENTITY_EVENTS and e.name not in identity:
                identity[e.name] = e.payload
    host = identity.get("hypervisor-host-sha256")
    if host is not None and len(host) != 32:
        raise VerifyError("event_log", "the first hypervisor-host-sha256 payload is not 32 bytes")
    return Replay(rtmrs, touched, identity)
