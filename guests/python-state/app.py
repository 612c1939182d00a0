"""A Python handler agent keeping state with the `agent_state` helper (agent_state.py): the
example of Python agents with state and secrets, and an agent of the end-to-end tests.

Event: a JSON object with `op`:

| `op`     | fields          | does                                                  | result |
|----------|-----------------|-------------------------------------------------------|--------|
| `visit`  | `who`           | counts a visit (`increment`) and appends `who` to the visitor list (`update`, compare-and-swap) | `{"visits": n, "visitors": [...]}` |
| `get`    | `key`           | reads a key of bucket `default`                       | `{"value": text or null}` |
| `keys`   |                 | lists bucket `default`                                | `{"keys": [...]}` |
| `config` | `name`          | reads a configuration value                           | `{"value": text or null, "names": [...]}` |

Errors (`handler-error` codes): `bad_event`, and the helper's codes (`state_quota_exceeded`,
`store`, ...).
"""

import json

import agent_state
from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.handler import Context, HandlerError


def run(event: dict) -> dict:
    op = event.get("op")
    state = agent_state.bucket()
    if op == "visit":
        who = str(event.get("who", "anonymous"))
        visits = state.increment("visits")
        visitors = state.update(
            "visitors", lambda old: json.dumps(json.loads(old or b"[]") + [who])
        )
        return {"visits": visits, "visitors": json.loads(visitors)}
    if op == "get":
        return {"value": state.get_text(str(event.get("key", "")))}
    if op == "keys":
        return {"keys": sorted(state.keys())}
    if op == "config":
        return {
            "value": agent_state.config(str(event.get("name", ""))),
            "names": sorted(agent_state.config_all()),
        }
    raise Err(HandlerError(code="bad_event", message=f"unknown op {op!r}"))


class Handler(exports.Handler):
    def handle(self, event: bytes, context: Context) -> bytes:
        try:
            parsed = json.loads(event)
        except ValueError:
            raise Err(HandlerError(code="bad_event", message="the event is not JSON"))
        if not isinstance(parsed, dict):
            raise Err(HandlerError(code="bad_event", message="the event is not a JSON object"))
        try:
            return json.dumps(run(parsed)).encode()
        except agent_state.StateError as e:
            raise Err(HandlerError(code=e.code, message=e.message))
