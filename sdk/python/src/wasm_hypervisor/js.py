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
#: The label of a source set up in StarlingMonkey: the engine is signed with the source.
LABEL_STARLINGMONKEY = b"wasm-hypervisor/v1/js-source/starlingmonkey\0"
#: The engines (`boa`, the default, and `starlingmonkey`) and their labels.
ENGINES = {"boa": LABEL, "starlingmonkey": LABEL_STARLINGMONKEY}


def source_sha256(main: str, modules: Mapping[str, str], engine: str = "boa") -> bytes:
    """`SHA-256(label || u32be(len main) || main || u32be(n) || for each module in byte order of
    its name: u32be(len name) || name || u64be(len source) || source)`, where `label` is
    `"…/js-source" || 0x00`, or `"…/js-source/starlingmonkey" || 0x00` for StarlingMonkey."""
    if engine not in ENGINES:
        raise ValueError(f"unknown JavaScript engine {engine!r} (boa or starlingmonkey)")
    h = hashlib.sha256(ENGINES[engine])
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
    #: `boa` (the host's runtime) or `starlingmonkey` (SpiderMonkey: faster on CPU-bound code).
    engine: str = "boa"

    def __post_init__(self) -> None:
        if self.main not in self.modules:
            raise ValueError(f"the main module {self.main!r} is not among the modules")
        if self.engine not in ENGINES:
            raise ValueError(f"unknown JavaScript engine {self.engine!r} (boa or starlingmonkey)")

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
        return source_sha256(self.main, self.modules, self.engine)

    def to_json(self) -> dict[str, object]:
        engine = {} if self.engine == "boa" else {"engine": self.engine}
        return {"main": self.main, "modules": dict(self.modules), **engine}

    def sealed_plaintext(self) -> bytes:
        """The JSON an `encrypted_js` envelope carries: `main`, then the modules in byte order
        of their names (as the vector's)."""
        ordered = {n: self.modules[n] for n in sorted(self.modules, key=lambda n: n.encode())}
        engine = {} if self.engine == "boa" else {"engine": self.engine}
        return json.dumps(
            {"main": self.main, "modules": ordered, **engine}, separators=(",", ":"), ensure_ascii=False
        ).encode()
