"""The operator's rules: parsing and validating the JSON document the host passes to
`configure`, and the decision procedure over request metadata.

Schema (every key optional; see rules.example.toml for a commented example):

    programs.allow   [hex SHA-256]  if non-empty, only these programs run
    programs.deny    [hex SHA-256]  these never run
    callers.allow    [hex key]      if non-empty, only these caller keys may run code
    callers.deny     [hex key]      these callers may not run code
    limits.max_program_bytes   int  refuse larger programs
    limits.max_input_bytes     int  refuse larger inputs (arguments + stdin)
    limits.max_arguments       int  refuse more arguments
    limits.max_time_ms         int  run with at most this time limit (tightens, never refuses)
    limits.max_memory_bytes    int  run with at most this memory limit (tightens)
    limits.max_fuel            int  run with at most this fuel (tightens)
    python.enabled             bool refuse every Python script when false
    python.max_source_bytes    int  refuse longer scripts
    routes.<path>.enabled          bool  refuse the route when false
    routes.<path>.require_payment  bool  refuse unpaid requests on the route
    routes.<path>.min_amount       str   refuse payments below this amount (atomic units)
    reuse_ms                   int  how long the host may reuse a decision for requests with
                                    identical metadata (default 10000; 0 = ask every time).
                                    Safe because these rules never depend on the time.

A hex key is the caller's P-256 public key, SEC1 uncompressed (130 hex digits).
"""

import json
import re

_HASH = re.compile(r"[0-9a-f]{64}")
_KEY = re.compile(r"04[0-9a-f]{128}")

_SCHEMA = {
    "programs": {"allow": list, "deny": list},
    "callers": {"allow": list, "deny": list},
    "limits": {
        "max_program_bytes": int,
        "max_input_bytes": int,
        "max_arguments": int,
        "max_time_ms": int,
        "max_memory_bytes": int,
        "max_fuel": int,
    },
    "python": {"enabled": bool, "max_source_bytes": int},
    "riscv": {"enabled": bool},
    "routes": dict,
    "reuse_ms": int,
}
_ROUTE_SCHEMA = {"enabled": bool, "require_payment": bool, "min_amount": str}


class RulesError(ValueError):
    """The rules document is invalid; the message names the offending key."""


def _check_table(where, table, schema):
    if not isinstance(table, dict):
        raise RulesError(f"{where} must be a table")
    for key, value in table.items():
        if key not in schema:
            known = ", ".join(sorted(schema))
            raise RulesError(f"unknown key {where}.{key} (known: {known})")
        want = schema[key]
        if isinstance(want, dict):
            _check_table(f"{where}.{key}", value, want)
        elif want is int:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise RulesError(f"{where}.{key} must be a non-negative integer")
        elif not isinstance(value, want):
            raise RulesError(f"{where}.{key} must be a {want.__name__}")


def _hex_set(where, values, pattern):
    out = set()
    for i, v in enumerate(values):
        if not isinstance(v, str) or not pattern.fullmatch(v.lower()):
            raise RulesError(f"{where}[{i}] is not a valid hex value")
        out.add(v.lower())
    return frozenset(out)


class Route:
    __slots__ = ("enabled", "require_payment", "min_amount")

    def __init__(self, where, table):
        _check_table(where, table, _ROUTE_SCHEMA)
        self.enabled = table.get("enabled", True)
        self.require_payment = table.get("require_payment", False)
        amount = table.get("min_amount", "0")
        if not amount.isdigit():
            raise RulesError(f"{where}.min_amount must be a decimal string of digits")
        self.min_amount = int(amount)


_OPEN_ROUTE = Route("default", {})
_UNCAPPED = (None, None, None)


