"""State and configuration for Python agents on WASM Hypervisor.

A small helper over the standard interfaces the host provides to deployed agents (world
`hypervisor:host/stateful-handler-agent`, wit/state.wit): `wasi:keyvalue@0.2.0-draft2` for
state and `wasi:config/store@0.2.0-rc.1` for the variables and secrets the agent's owner set
(`hypervisor-client agent config set`). Nothing here is specific to Python: it is the same
store and configuration a Rust or JavaScript agent sees. Copy this file next to your agent's
`app.py` and build with componentize-py against that world (see guests/python-state/README.md).

    import agent_state

    cart = agent_state.bucket("cart")          # private to this agent, sealed at rest
    cart.set("item", "book")                   # str or bytes
    cart.get_text("item")                      # "book" (None when not set)
    cart.increment("visits")                   # atomic, even across replicas
    cart.update("log", lambda old: (old or b"") + b"+")   # compare-and-swap, retried
    for key in cart.keys(): ...                # every key, page by page
    agent_state.config("API_KEY")              # the owner's secret (None when not set)

Every failure of the store raises `StateError` with `code` (`no_such_store`, `access_denied`,
`state_quota_exceeded`, `store`) and the host's message.
"""

from typing import Callable, Dict, Iterator, Optional, Union

from componentize_py_types import Err
from wit_world.imports import atomics, batch, wasi_config_store, wasi_keyvalue_store

Value = Union[bytes, str]

# How many times `update` retries a compare-and-swap that lost a race before giving up.
MAX_RETRIES = 100


class StateError(Exception):
    """A key-value or configuration operation failed."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _raise(e: Err) -> StateError:
    v = e.value
    if isinstance(v, wasi_keyvalue_store.Error_NoSuchStore):
        return StateError("no_such_store", "the host has no such store")
    if isinstance(v, wasi_keyvalue_store.Error_AccessDenied):
        return StateError("access_denied", "only deployed agents keep state")
    if isinstance(v, wasi_keyvalue_store.Error_Other):
        code = "state_quota_exceeded" if v.value.startswith("state_quota_exceeded") else "store"
        return StateError(code, v.value)
    return StateError("store", repr(v))


def _bytes(value: Value) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


class Bucket:
    """One of the agent's buckets."""

    def __init__(self, name: str):
        try:
            self._bucket = wasi_keyvalue_store.open(name)
        except Err as e:
            raise _raise(e) from None
        self.name = name

    def get(self, key: str) -> Optional[bytes]:
        """The value of `key`, or None."""
        try:
            return self._bucket.get(key)
        except Err as e:
            raise _raise(e) from None

    def get_text(self, key: str) -> Optional[str]:
        """The value of `key` as UTF-8 text, or None."""
        value = self.get(key)
        return None if value is None else value.decode()

    def set(self, key: str, value: Value) -> None:
        """Sets `key` to `value` (text is stored as UTF-8)."""
        try:
            self._bucket.set(key, _bytes(value))
        except Err as e:
            raise _raise(e) from None

    def delete(self, key: str) -> None:
        """Removes `key` (nothing happens if it is not set)."""
        try:
            self._bucket.delete(key)
        except Err as e:
            raise _raise(e) from None

    def exists(self, key: str) -> bool:
        """Whether `key` is set."""
        try:
            return self._bucket.exists(key)
        except Err as e:
            raise _raise(e) from None

    def keys(self) -> Iterator[str]:
        """Every key of the bucket, following the host's cursor page by page."""
        cursor = None
        while True:
            try:
                page = self._bucket.list_keys(cursor)
            except Err as e:
                raise _raise(e) from None
            yield from page.keys
            if page.cursor is None:
                return
            cursor = page.cursor

    def get_many(self, keys: list) -> Dict[str, Optional[bytes]]:
        """The values of `keys` (None for each key not set)."""
        try:
            return dict(batch.get_many(self._bucket, list(keys)))
        except Err as e:
            raise _raise(e) from None

    def increment(self, key: str, delta: int = 1) -> int:
        """Adds `delta` to the counter at `key` (absent: 0) atomically; the new value. A
        counter is 8 bytes, little-endian: read it with `int.from_bytes(v, "little",
        signed=True)`."""
        try:
            return atomics.increment(self._bucket, key, delta)
        except Err as e:
            raise _raise(e) from None

    def update(self, key: str, change: Callable[[Optional[bytes]], Value]) -> bytes:
        """Replaces the value of `key` by `change(old)` (old is None when not set) with
        compare-and-swap, calling `change` again whenever another invocation changed the value
        in between; the value written."""
        try:
            cas = atomics.Cas.new(self._bucket, key)
        except Err as e:
            raise _raise(e) from None
        for _ in range(MAX_RETRIES):
            new = _bytes(change(cas.current()))
            try:
                atomics.swap(cas, new)
                return new
            except Err as e:
                if isinstance(e.value, atomics.CasError_CasFailed):
                    cas = e.value.value
                    continue
                raise _raise(Err(e.value.value)) from None
        raise StateError("store", f"{key!r} kept changing: gave up after {MAX_RETRIES} tries")


def bucket(name: str = "default") -> Bucket:
    """Opens the agent's bucket `name`."""
    return Bucket(name)


def config(name: str, default: Optional[str] = None) -> Optional[str]:
    """The configuration value (variable or secret) `name` the owner set, or `default`."""
    try:
        value = wasi_config_store.get(name)
    except Err as e:
        raise StateError("config", repr(e.value)) from None
    return default if value is None else value


def config_all() -> Dict[str, str]:
    """Every configuration name and value the owner set."""
    try:
        return dict(wasi_config_store.get_all())
    except Err as e:
        raise StateError("config", repr(e.value)) from None
