#!/usr/bin/env bash
# Checks that vendor/polkavm is the crates.io release polkavm 0.37.0 (fetched by cargo, which
# checks it against the registry's checksum) plus exactly vendor/polkavm.patch, and nothing
# else but the files vendor/README.md lists as added (licences, rustfmt.toml).
#
#   scripts/check-vendor.sh            check (test.sh runs this)
#   scripts/check-vendor.sh --refresh  rewrite vendor/polkavm.patch from vendor/polkavm
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

crate=polkavm
version=0.37.0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A throwaway project that depends on the release itself (no [patch]), so cargo fetches the
# published crate and verifies it against the index's checksum.
mkdir -p "$work/probe/src"
cat > "$work/probe/Cargo.toml" <<TOML
[package]
name = "vendor-probe"
version = "0.0.0"
edition = "2021"
[dependencies]
$crate = "=$version"
[workspace]
TOML
: > "$work/probe/src/lib.rs"
cargo fetch --quiet --manifest-path "$work/probe/Cargo.toml"
pristine="$(cargo metadata --quiet --format-version 1 --manifest-path "$work/probe/Cargo.toml" |
  python3 -c '
import json, os, sys
name, version = sys.argv[1], sys.argv[2]
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == name and p["version"] == version and p["source"].startswith("registry+"):
        print(os.path.dirname(p["manifest_path"]))
        break
else:
    sys.exit(f"check-vendor: {name} {version} was not fetched")' "$crate" "$version")"

# The files vendor/polkavm adds to the release (vendor/README.md says why).
added=(LICENSE-MIT LICENSE-APACHE rustfmt.toml)
copy_without_added() {
  mkdir -p "$2"
  cp -r "$1"/. "$2"/
  rm -f "$2/.cargo-ok"
  for f in "${added[@]}"; do rm -f "$2/$f"; done
}
copy_without_added "$pristine" "$work/a"
copy_without_added "vendor/$crate" "$work/b"

if [ "${1:-}" = "--refresh" ]; then
  (cd "$work" && diff -ruN a b | sed -E 's/^(---|\+\+\+) ([^\t]+)\t.*$/\1 \2/' \
    > "$root/vendor/$crate.patch") || true
  echo "check-vendor: vendor/$crate.patch rewritten"
  exit 0
fi

for f in "${added[@]}"; do
  [ -f "vendor/$crate/$f" ] || { echo "check-vendor: vendor/$crate/$f is missing" >&2; exit 1; }
done
(cd "$work/a" && patch --quiet -p1 < "$root/vendor/$crate.patch")
if ! diff -r "$work/a" "$work/b" >&2; then
  echo "check-vendor: vendor/$crate is not $crate $version plus vendor/$crate.patch" >&2
  exit 1
fi
echo "check-vendor: vendor/$crate = $crate $version (crates.io) + vendor/$crate.patch"
