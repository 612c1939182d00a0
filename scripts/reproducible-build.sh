#!/usr/bin/env bash
# Builds the host binary reproducibly and checks that it is: the same commit gives the same
# bytes whatever directory it is built in, so the SHA-256 that attestation reports as the host
# measurement can be computed by anyone from the source and pinned by verifiers. The binary
# embeds the default plug-ins (payments, policy-python, js-runtime, starlingmonkey: host/build.rs), so they are
# built from source first (scripts/build-programs.sh) and compared too, as is the CLI.
#
#   scripts/reproducible-build.sh            build HEAD in two fresh clones under different
#                                            paths, compare, print the measurement (exit 1 if
#                                            they differ)
#   scripts/reproducible-build.sh --out DIR  build HEAD once, the same way, into DIR: hypervisor,
#                                            hypervisor-client, the plug-ins, COMMIT (what
#                                            scripts/build-image.sh packs)
#   HOST_ONLY=1 scripts/reproducible-build.sh
#                                            the host alone, without building the plug-ins (so
#                                            without embedded ones): checks the host's own code
#
# What makes it reproducible (README.md, "Reproducible host builds"):
# - the committed Cargo.lock (--locked), and the same Rust toolchain (printed below: builders
#   who compare measurements use the same `rustc -V`);
# - --remap-path-prefix for the source tree (-> /src) and CARGO_HOME (-> /cargo), so no
#   absolute path of the build machine ends up in panic messages or debug info; the same for
#   the C code some crates compile (ring, SQLite, mimalloc, wasmtime's helpers), through
#   -ffile-prefix-map in CFLAGS (the directory a C object is compiled in is in its debug info);
# - no symbol table (-C strip=symbols, which drops the debug info too): LLVM names the local
#   symbols it promotes across codegen units `NAME.llvm.HASH` with a hash that depends on the
#   build directory. Measured: two builds in directories of different lengths differed only in
#   .symtab, .strtab and the build id; code, data and debug info were identical;
# - SOURCE_DATE_EPOCH from the last commit that changed the sources, for anything in the build
#   that stamps a time;
# - a clean clone of the commit (no untracked or modified files) and a fresh target directory;
# - the Python policy plug-in built by scripts/reproducible-python/build-policy.sh (fixed
#   randomness, frozen clocks, a file view with fixed metadata, an empty site-packages), root
#   only: componentize-py snapshots a pre-initialised CPython, and an ordinary build's snapshot
#   holds the build machine's random bytes, times and file metadata.
# Two cold builds of everything: about 30 minutes on 2 cores (28 min 41 s at cd223d0). Not part
# of scripts/test.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
commit="$(git -C "$root" rev-parse HEAD)"
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
  echo "reproducible-build: note: uncommitted changes are not built (HEAD $commit is)" >&2
fi

# What the binaries are built from (SOURCE_DATE_EPOCH below).
SOURCES="host protocol client crates components wit Cargo.toml Cargo.lock scripts/build-programs.sh
  scripts/reproducible-python scripts/reproducible-build.sh"

# build SRC: a release build of the host binary in the clone SRC, with the canonical settings.
build() {
  local src="$1"
  (
    cd "$src"
    export SOURCE_DATE_EPOCH
    # The time of the last commit that changed what is built (not of HEAD): a commit that only
    # touches docs, tests or deploy/ gives the same bytes, so a deploy manifest can pin them.
    SOURCE_DATE_EPOCH="$(git log -1 --format=%ct -- $SOURCES)"
    export CARGO_TARGET_DIR="$src/target"
    export CARGO_INCREMENTAL=0
    export RUSTFLAGS="--remap-path-prefix=$src=/src --remap-path-prefix=$cargo_home=/cargo"
    export CFLAGS="-ffile-prefix-map=$src=/src -ffile-prefix-map=$cargo_home=/cargo"
    export CXXFLAGS="$CFLAGS"
    unset CARGO_BUILD_RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
    if [ -z "${HOST_ONLY:-}" ]; then REPRODUCIBLE_PYTHON=1 ./scripts/build-programs.sh >&2; fi
    # (stripping is for the host only: a component's custom sections are part of it)
    RUSTFLAGS="$RUSTFLAGS -C strip=symbols" \
      cargo build --release --locked -p hypervisor --bin hypervisor >&2
    # The CLI the image ships beside it, in its own invocation: building both packages at
    # once would unify their dependencies' features and change the host's bytes.
    RUSTFLAGS="$RUSTFLAGS -C strip=symbols" \
      cargo build --release --locked -p hypervisor-client --bin hypervisor-client >&2
  )
}

