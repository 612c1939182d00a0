#!/usr/bin/env bash
# The one build path for every WebAssembly and RISC-V program of the project, used by both the
# run and the test command (scripts/serve.sh, scripts/test.sh). Builds from source:
#   - guests/* (wasm32-wasip2 components)               -> target/wasm/<name>.wasm
#   - guests/riscv/* (PolkaVM's RISC-V target, ELF)     -> target/riscv/<name>.elf
#   - the `wasip2` crate's http-proxy example, unchanged -> target/wasm/third-party-http.wasm
#   - components/<rust plug-in>/ (wasm32-wasip2)         -> target/wasm/<name>.wasm
#   - components/policy-python/ (componentize-py)        -> target/wasm/policy-python.wasm
#   - guests/python-state/ (componentize-py)             -> target/wasm/python-state.wasm
# Installs what it needs if missing: the wasm32-wasip2 target, the rust-src component (the RISC-V
# programs build core and alloc from source), and componentize-py (pinned) in a private virtual
# environment (target/py). Incremental: cargo rebuilds only what changed, and
# the Python component is rebuilt only when its sources or the WIT changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Each step's line carries the seconds since the start (where a cold build's time goes).
say() { echo "build-programs: [${SECONDS}s] $*" >&2; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  say "installing the wasm32-wasip2 target"
  rustup target add wasm32-wasip2
fi

out="$root/target/wasm"
mkdir -p "$out"

# HYPERVISOR_LINT=1 (.ci/run sets it): the builds of our own crates below are Clippy's too, with
# -D warnings, as scripts/test.sh does for the main workspace (it says how): clippy-driver,
# the workspaces' rustc wrapper for their own members only, compiles as rustc does while it
# lints, so no separate check-mode build of every dependency for wasm32 and RISC-V is made.
# The third-party example is not ours and is not linted.
lint=()
if [ "${HYPERVISOR_LINT:-0}" = 1 ]; then
  rustup component add clippy >/dev/null 2>&1 || true
  lint=(--config "build.rustc-workspace-wrapper='$(rustup which clippy-driver)'")
  export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
fi

say "guests"
cargo "${lint[@]}" build --manifest-path guests/Cargo.toml --target wasm32-wasip2 --release \
  --target-dir "$root/target/guests" --locked --quiet
# The workspace's members (guests/riscv and guests/riscv-sdk are not: they build below).
for name in $(sed -n 's/^members = \[\(.*\)\]$/\1/p' guests/Cargo.toml | tr -d '",'); do
  built="$root/target/guests/wasm32-wasip2/release/$name.wasm"   # binaries keep their name,
  [ -f "$built" ] || built="${built%/*}/${name//-/_}.wasm"        # libraries use underscores
  cp "$built" "$out/$name.wasm"
done

# A wasi:http component NOT written for this project, built unchanged from its published source:
# the `http-proxy` example of the `wasip2` crate (crates.io `wasip2` 1.0.4+wasi-0.2.12, the
# Bytecode Alliance's WASI bindings for Rust, upstream https://github.com/bytecodealliance/wasi-rs,
# file examples/http-proxy.rs in the crate). It exports `wasi:http/incoming-handler@0.2.12` and
# answers every request, whatever its method, path or body, with status 200, no headers and the
# 12-byte body `Hello, WASI!` (no newline).
# The crate is a locked dependency of the guests workspace (guests/Cargo.lock), so the build above
# has fetched its source into cargo's registry; `cargo metadata` says where, and cargo builds the
# example in place, with the crate's own Cargo.lock (--locked), into target/third-party. Nothing
# is copied or modified.
third_party_crate="wasip2"
third_party_version="1.0.4+wasi-0.2.12"
say "third-party $third_party_crate $third_party_version example http-proxy"
third_party_manifest="$(cargo metadata --manifest-path guests/Cargo.toml --format-version 1 \
  --locked --filter-platform wasm32-wasip2 | python3 -c '
import json, sys
name, version = sys.argv[1], sys.argv[2]
found = [p["manifest_path"] for p in json.load(sys.stdin)["packages"]
         if p["name"] == name and p["version"] == version]
if not found:
    sys.exit(f"build-programs: {name} {version} is not in guests/Cargo.lock; update the pin in scripts/build-programs.sh")
print(found[0])' "$third_party_crate" "$third_party_version")"
cargo build --manifest-path "$third_party_manifest" --example http-proxy --target wasm32-wasip2 \
  --release --locked --target-dir "$root/target/third-party" --quiet
cp "$root/target/third-party/wasm32-wasip2/release/examples/http_proxy.wasm" \
  "$out/third-party-http.wasm"

say "Rust plug-in components"
cargo "${lint[@]}" build --manifest-path components/Cargo.toml --target wasm32-wasip2 --release \
  --target-dir "$root/target/components" --locked --quiet --workspace --exclude js-runtime
# The JavaScript runtime with its own profile (built for size: components/Cargo.toml says why),
# with the JavaScript libraries it builds in (web-streams-polyfill), pinned by their lock file.
(cd components/js-runtime/js-deps && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
cargo "${lint[@]}" build --manifest-path components/Cargo.toml --target wasm32-wasip2 \
  --profile js-runtime --target-dir "$root/target/components" --locked --quiet -p js-runtime
# StarlingMonkey's engine for JavaScript agents that ask for it, spliced for the handler world
# (components/starlingmonkey/splice.mjs; pinned by its lock file, deterministic): the host sets
# each agent up from this, inside the TEE.
(cd components/starlingmonkey && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error &&
  node splice.mjs ../../wit hypervisor:host/handler-agent "$out/starlingmonkey.wasm.tmp" >/dev/null)
if ! cmp -s "$out/starlingmonkey.wasm.tmp" "$out/starlingmonkey.wasm"; then
  mv "$out/starlingmonkey.wasm.tmp" "$out/starlingmonkey.wasm"
else
  rm "$out/starlingmonkey.wasm.tmp"
fi
# The workspace's members are the components (components/x402-eip3009 is a library it excludes).
for name in $(sed -n 's/^members = \[\(.*\)\]$/\1/p' components/Cargo.toml | tr -d '",'); do
  profile=release
  [ "$name" = js-runtime ] && profile=js-runtime
  cp "$root/target/components/wasm32-wasip2/$profile/${name//-/_}.wasm" "$out/$name.wasm"
done

# componentize-py bundles CPython for WASI; pinned, from PyPI, once per machine.
componentize_py_version="0.25.1"
venv="$root/target/py"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ "$("$venv/bin/componentize-py" --version 2>/dev/null)" != "componentize-py $componentize_py_version" ]; then
  say "installing componentize-py $componentize_py_version"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$componentize_py_version"
fi
policy_src="components/policy-python/src"
policy_out="$out/policy-python.wasm"
if [ -n "${REPRODUCIBLE_PYTHON:-}" ]; then
  # The same component, byte for byte wherever it is built (scripts/reproducible-build.sh sets
  # this; root, FUSE and a loop device needed): always rebuilt.
  say "components/policy-python, reproducibly (scripts/reproducible-python/)"
  ./scripts/reproducible-python/build-policy.sh "$venv/bin/componentize-py" "$policy_out"
elif [ ! -f "$policy_out" ] || [ -n "$(find "$policy_src" wit -newer "$policy_out" -type f | head -1)" ]; then
  say "components/policy-python (componentize-py, ~15 s)"
  "$venv/bin/componentize-py" -q -d wit -w policy-python componentize app \
    -p "$policy_src" -o "$policy_out.tmp"
  mv "$policy_out.tmp" "$policy_out"
fi

# A Python agent with state (guests/python-state: app.py and the agent_state.py helper),
# componentized against hypervisor:host/stateful-handler-agent (wit/state.wit).
py_agent_src="guests/python-state"
py_agent_out="$out/python-state.wasm"
if [ ! -f "$py_agent_out" ] || [ -n "$(find "$py_agent_src" wit -newer "$py_agent_out" -type f -name '*.*' | head -1)" ]; then
  say "guests/python-state (componentize-py, ~5 s)"
  "$venv/bin/componentize-py" -q -d wit -w stateful-handler-agent componentize app \
    -p "$py_agent_src" -o "$py_agent_out.tmp"
  mv "$py_agent_out.tmp" "$py_agent_out"
fi

# RISC-V programs (guests/riscv, with guests/riscv-sdk) for PolkaVM's own target: RV64EMAC with
# the target JSON that the polkavm-linker crate ships (its 1_91 variant, for rustc >= 1.91),
# taken from the crate in cargo's registry at the version the host links with. No rustup target
# exists for it: core and alloc are built from rust-src (-Zbuild-std, which stable rustc allows
# under RUSTC_BOOTSTRAP=1, as scripts/fuzz.sh does for cargo-fuzz).
if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
  say "installing the rust-src component"
  rustup component add rust-src
fi
riscv_target_json="$(cargo metadata --format-version 1 --locked | python3 -c '
import json, os, sys
found = [p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "polkavm-linker"]
if len(found) != 1:
    sys.exit("build-programs: polkavm-linker is not (once) in Cargo.lock")
print(os.path.join(os.path.dirname(found[0]), "targets", "1_91", "riscv64emac-unknown-none-polkavm.json"))')"
say "RISC-V programs (guests/riscv)"
RUSTC_BOOTSTRAP=1 cargo "${lint[@]}" build --manifest-path guests/riscv/Cargo.toml --release --locked --quiet \
  -Zbuild-std=core,alloc -Zjson-target-spec --target "$riscv_target_json" \
  --target-dir "$root/target/riscv-guests"
riscv_out="$root/target/riscv"
mkdir -p "$riscv_out"
for name in $(sed -n 's/^members = \[\(.*\)\]$/\1/p' guests/riscv/Cargo.toml | tr -d '",'); do
  cp "$root/target/riscv-guests/riscv64emac-unknown-none-polkavm/release/${name//-/_}.elf" \
    "$riscv_out/$name.elf"
done

say "artifacts in target/wasm/: $(cd "$out" && ls | tr '\n' ' ')"
say "and in target/riscv/: $(cd "$riscv_out" && ls | tr '\n' ' ')"
