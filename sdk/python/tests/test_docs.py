"""The API documentation builds with pdoc and documents the public API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_pdoc_builds_the_api_docs(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pdoc", "wasm_hypervisor", "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    page = (tmp_path / "wasm_hypervisor.html").read_text()
    for name in ("Client", "AsyncClient", "Policy", "verifiable_session", "VerifyError"):
        assert name in page, name