# The reproducible policy build's tools (scripts/reproducible-python/build-policy.sh).
if [ -z "${HOST_ONLY:-}" ] && ! { [ -f /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] &&
  /usr/bin/python3 -c 'import fusepy' 2>/dev/null; }; then
  echo "reproducible-build: apt-get install faketime python3-fusepy fuse" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    faketime python3-fusepy fuse gcc >/dev/null
fi

clone() {
  git clone --quiet --no-hardlinks "$root" "$1"
  git -C "$1" checkout --quiet --detach "$commit"
}

if [ "${1:-}" = "--out" ]; then
  out="${2:?usage: scripts/reproducible-build.sh --out DIR}"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  clone "$work/src"
  build "$work/src"
  mkdir -p "$out"
  cp "$work/src/target/release/hypervisor" "$work/src/target/release/hypervisor-client" "$out/"
  files=(hypervisor hypervisor-client)
  if [ -z "${HOST_ONLY:-}" ]; then
    for plugin in payments policy-python js-runtime starlingmonkey; do
      cp "$work/src/target/wasm/$plugin.wasm" "$out/$plugin.wasm"
      files+=("$plugin.wasm")
    done
  fi
  echo "$commit" >"$out/COMMIT"
  (cd "$out" && sha256sum "${files[@]}")
  exit 0
fi

echo "reproducible-build: $(rustc -V), $(cargo -V)" >&2
work="$(mktemp -d)"
# KEEP_WORK=1 keeps both clones and their builds (for a closer look at a difference).
if [ -z "${KEEP_WORK:-}" ]; then trap 'rm -rf "$work"' EXIT; else echo "reproducible-build: keeping $work" >&2; fi
# Two paths that differ in length and name, as two builders' machines would.
a="$work/a"
b="$work/builder-two/checkout"
clone "$a"
clone "$b"
echo "reproducible-build: building $commit in $a" >&2
build "$a"
echo "reproducible-build: building $commit in $b" >&2
build "$b"
# The embedded plug-ins first: if one differs, so does the host.
status=0
plugins=(payments policy-python js-runtime starlingmonkey)
if [ -n "${HOST_ONLY:-}" ]; then plugins=(); fi
for plugin in "${plugins[@]}"; do
  pa="$(sha256sum "$a/target/wasm/$plugin.wasm" | cut -d' ' -f1)"
  pb="$(sha256sum "$b/target/wasm/$plugin.wasm" | cut -d' ' -f1)"
  if [ "$pa" = "$pb" ]; then
    echo "reproducible-build: $plugin.wasm identical: $pa" >&2
  else
    echo "reproducible-build: $plugin.wasm NOT reproducible: $pa != $pb" >&2
    status=1
  fi
done
ha="$(sha256sum "$a/target/release/hypervisor" | cut -d' ' -f1)"
hb="$(sha256sum "$b/target/release/hypervisor" | cut -d' ' -f1)"
if [ "$ha" != "$hb" ]; then
  echo "reproducible-build: NOT reproducible: $ha ($a) != $hb ($b)" >&2
  cmp "$a/target/release/hypervisor" "$b/target/release/hypervisor" | head -5 >&2 || true
  # What still names a build path (the usual cause), from each binary.
  for dir in "$a" "$b"; do
    echo "strings naming $dir:" >&2
    strings -n 6 "$dir/target/release/hypervisor" | grep -F "$dir" | head -10 >&2 || true
  done
  exit 1
fi
ca="$(sha256sum "$a/target/release/hypervisor-client" | cut -d' ' -f1)"
cb="$(sha256sum "$b/target/release/hypervisor-client" | cut -d' ' -f1)"
if [ "$ca" = "$cb" ]; then
  echo "reproducible-build: hypervisor-client identical: $ca" >&2
else
  echo "reproducible-build: hypervisor-client NOT reproducible: $ca != $cb" >&2
  status=1
fi
if [ "$status" != 0 ]; then
  exit 1
fi
echo "reproducible-build: reproducible: both builds of $commit are byte-identical" >&2
echo "$ha  hypervisor (host measurement of $commit)"
