#!/usr/bin/env bash
# HTTP agents against `wasmtime serve`, side by side, in one run; plus a handler agent's time per
# invocation and a restart with 100 deployed agents. See benches/http_agents/main.rs for what
# is measured and how.
#
#   benches/http-agents.sh                 # everything
#   BENCH_ONLY=throughput benches/http-agents.sh
#   HTTP_BENCH_SECONDS=20 HTTP_BENCH_ROUNDS=5 HTTP_BENCH_CONNECTIONS=64 benches/http-agents.sh
#
# Builds what it needs first, each step incremental or skipped when already done:
#   1. the components (scripts/build-programs.sh -> target/wasm/http-hello.wasm, text-stats.wasm);
#   2. wrk (apt-get, when missing and running as root);
#   3. wasmtime-cli 48.0.8 into target/wasmtime-cli (cargo install; 10+ minutes on 2 cores,
#      once, skipped when target/wasmtime-cli/bin/wasmtime is already 48.0.8);
#   4. the release binary (cargo build --release -p hypervisor), then the benchmark
#      (cargo bench -p hypervisor --bench http_agents), whose output is also kept in
#      target/bench-data/http-agents-<time>.txt.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

wasmtime_version="48.0.8"
wasmtime_root="$root/target/wasmtime-cli"
wasmtime="$wasmtime_root/bin/wasmtime"

echo "http-agents: components" >&2
./scripts/build-programs.sh

if ! command -v "${WRK:-wrk}" >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "http-agents: installing wrk" >&2
    apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
  else
    echo "http-agents: wrk is missing (apt-get install wrk, or set WRK=/path/to/wrk)" >&2
    exit 1
  fi
fi

if [ "$("$wasmtime" --version 2>/dev/null | awk '{print $2}')" != "$wasmtime_version" ]; then
  echo "http-agents: building wasmtime-cli $wasmtime_version into $wasmtime_root (once; 10+ minutes on 2 cores)" >&2
  started=$(date +%s)
  cargo install wasmtime-cli --version "$wasmtime_version" --locked --root "$wasmtime_root"
  echo "http-agents: wasmtime-cli built in $(( $(date +%s) - started )) s" >&2
fi

echo "http-agents: release binary" >&2
cargo build --release -p hypervisor

mkdir -p "$root/target/bench-data"
out="$root/target/bench-data/http-agents-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo "# benches/http-agents.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(uname -srm)"
  echo "# git $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures; the runs are interleaved)"
} | tee "$out"
WASMTIME="$wasmtime" cargo bench -p hypervisor --bench http_agents 2>&1 | tee -a "$out"
echo "http-agents: results kept in $out" >&2
