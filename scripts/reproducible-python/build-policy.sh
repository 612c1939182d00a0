#!/usr/bin/env bash
# Builds the Python policy plug-in (components/policy-python, world policy-python) with
# componentize-py so that two builds give the same bytes, wherever and whenever they run:
#
#   scripts/reproducible-python/build-policy.sh COMPONENTIZE_PY OUT
#
# componentize-py pre-initialises CPython and snapshots its memory; four things from the build
# machine reach that snapshot (../shared/notes/reproducible-python.md), and each is fixed here:
# - randomness (CPython's hash secret, the WASI RNG): entropy.so, an LD_PRELOAD library that
#   answers getrandom with bytes fixed by the request;
# - clocks (mimalloc's keys, the process clock): libfaketime, frozen at SOURCE_DATE_EPOCH;
# - file metadata the guest sees (directory times, inode and device numbers, listing order,
#   bytecode written beside the sources): the sources, an empty virtual environment and
#   componentize-py's temporary directories all live in a frozenfs.py view, mounted as
#   fuseblk on a fixed loop device;
# - the machine's own site-packages: VIRTUAL_ENV names the empty one in the view.
# Root only (mount, losetup); one build at a time (a lock). Debian packages: faketime,
# python3-fusepy, fuse, gcc (scripts/reproducible-build.sh installs them).
set -euo pipefail
componentize_py="$(realpath "$1")"
out="$(realpath -m "$2")"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
epoch="${SOURCE_DATE_EPOCH:-946684800}"
loop="${REPRODUCIBLE_LOOP_DEVICE:-/dev/loop7}"
faketime=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[ "$(id -u)" = 0 ] || { echo "build-policy: needs root (a FUSE mount on a loop device)" >&2; exit 1; }
[ -f "$faketime" ] || { echo "build-policy: needs libfaketime (apt-get install faketime)" >&2; exit 1; }
/usr/bin/python3 -c 'import fusepy' 2>/dev/null ||
  { echo "build-policy: needs python3-fusepy (apt-get install python3-fusepy fuse)" >&2; exit 1; }

exec 9>/tmp/wasm-hypervisor-policy-build.lock
flock 9
# A fixed path: nothing of it reaches the guest, but a fixed one keeps leftovers in one place.
stage=/tmp/wasm-hypervisor-policy-build
if mountpoint -q "$stage/view" 2>/dev/null; then umount "$stage/view"; fi
rm -rf "$stage"
mkdir -p "$stage/backing" "$stage/view"
fs_pid=
bound=
cleanup() {
  umount "$stage/view" 2>/dev/null || true
  [ -z "$fs_pid" ] || wait "$fs_pid" 2>/dev/null || true
  [ -z "$bound" ] || losetup -d "$loop" 2>/dev/null || true
  rm -rf "$stage"
}
trap cleanup EXIT

cc -O2 -shared -fPIC -o "$stage/entropy.so" "$here/entropy.c" -ldl
truncate -s 1M "$stage/device.img"
if ! losetup "$loop" "$stage/device.img" 2>/dev/null; then
  echo "build-policy: $loop is in use; set REPRODUCIBLE_LOOP_DEVICE to a free one" >&2
  exit 1
fi
bound=1
SOURCE_DATE_EPOCH="$epoch" /usr/bin/python3 "$here/frozenfs.py" "$stage/backing" "$stage/view" "$loop" &
fs_pid=$!
for _ in $(seq 100); do mountpoint -q "$stage/view" && break; sleep 0.1; done
mountpoint -q "$stage/view" || { echo "build-policy: the view did not mount" >&2; exit 1; }

mkdir -p "$stage/view/tmp" "$stage/view/venv/lib/site-packages" "$stage/view/src"
# The sources, copied in byte order of their paths, without bytecode caches.
(cd "$root/components/policy-python/src" &&
  find . -name __pycache__ -prune -o -type f -print | LC_ALL=C sort |
  while read -r f; do
    mkdir -p "$stage/view/src/$(dirname "$f")"
    cp "$f" "$stage/view/src/$f"
  done)

cd "$root"
env VIRTUAL_ENV="$stage/view/venv" TZ=UTC TMPDIR="$stage/view/tmp" \
  FAKETIME="$(TZ=UTC date -d "@$epoch" '+%Y-%m-%d %H:%M:%S')" \
  LD_PRELOAD="$faketime:$stage/entropy.so" \
  "$componentize_py" -q -d wit -w policy-python componentize app -p "$stage/view/src" -o "$out.tmp"
mv "$out.tmp" "$out"
