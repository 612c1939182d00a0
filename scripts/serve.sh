#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs the server with embedded defaults
# (http://127.0.0.1:3000, data in ./data). Extra arguments go to `hypervisor serve`,
# e.g. scripts/serve.sh --listen 0.0.0.0:8080
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

./scripts/build-programs.sh
echo "serve: building the host and the client (release; the first build takes several minutes)" >&2
cargo build --release --locked -p hypervisor -p hypervisor-client
# The plug-ins compiled ahead of time, beside the binary (target/release/hypervisor-precompiled),
# so that the first start loads them instead of compiling for seconds; nothing is compiled
# when they are up to date. The same arguments as serve: the engine settings must match.
target/release/hypervisor precompile "$@" >&2
exec target/release/hypervisor serve "$@"
