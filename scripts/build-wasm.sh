#!/usr/bin/env bash
# The one build path for every WebAssembly artifact of the project, used by both the run and the
# test command (scripts/serve.sh, scripts/test.sh). Builds from source:
#   - guests/* (wasm32-wasip2 components) -> target/wasm/<name>.wasm
# Installs the wasm32-wasip2 target if it is missing. Incremental: cargo rebuilds only what changed.
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
  cp "$root/target/guests/wasm32-wasip2/release/$name.wasm" "$out/$name.wasm"
done
echo "build-wasm: artifacts in target/wasm/: $(cd "$out" && ls | tr '\n' ' ')" >&2
