"""`{{name}}`: a handler agent for WASM Hypervisor in Python (world
`hypervisor:host/handler-agent`, `wit/`), componentized with componentize-py: an event in, a
result out, in a fresh instance per invocation. By convention both are JSON. Standard error is
the agent's log."""

import json
import sys

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.handler import Context, HandlerError


class Handler(exports.Handler):
    def handle(self, event: bytes, context: Context) -> bytes:
        try:
            parsed = json.loads(event)
        except ValueError:
            raise Err(HandlerError(code="bad_event", message="the event is not JSON"))
        name = parsed.get("name", "world") if isinstance(parsed, dict) else "world"
        print(f"{context.agent_name}: greeted {name}", file=sys.stderr)
        return json.dumps({"greeting": f"Hello, {name}!", "agent": context.agent_name,
                           "execution_id": context.execution_id}).encode()
