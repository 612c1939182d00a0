"""JSON from the host, parsed with a nesting bound.

Python's C JSON decoder recurses once per nesting level and trusts the interpreter's recursion
limit to stop it; libraries raise that limit (eth-account's stack sets it to 100 000), and then
a deeply nested answer overflows the C stack and kills the process. Everything the SDK reads
from a host goes through `loads`, which refuses nesting deeper than `MAX_DEPTH` (serde_json's
default, the host's own bound) before decoding, as a ValueError like any malformed JSON."""

from __future__ import annotations

import base64
import json
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 128
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = bytes.maketrans(b"[{]}", b"\x01\x01\x02\x02")
_OTHERS = bytes(b for b in range(256) if b not in b"[{]}")


def depth(data: bytes) -> int:
    """The deepest nesting of `[`/`{` outside strings."""
    marks = _STRINGS.sub(b"", data).translate(_BRACKETS, _OTHERS)
    if not marks:
        return 0
    return max(accumulate(1 if m == 1 else -1 for m in marks))


def loads(data: str | bytes) -> Any:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and depth(raw) > MAX_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
    return json.loads(data)


def loads_b64(value: str) -> Any:
    """JSON carried as standard base64, padded or not (x402's headers, §6b)."""
    return loads(base64.b64decode(value + "=" * (-len(value) % 4)))
