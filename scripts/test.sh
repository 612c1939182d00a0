#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs every test:
#   1. builds all WebAssembly and RISC-V programs from source (scripts/build-programs.sh), checks
#      that vendor/polkavm is its crates.io release plus vendor/polkavm.patch, and installs the
#      pinned npm packages of the payments tests (official x402 client and facilitator, anvil,
#      FiatTokenV2_2 artifacts: npm ci) and of the MCP tests (the official MCP TypeScript SDK),
#      the pinned official x402 Python SDK (target/py-x402), the official MCP Python SDK
#      (target/py-mcp) and the pinned schemathesis (target/py-st);
#   2. cargo test over the workspace: unit tests, protocol test vectors, and the end-to-end
#      suite in tests/e2e (the real binary on loopback, real components, real crypto), then
#      the Rust plug-in components' unit tests, then a bounded fuzz run of every decoder of
#      client input (scripts/fuzz.sh: cargo-fuzz on stable, 10 s per target, no sanitizer);
#   3. the Python and TypeScript SDKs (sdk/python, sdk/typescript): their type checks, vector,
#      sample, end-to-end and README tests against the debug host, and the TypeScript SDK
#      bundled for browsers in headless Chromium (Debian's, scripts/install-chromium.sh);
#   4. an independent Python implementation of docs/PROTOCOL.md checks the test vectors.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Where the time goes (minutes and seconds since the start), on standard error.
stamp() { echo "test: [$((SECONDS / 60))m$((SECONDS % 60))s] $*" >&2; }

