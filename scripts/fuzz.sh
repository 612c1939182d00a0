#!/usr/bin/env bash
# Bounded fuzzing of every decoder of client-controlled input (fuzz/README.md), on the stable
# toolchain: cargo-fuzz passes nightly-only flags (-Zsanitizer=address, ...), which stable rustc
# accepts under RUSTC_BOOTSTRAP=1 (the AddressSanitizer runtime ships with stable's rust-std).
#
#   scripts/fuzz.sh                 every target, FUZZ_SECONDS (default 10) each, FUZZ_JOBS
#                                   (default: the number of cores) at a time
#   scripts/fuzz.sh envelope        one target
#   FUZZ_SANITIZER=none scripts/fuzz.sh   faster build and run, no AddressSanitizer
#
# Each target starts from its committed seeds in fuzz/corpus/<target>/ (read only: new inputs go
# to fuzz/target/corpus/<target>/, which is not committed). Any crash, panic, leak or timeout
# fails the script (a leak only with AddressSanitizer, whose LeakSanitizer finds it), and
# libFuzzer leaves the input in fuzz/artifacts/<target>/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

CARGO_FUZZ_VERSION=0.13.2
seconds="${FUZZ_SECONDS:-10}"
sanitizer="${FUZZ_SANITIZER:-address}"
# The default (stable) toolchain; RUSTUP_TOOLCHAIN, if set, still picks another.
export RUSTC_BOOTSTRAP=1
echo "fuzz: $(rustc -V), sanitizer $sanitizer"

if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi

# Builds with another sanitizer go to their own target dir, so switching does not throw away
# the AddressSanitizer build.
fuzz_args=(--fuzz-dir fuzz --sanitizer "$sanitizer")
if [ "$sanitizer" != address ]; then
  fuzz_args+=(--target-dir "fuzz/target/sanitizer-$sanitizer")
fi

cargo fuzz build "${fuzz_args[@]}"

# One target per core at a time (each libFuzzer process runs on one thread).
jobs_max="${FUZZ_JOBS:-$(nproc)}"
run_target() {
  local t="$1" work="fuzz/target/corpus/$1" log="fuzz/target/fuzz-$1.log"
  mkdir -p "$work"
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: 2 GiB per input.
  if cargo fuzz run "${fuzz_args[@]}" "$t" "$work" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    echo "fuzz: $t for ${seconds}s: $(grep -E '^(Done|stat::number_of_executed_units)' "$log" | tr '\n' ' ')"
  else
    cat "$log" >&2
    echo "fuzz: $t FAILED (input in fuzz/artifacts/$t/, log in $log)" >&2
    return 1
  fi
}
failed=0
for t in "${targets[@]}"; do
  run_target "$t" &
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do
    wait -n || failed=1
  done
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do
  wait -n || failed=1
done
if [ "$failed" != 0 ]; then
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each ($jobs_max at a time), no crash"
