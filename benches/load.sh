#!/usr/bin/env bash
# Every main route at saturation, 1000 concurrent executions, every route at once, a 1 MB
# program's first run (and, when asked for, a 10-minute soak):
# builds what it needs (components, the release host with simulated attestation for the
# verifiable route), then runs `cargo bench --bench load` and keeps its output in
# target/bench-data/load-<time>.txt. See benches/load/main.rs for what is measured and how.
#
#   benches/load.sh                                  # 60 s per route and mixed (about 12 minutes in all)
#   LOAD_SECONDS=10 benches/load.sh                  # a quick pass
#   LOAD_ONLY=concurrent LOAD_CONCURRENT=2000 benches/load.sh
#   LOAD_ONLY=soak benches/load.sh                   # every route at once for 10 minutes
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

echo "load: components" >&2
./scripts/build-programs.sh

mkdir -p "$root/target/bench-data"
out="$root/target/bench-data/load-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo "# benches/load.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(uname -srm)"
  echo "# git $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg); the client threads share the machine's cores with the server"
} | tee "$out"
cargo bench -p hypervisor --features simulated-attestation --bench load 2>&1 | tee -a "$out"
echo "load: results kept in $out" >&2
