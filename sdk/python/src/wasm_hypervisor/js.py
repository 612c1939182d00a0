"""JavaScript and TypeScript agents' source (PROTOCOL.md §24): the modules, the hash the owner
signs in place of a component's, and the JSON sealed as `encrypted_js`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._bytes import u32be, u64be

LABEL = b"wasm-hypervisor/v1/js-source\0"


def source_sha256(main: str, modules: Mapping[str, str]) -> bytes:
    """`SHA-256("…/js-source" || 0x00 || u32be(len main) || main || u32be(n) || for each module
    in byte order of its name: u32be(len name) || name || u64be(len source) || source)`."""
    h = hashlib.sha256(LABEL)
    m = main.encode()
    h.update(u32be(len(m)) + m + u32be(len(modules)))
    for name in sorted(modules, key=lambda n: n.encode()):
        n, src = name.encode(), modules[name].encode()
        h.update(u32be(len(n)) + n + u64be(len(src)) + src)
    return h.digest()


@dataclass(frozen=True)
class JsSource:
    """An agent's modules (`.js`, `.mjs`, `.ts`, `.mts`) by relative path; `main` is one of
    them and exports `handler(event, context)`."""

    main: str
    modules: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.main not in self.modules:
            raise ValueError(f"the main module {self.main!r} is not among the modules")

    @classmethod
    def from_files(cls, main: str | Path, *others: str | Path) -> JsSource:
        """Reads files, each named by its path relative to the main module's directory."""
        main_path = Path(main)
        root = main_path.parent
        modules = {main_path.name: main_path.read_text()}
        for p in map(Path, others):
            modules[p.relative_to(root).as_posix() if p.is_relative_to(root) else p.name] = p.read_text()
        return cls(main_path.name, modules)

    @property
    def sha256(self) -> bytes:
        return source_sha256(self.main, self.modules)

    def to_json(self) -> dict[str, object]:
        return {"main": self.main, "modules": dict(self.modules)}

    def sealed_plaintext(self) -> bytes:
        """The JSON an `encrypted_js` envelope carries: `main`, then the modules in byte order
        of their names (as the vector's)."""
        ordered = {n: self.modules[n] for n in sorted(self.modules, key=lambda n: n.encode())}
        return json.dumps(
            {"main": self.main, "modules": ordered}, separators=(",", ":"), ensure_ascii=False
        ).encode()
