"""Shared fixtures: the repository's test vectors, and (for the end-to-end tests) a real host
started by the suite on loopback."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO.parent / "shared" / "attestation-samples"


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    return json.loads((REPO / "docs" / "test-vectors.json").read_text())


def wasm_dir() -> Path:
    return Path(os.environ.get("HYPERVISOR_WASM_DIR", REPO / "target" / "wasm"))


def sha384_hex(text: str) -> str:
    return hashlib.sha384(text.encode()).hexdigest()


def line_after(proc: subprocess.Popen[bytes], prefix: str, timeout: float) -> str | None:
    """What follows `prefix` on the first line of the child's stdout that starts with it (the
    child's stdout is then drained in the background), or None after `timeout` seconds."""
    found: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            text = line.decode().strip()
            if not ready.is_set() and text.startswith(prefix):
                found.append(text.removeprefix(prefix).strip())
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    return found[0] if ready.wait(timeout) else None


class Host:
    """A host process: `url`, the binary it runs, its log."""

    def __init__(self, binary: Path, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.binary = binary
        self.url = url
        self.proc = proc
        self.log = log

    def reference_set(self, **changes: Any) -> dict[str, Any]:
        """The reference value set of this binary on the default simulated platform, computed
        here independently of the host: SHA-384 of `wasm-hypervisor simulated MRTD` and so on,
        the launcher's event naming the binary, and the binary's SHA-256."""
        s: dict[str, Any] = {
            "version": 1,
            "name": "the host under test, simulated",
            "tee": "simulated",
            "tdx": {
                "mrtd": sha384_hex("wasm-hypervisor simulated MRTD"),
                "rtmr0": sha384_hex("wasm-hypervisor simulated RTMR0"),
                "rtmr1": sha384_hex("wasm-hypervisor simulated RTMR1"),
                "rtmr2": sha384_hex("wasm-hypervisor simulated RTMR2"),
                "app": {"host_event": True},
            },
            "host_measurements": [hashlib.sha256(self.binary.read_bytes()).hexdigest()],
        }
        s.update(changes)
        return s


def start_host(extra_toml: str = "", attestation: str = "") -> Iterator[Host]:
    """Starts `HYPERVISOR_BIN` (default: the workspace's debug build, which has the simulated
    provider) with simulated attestation and `extra_toml`, on a fresh data directory, and stops
    it afterwards. The compiled plug-ins are cached in `target/sdk-plugin-cache` across runs
    (sealed under a key kept beside them)."""
    binary = Path(os.environ.get("HYPERVISOR_BIN", REPO / "target" / "debug" / "hypervisor"))
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: build the host (cargo build --all-features) or set HYPERVISOR_BIN")
    cache = REPO / "target" / "sdk-plugin-cache"
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="sdk-python-host-"))
    data = tmp / "data"
    (data / "keys").mkdir(parents=True)
    kept_key = cache / "at-rest.key"
    if kept_key.is_file():
        shutil.copy(kept_key, data / "keys" / "at-rest.key")
    config = tmp / "hypervisor.toml"
    config.write_text(
        f"""data_dir = {json.dumps(str(data))}
listen = "127.0.0.1:0"
plugin_cache_dir = {json.dumps(str(cache))}
[limits]
default_time_ms = 20000
[policy]
enabled = false
[python]
component = {json.dumps(str(wasm_dir() / "policy-python.wasm"))}
[attestation]
provider = "simulated"
{attestation}
{extra_toml}
"""
    )
    log = tmp / "host.log"
    proc = subprocess.Popen(
        [str(binary), "serve", "--config", str(config)],
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=log.open("wb"),
        env=dict(os.environ, RUST_LOG="info"),
    )
    # A cold plug-in cache means compiling CPython: minutes on a loaded 2-core machine.
    url = line_after(proc, "hypervisor listening on ", 600)
    if url is None:
        proc.kill()
        pytest.fail(f"the host did not start:\n{log.read_text()[-4000:]}")
    if not kept_key.is_file():
        shutil.copy(data / "keys" / "at-rest.key", kept_key)
    try:
        yield Host(binary, url, proc, log)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def host() -> Iterator[Host]:
    """A host without payments."""
    yield from start_host()


@pytest.fixture(scope="session")
def wasm() -> Any:
    def read(name: str) -> bytes:
        return (wasm_dir() / f"{name}.wasm").read_bytes()

    return read


@pytest.fixture
def wait() -> Any:
    def until(pred: Any, seconds: float = 30) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = pred()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError("timed out")

    return until
