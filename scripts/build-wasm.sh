#!/usr/bin/env bash
# The one build path for every WebAssembly artifact of the project, used by both the run and the
# test command (scripts/serve.sh, scripts/test.sh). Builds from source:
#   - guests/* (wasm32-wasip2 components)               -> target/wasm/<name>.wasm
#   - the `wasip2` crate's http-proxy example, unchanged -> target/wasm/third-party-http.wasm
#   - components/<rust plug-in>/ (wasm32-wasip2)         -> target/wasm/<name>.wasm
#   - components/policy-python/ (componentize-py)        -> target/wasm/policy-python.wasm
#   - guests/python-state/ (componentize-py)             -> target/wasm/python-state.wasm
# Installs what it needs if missing: the wasm32-wasip2 target, and componentize-py (pinned) in a
# private virtual environment (target/py). Incremental: cargo rebuilds only what changed, and
# the Python component is rebuilt only when its sources or the WIT changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  echo "build-wasm: installing the wasm32-wasip2 target" >&2
  rustup target add wasm32-wasip2
fi

out="$root/target/wasm"
mkdir -p "$out"

echo "build-wasm: guests" >&2
cargo build --manifest-path guests/Cargo.toml --target wasm32-wasip2 --release \
  --target-dir "$root/target/guests" --locked --quiet
for manifest in guests/*/Cargo.toml; do
  name="$(basename "$(dirname "$manifest")")"
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
echo "build-wasm: third-party $third_party_crate $third_party_version example http-proxy" >&2
third_party_manifest="$(cargo metadata --manifest-path guests/Cargo.toml --format-version 1 \
  --locked --filter-platform wasm32-wasip2 | python3 -c '
import json, sys
name, version = sys.argv[1], sys.argv[2]
found = [p["manifest_path"] for p in json.load(sys.stdin)["packages"]
         if p["name"] == name and p["version"] == version]
if not found:
    sys.exit(f"build-wasm: {name} {version} is not in guests/Cargo.lock; update the pin in scripts/build-wasm.sh")
print(found[0])' "$third_party_crate" "$third_party_version")"
cargo build --manifest-path "$third_party_manifest" --example http-proxy --target wasm32-wasip2 \
  --release --locked --target-dir "$root/target/third-party" --quiet
cp "$root/target/third-party/wasm32-wasip2/release/examples/http_proxy.wasm" \
  "$out/third-party-http.wasm"

echo "build-wasm: Rust plug-in components" >&2
cargo build --manifest-path components/Cargo.toml --target wasm32-wasip2 --release \
  --target-dir "$root/target/components" --locked --quiet --workspace --exclude js-runtime
# The JavaScript runtime with its own profile (built for size: components/Cargo.toml says why).
cargo build --manifest-path components/Cargo.toml --target wasm32-wasip2 --profile js-runtime \
  --target-dir "$root/target/components" --locked --quiet -p js-runtime
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
  echo "build-wasm: installing componentize-py $componentize_py_version" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$componentize_py_version"
fi
policy_src="components/policy-python/src"
policy_out="$out/policy-python.wasm"
if [ -n "${REPRODUCIBLE_PYTHON:-}" ]; then
  # The same component, byte for byte wherever it is built (scripts/reproducible-build.sh sets
  # this; root, FUSE and a loop device needed): always rebuilt.
  echo "build-wasm: components/policy-python, reproducibly (scripts/reproducible-python/)" >&2
  ./scripts/reproducible-python/build-policy.sh "$venv/bin/componentize-py" "$policy_out"
elif [ ! -f "$policy_out" ] || [ -n "$(find "$policy_src" wit -newer "$policy_out" -type f | head -1)" ]; then
  echo "build-wasm: components/policy-python (componentize-py, ~15 s)" >&2
  "$venv/bin/componentize-py" -q -d wit -w policy-python componentize app \
    -p "$policy_src" -o "$policy_out.tmp"
  mv "$policy_out.tmp" "$policy_out"
fi

# A Python agent with state (guests/python-state: app.py and the agent_state.py helper),
# componentized against hypervisor:host/stateful-handler-agent (wit/state.wit).
py_agent_src="guests/python-state"
py_agent_out="$out/python-state.wasm"
if [ ! -f "$py_agent_out" ] || [ -n "$(find "$py_agent_src" wit -newer "$py_agent_out" -type f -name '*.*' | head -1)" ]; then
  echo "build-wasm: guests/python-state (componentize-py, ~5 s)" >&2
  "$venv/bin/componentize-py" -q -d wit -w stateful-handler-agent componentize app \
    -p "$py_agent_src" -o "$py_agent_out.tmp"
  mv "$py_agent_out.tmp" "$py_agent_out"
fi

echo "build-wasm: artifacts in target/wasm/: $(cd "$out" && ls | tr '\n' ' ')" >&2
