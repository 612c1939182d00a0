"""The README's quick start, run as written against the real host."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO, Host, wasm_dir

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_quick_start_runs(host: Host, tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README.md has a python block"
    quick = blocks[0]
    assert len(quick.strip().splitlines()) <= 20
    refs = tmp_path / "reference-values.json"
    refs.write_text(json.dumps([host.reference_set()]))
    out = subprocess.run(
        [sys.executable, "-c", quick],
        cwd=REPO,
        env=dict(
            os.environ,
            HYPERVISOR_URL=host.url,
            HYPERVISOR_REFERENCE_VALUES=str(refs),
            HYPERVISOR_ALLOW_SIMULATED="1",
            WASM=str(wasm_dir() / "hello.wasm"),
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "attested: simulated build: the host under test, simulated"
    assert lines[1] == "Hello world"
    assert re.fullmatch(r"receipt 1 commitment [0-9a-f]{64}", lines[2])
