"""A local EVM chain with Circle's USDC and the official x402 facilitator, from the repository's
scripts in tests/interop/x402-official (the same the Rust end-to-end tests use): anvil (chain id
84532), `deploy.mjs`, `facilitator.mjs`, `balance.mjs`. Needs `npm ci` there (scripts/test.sh
runs it)."""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, line_after

INTEROP = REPO / "tests" / "interop" / "x402-official"


@dataclass
class Chain:
    rpc: str
    facilitator_url: str
    token: str
    payer: str
    payer_key: str
    pay_to: str

    def balance(self, address: str) -> int:
        out = subprocess.run(
            [
                "node",
                str(INTEROP / "balance.mjs"),
                "--rpc",
                self.rpc,
                "--token",
                self.token,
                "--address",
                address,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return int(out.stdout.strip())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_chain() -> Iterator[Chain]:
    anvil_bin = INTEROP / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
    if not anvil_bin.is_file():
        pytest.fail(f"{anvil_bin} is missing: run `npm ci --ignore-scripts` in {INTEROP}")
    port = _free_port()
    procs: list[subprocess.Popen[Any]] = []
    logs = Path(tempfile.mkdtemp(prefix="sdk-python-chain-"))
    try:
        procs.append(
            subprocess.Popen(
                [str(anvil_bin), "--chain-id", "84532", "--port", str(port), "--silent"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("anvil did not listen")
                time.sleep(0.05)
        rpc = f"http://127.0.0.1:{port}"
        out = subprocess.run(
            ["node", str(INTEROP / "deploy.mjs"), "--rpc", rpc],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        deployed = json.loads(out.stdout.strip())
        fac = subprocess.Popen(
            [
                "node",
                str(INTEROP / "facilitator.mjs"),
                "--rpc",
                rpc,
                "--key",
                deployed["facilitator_key"],
                "--port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=(logs / "facilitator.log").open("wb"),
        )
        procs.append(fac)
        url = line_after(fac, "listening ", 120)
        if url is None:
            pytest.fail(f"the facilitator did not start:\n{(logs / 'facilitator.log').read_text()[-3000:]}")
        yield Chain(
            rpc=rpc,
            facilitator_url=url,
            token=deployed["token"],
            payer=deployed["payer"]["address"],
            payer_key=deployed["payer"]["private_key"],
            pay_to=deployed["pay_to"],
        )
    finally:
        for p in procs:
            p.kill()
            p.wait()