class Rules:
    """A validated rules document, indexed for fast evaluation."""

    def __init__(self, text):
        try:
            doc = json.loads(text) if text.strip() else {}
        except ValueError as e:
            raise RulesError(f"rules are not valid JSON: {e}") from None
        _check_table("rules", doc, _SCHEMA)
        programs = doc.get("programs", {})
        callers = doc.get("callers", {})
        limits = doc.get("limits", {})
        python = doc.get("python", {})
        self.program_allow = _hex_set("programs.allow", programs.get("allow", []), _HASH)
        self.program_deny = _hex_set("programs.deny", programs.get("deny", []), _HASH)
        self.caller_allow = _hex_set("callers.allow", callers.get("allow", []), _KEY)
        self.caller_deny = _hex_set("callers.deny", callers.get("deny", []), _KEY)
        self.max_program_bytes = limits.get("max_program_bytes", 0)
        self.max_input_bytes = limits.get("max_input_bytes", 0)
        self.max_arguments = limits.get("max_arguments", 0)
        self.max_time_ms = limits.get("max_time_ms", 0)
        self.max_memory_bytes = limits.get("max_memory_bytes", 0)
        self.max_fuel = limits.get("max_fuel", 0)
        self.python_enabled = python.get("enabled", True)
        self.max_source_bytes = python.get("max_source_bytes", 0)
        self.riscv_enabled = doc.get("riscv", {}).get("enabled", True)
        self.reuse_ms = doc.get("reuse_ms", 10_000)
        if self.reuse_ms > 2**32 - 1:
            raise RulesError("reuse_ms must be below 2**32")
        self.routes = {
            path: Route(f"routes.{path}", table)
            for path, table in doc.get("routes", {}).items()
        }

    def decide(self, r, python_kind, riscv_kind=False):
        """Returns `None` to allow, or `(rule, reason)` to deny. `r` is a request-info;
        `python_kind` / `riscv_kind` say whether it runs a Python script / a RISC-V program."""
        route = self.routes.get(r.route, _OPEN_ROUTE)
        if not route.enabled:
            return ("routes.enabled", f"route {r.route} is disabled by the operator")
        if route.require_payment and r.payment is None:
            return ("routes.require_payment", f"route {r.route} requires a payment")
        if r.payment is not None and route.min_amount:
            if not r.payment.amount.isdigit() or int(r.payment.amount) < route.min_amount:
                return (
                    "routes.min_amount",
                    f"route {r.route} requires at least {route.min_amount} atomic units",
                )
        if r.caller_key in self.caller_deny:
            return ("callers.deny", "this caller key is refused by the operator")
        if self.caller_allow and r.caller_key not in self.caller_allow:
            return ("callers.allow", "this caller key is not on the operator's allow-list")
        if r.program_hash in self.program_deny:
            return ("programs.deny", "this program is refused by the operator")
        if self.program_allow and r.program_hash not in self.program_allow:
            return ("programs.allow", "this program is not on the operator's allow-list")
        if python_kind:
            if not self.python_enabled:
                return ("python.enabled", "Python scripts are disabled by the operator")
            if self.max_source_bytes and r.program_size > self.max_source_bytes:
                return (
                    "python.max_source_bytes",
                    f"script of {r.program_size} bytes exceeds the operator's maximum of "
                    f"{self.max_source_bytes}",
                )
        if riscv_kind and not self.riscv_enabled:
            return ("riscv.enabled", "RISC-V programs are disabled by the operator")
        if self.max_program_bytes and r.program_size > self.max_program_bytes:
            return (
                "limits.max_program_bytes",
                f"program of {r.program_size} bytes exceeds the operator's maximum of "
                f"{self.max_program_bytes}",
            )
        if self.max_input_bytes and r.input_size > self.max_input_bytes:
            return (
                "limits.max_input_bytes",
                f"inputs of {r.input_size} bytes exceed the operator's maximum of "
                f"{self.max_input_bytes}",
            )
        if self.max_arguments and r.argument_count > self.max_arguments:
            return (
                "limits.max_arguments",
                f"{r.argument_count} arguments exceed the operator's maximum of "
                f"{self.max_arguments}",
            )
        return None

    def tightened(self, limits):
        """The caps to apply, as (time_ms, memory_bytes, fuel), each `None` when uncapped."""

        if not (self.max_time_ms or self.max_memory_bytes or self.max_fuel):
            return _UNCAPPED
        return (
            _cap(limits.time_ms, self.max_time_ms),
            _cap(limits.memory_bytes, self.max_memory_bytes),
            _cap(limits.fuel, self.max_fuel),
        )


def _cap(asked, maximum):
    """The limit to impose: `maximum` when set and `asked` is above it (or unset), else None."""
    if not maximum or (asked is not None and asked <= maximum):
        return None
    return maximum
