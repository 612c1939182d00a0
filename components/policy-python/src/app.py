"""The default policy and Python runtime of WASM Hypervisor, componentized with componentize-py
for the world `hypervisor:host/policy-python` (wit/policy.wit).

Two exports, used by the host in two different ways:

- `policy`: the operator's policy. The host keeps a few live instances, calls `configure` once
  with the rules document, then `evaluate` per request. No client code ever runs in them.
- `python`: runs one client script. The host uses a fresh instance for every script, so nothing
  a script does (globals, `sys.modules`, monkey-patching) outlives it or reaches the policy.

The standard-library modules importable by scripts are exactly those imported in `stdlib.py`
(componentize-py snapshots the interpreter after importing this module; nothing else exists at
run time).
"""

import builtins
import json
import linecache
import sys
import traceback
import types

import stdlib  # noqa: F401  (the scripts' module allow-list; see stdlib.py)
import wit_world
from componentize_py_types import Err
from wit_world.exports import policy as wit_policy
from wit_world.exports import python as wit_python

import lifting
from rules import Rules, RulesError

# Before componentize-py looks up the constructors that lift `evaluate`'s argument (lifting.py).
lifting.install()

# The rules in force in this instance (`configure` sets them; permissive until then is never
# observable: the host always configures before evaluating).
_rules = Rules("{}")

SCRIPT_NAME = "<script>"

# The answer to most requests, built once per `configure` (a decision is on every request's
# path).
_ALLOW = wit_policy.Decision_Allow(wit_policy.Limits(time_ms=None, memory_bytes=None, fuel=None))
_allow_verdict = wit_policy.Verdict(decision=_ALLOW, reuse_ms=_rules.reuse_ms)


class Policy(wit_world.exports.Policy):
    def configure(self, rules: str) -> None:
        global _rules, _allow_verdict
        try:
            _rules = Rules(rules)
        except RulesError as e:
            raise Err(str(e))
        _allow_verdict = wit_policy.Verdict(decision=_ALLOW, reuse_ms=_rules.reuse_ms)

    def evaluate(self, request: wit_policy.RequestInfo) -> wit_policy.Verdict:
        rules = _rules
        denied = rules.decide(
            request, request.kind is lifting.PYTHON_SCRIPT, request.kind is lifting.RISCV_PROGRAM
        )
        if denied is not None:
            rule, reason = denied
            decision = wit_policy.Decision_Deny(wit_policy.Denial(rule=rule, reason=reason))
            return wit_policy.Verdict(decision=decision, reuse_ms=rules.reuse_ms)
        time_ms, memory_bytes, fuel = rules.tightened(request.limits)
        if time_ms is None and memory_bytes is None and fuel is None:
            return _allow_verdict
        limits = wit_policy.Limits(time_ms=time_ms, memory_bytes=memory_bytes, fuel=fuel)
        return wit_policy.Verdict(
            decision=wit_policy.Decision_Allow(limits), reuse_ms=rules.reuse_ms
        )


def _exit_code(code):
    """`SystemExit.code` to an exit status, as CPython's own `sys.exit` does."""
    if code is None:
        return 0
    if isinstance(code, bool):
        return int(code)
    if isinstance(code, int):
        return max(-(2**31), min(code, 2**31 - 1))
    print(code, file=sys.stderr)
    return 1


def _raised(exc):
    try:
        # Drop the runtime's own frame: the traceback starts in the script.
        tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
        text = "".join(traceback.format_exception(type(exc), exc, tb))
        message = str(exc)
    except BaseException:  # formatting can fail too, e.g. right at the memory limit
        text = f"{type(exc).__name__} (traceback unavailable)\n"
        message = ""
    return wit_python.ScriptResult_Raised(
        wit_python.ScriptException(kind=type(exc).__name__, message=message, traceback=text)
    )


class Python(wit_world.exports.Python):
    def run_script(self, source: str, args: list[str]) -> wit_python.ScriptResult:
        args = list(args)
        module = types.ModuleType("__main__")
        scope = module.__dict__
        scope["__builtins__"] = builtins
        scope["__file__"] = SCRIPT_NAME
        scope["ARGS"] = args
        sys.modules["__main__"] = module
        sys.argv = [SCRIPT_NAME, *args]
        # Lets tracebacks quote the script's own lines.
        linecache.cache[SCRIPT_NAME] = (len(source), None, source.splitlines(True), SCRIPT_NAME)
        try:
            code = compile(source, SCRIPT_NAME, "exec")
            exec(code, scope)
            value = None
            main = scope.get("main")
            if callable(main):
                returned = main(args)
                if returned is not None:
                    value = json.dumps(returned, allow_nan=False)
            return wit_python.ScriptResult_Returned(value)
        except SystemExit as e:
            return wit_python.ScriptResult_Exited(_exit_code(e.code))
        except BaseException as e:
            return _raised(e)
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except BaseException:
                    pass