# The tools (Debian packages, npm and PyPI pins) install in the background while the programs
# build: the downloads wait on the network, the build on the two cores, and together they take
# the time of the longer. Their output goes to target/install-tools.log, shown at the end (and
# in full when they fail).
mkdir -p "$root/target"
install_tools() {
  # HAProxy (Debian), the load balancer of tests/e2e/balancer.rs and scripts/cluster.sh, running
  # deploy/haproxy/haproxy.cfg.
  ./scripts/install-haproxy.sh || echo "test: no haproxy: tests/e2e/balancer.rs will say SKIPPED" >&2

  # podman, runc, skopeo and oci-image-tool (Debian), which tests/e2e/image.rs uses to build the
  # image (scripts/build-image.sh, from the test binaries) and run it on loopback.
  ./scripts/install-containers.sh || echo "test: no podman: tests/e2e/image.rs will say SKIPPED" >&2

  # pinned_venv DIR REQUIREMENTS: a private virtual environment with exactly the pinned packages,
  # rebuilt whenever the requirements file changes.
  pinned_venv() {
    local dir="$1" requirements="$2"
    if ! cmp -s "$requirements" "$dir/requirements.txt"; then
      rm -rf "$dir"
      python3 -m venv "$dir"
      "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
      cp "$requirements" "$dir/requirements.txt"
    fi
  }

  # The official x402 client and facilitator packages, anvil and Circle's USDC artifacts from npm,
  # for the interop and local-chain tests (versions pinned by package-lock.json).
  (cd tests/interop/x402-official && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

  # The official MCP TypeScript SDK, a client of the MCP endpoint (tests/e2e/mcp.rs), pinned by
  # its package-lock.json.
  (cd tests/interop/mcp-js && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

  # The official A2A JavaScript SDK, a client of the A2A front (tests/e2e/interop_a2a.rs), pinned
  # by its package-lock.json.
  (cd tests/interop/a2a-js && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

  # The official MCP Python SDK (PyPI `mcp`), the other MCP client of tests/e2e/mcp.rs, pinned by
  # tests/interop/mcp-python/requirements.txt, in its own environment rebuilt when that changes.
  pinned_venv "$root/target/py-mcp" tests/interop/mcp-python/requirements.txt

  # The official A2A Python SDK (PyPI `a2a-sdk`) with the x402 Python SDK signing its payments,
  # the A2A clients of tests/e2e/interop_a2a.rs, pinned by tests/interop/a2a-python/requirements.txt.
  pinned_venv "$root/target/py-a2a" tests/interop/a2a-python/requirements.txt

  # The official x402 Python SDK (PyPI `x402`), a second paying client for the interop tests
  # (tests/e2e/x402_python.rs), in a private virtual environment; every version is pinned by
  # tests/interop/x402-python/requirements.txt, and the environment is rebuilt when it changes.
  pinned_venv "$root/target/py-x402" tests/interop/x402-python/requirements.txt

  # Schemathesis (PyPI), which the e2e suite runs against docs/openapi.json and a live host
  # (tests/e2e/schemathesis.rs), in its own virtual environment, pinned the same way.
  pinned_venv "$root/target/py-st" tests/interop/schemathesis/requirements.txt

  # The Python SDK (sdk/python) with its pinned test tools (sdk/python/requirements-test.txt),
  # installed editable, so the environment always runs the checkout's SDK.
  pinned_venv "$root/target/py-sdk" sdk/python/requirements-test.txt
  "$root/target/py-sdk/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    --no-build-isolation -e sdk/python

  # The TypeScript SDK (sdk/typescript) and its test tools, pinned by its package-lock.json, and
  # Debian's Chromium for its browser test (playwright-core drives it; esbuild bundles the SDK).
  (cd sdk/typescript && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  ./scripts/install-chromium.sh

  # The dstack app (deploy/dstack): app-compose.json must be docker-compose.yaml in the canonical
  # form, its recorded compose hash right, its image pinned by digest, and dstack's official
  # Python SDK (PyPI dstack-sdk, pinned by tests/interop/dstack-python/requirements.txt) must
  # compute the same compose hash.
  pinned_venv "$root/target/py-dstack" tests/interop/dstack-python/requirements.txt
  "$root/target/py-dstack/bin/python" deploy/dstack/app-compose.py --check --sdk
}
install_tools >"$root/target/install-tools.log" 2>&1 &
tools_pid=$!

./scripts/build-programs.sh
stamp "programs built"

# The patched polkavm in vendor/ is the published release plus vendor/polkavm.patch, nothing
# else (vendor/README.md).
./scripts/check-vendor.sh
stamp "vendor checked"

if ! wait "$tools_pid"; then
  cat "$root/target/install-tools.log" >&2
  echo "test: installing the tools failed (above)" >&2
  exit 1
fi
tail -n 20 "$root/target/install-tools.log" >&2
stamp "tools installed, dstack app checked"

# The simulated attestation provider is compiled in for the tests only (end-to-end chain tests
# without TEE hardware); release builds from scripts/serve.sh do not contain it. It is the
# workspace's only optional feature, so this is --all-features.
#
# HYPERVISOR_LINT=1 (.ci/run sets it) makes this build Clippy's too: `cargo clippy` is cargo with
# clippy-driver as the workspace's rustc wrapper (its own crates only) and its arguments in
# CLIPPY_ARGS, and clippy-driver compiles as rustc does while it lints. So the test build also
# lints every target (benches included) with -D warnings, and the separate check-mode build of
# every dependency that `cargo clippy` needs (~4 minutes cold) is not made. The wrapper is given
# as cargo configuration, not as RUSTC_WORKSPACE_WRAPPER in the environment, which the tests'
# own processes would inherit (the README test runs scripts/build-programs.sh, whose cargo
# builds would then lint third-party crates). The same settings stay for the test run, so cargo
# finds everything fresh and rebuilds nothing.
workspace_args=()
if [ "${HYPERVISOR_LINT:-0}" = 1 ]; then
  rustup component add clippy >/dev/null 2>&1 || true
  workspace_args=(--config "build.rustc-workspace-wrapper='$(rustup which clippy-driver)'")
  export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
  cargo "${workspace_args[@]}" test --workspace --locked --all-features --all-targets --no-run
  stamp "workspace built and linted (clippy -D warnings, all targets)"
fi
cargo "${workspace_args[@]}" test --workspace --locked --all-features
unset CLIPPY_ARGS
stamp "workspace tests passed"

# The SDKs against the debug host the workspace tests built (it has the simulated provider):
# each suite starts its own host on loopback. Python: types (mypy --strict), the test vectors,
# real TDX samples, the end-to-end suite and the README's quick start; ruff lints and checks the
# format first.
(
  cd sdk/python
  py=../../target/py-sdk/bin
  "$py/ruff" check src tests
  "$py/ruff" format --check src tests
  "$py/python" -m mypy
  "$py/python" -m pytest -q
)
stamp "Python SDK checked"
# TypeScript: tsc --strict builds it, then node's test runner runs its vector, sample and
# end-to-end tests (the README's quick start among them), and the browser test: the SDK bundled
# by esbuild, in headless Chromium, calling a host that lists the page's origin (http.cors_origins).
(cd sdk/typescript && npm test)
stamp "TypeScript SDK checked"

# The example agents' own unit tests (ranking, statistics), natively.
cargo test --manifest-path guests/Cargo.toml --target-dir target/guests --locked \
  --target "$(rustc -vV | sed -n 's/^host: //p')" -p arxiv -p text-stats -p caller

# The Rust plug-in components' own unit tests (x402 checks against the specification's example),
# natively: their logic does not need a WebAssembly runtime.
cargo test --manifest-path components/Cargo.toml --target-dir target/components-native \
  --locked -p payments
stamp "guest and plug-in unit tests passed"

# Bounded fuzzing of every decoder of client input (fuzz/README.md), on stable with
# RUSTC_BOOTSTRAP=1: FUZZ_SECONDS (default 10) per target, fails on any crash. Without
# AddressSanitizer unless FUZZ_SANITIZER says otherwise: ten seconds per target is a smoke run,
# whose findings are panics (the targets' own code is safe Rust; the sanitizer watches the
# unsafe code of dependencies, which longer runs are for), and the sanitizer's build is the
# stage's longest part (the stage took 6 min 19 s with it, 4 min 26 s without, on a 2-core
# machine; docs/PERFORMANCE.md). scripts/fuzz.sh alone keeps AddressSanitizer by default.
FUZZ_SECONDS="${FUZZ_SECONDS:-10}" FUZZ_SANITIZER="${FUZZ_SANITIZER:-none}" ./scripts/fuzz.sh
stamp "fuzzing done"

# Independent protocol check (pyca/cryptography), in a private virtual environment.
venv="$root/target/py"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import cryptography" 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "cryptography>=44"
fi
"$venv/bin/python" tests/vectors/check_vectors.py
stamp "vectors checked"
