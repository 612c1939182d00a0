#!/usr/bin/env bash
# Builds the release OCI image reproducibly and checks that it is, then runs it:
#   1. scripts/reproducible-build.sh --out: the host (plug-ins embedded) and the CLI, built
#      from a clean clone of HEAD the reproducible way;
#   2. scripts/build-image.sh twice from copies of those outputs, in two directories of
#      different names and two separate podman stores: the manifest digests must be equal
#      (and the layouts valid: oci-image-tool validate);
#   3. the image end-to-end tests (tests/e2e/image.rs) on that image: podman on loopback,
#      against SQLite and against PostgreSQL: ping, an encrypted execution, deploy and invoke.
# Prints the image's manifest digest and the binaries' SHA-256s (what deploy/dstack pins and
# `hypervisor-client reference-values --app-compose` reads) and keeps the layout in
# target/image/layout (KEEP: `skopeo copy oci:target/image/layout:TAG docker://REPO:TAG`
# uploads it unchanged). Root only (the policy plug-in's reproducible build, podman).
# About 20 minutes on 2 cores (one release build); not part of scripts/test.sh, whose image
# test builds its image from the test binaries instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
start=$(date +%s)
out="$root/target/image"
rm -rf "$out"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

./scripts/reproducible-build.sh --out "$out/binaries" >"$out/SHA256SUMS"
built=$(date +%s)
commit="$(cat "$out/binaries/COMMIT")"
tag="${commit:0:12}"

# Two builders: other directories (of other lengths), other stores.
cp -r "$out/binaries" "$work/one"
mkdir -p "$work/builder-two/elsewhere"
cp -r "$out/binaries" "$work/builder-two/elsewhere/input"
d1="$(./scripts/build-image.sh --from "$work/one" --layout "$work/layout-one" --tag "$tag" \
  --store "$work/store-one")"
d2="$(./scripts/build-image.sh --from "$work/builder-two/elsewhere/input" \
  --layout "$work/builder-two/layout" --tag "$tag" --store "$work/builder-two/store")"
imaged=$(date +%s)
if [ "$d1" != "$d2" ]; then
  echo "reproducible-image: NOT reproducible: $d1 != $d2" >&2
  diff <(cd "$work/layout-one/blobs/sha256" && sha256sum ./*) \
    <(cd "$work/builder-two/layout/blobs/sha256" && sha256sum ./*) >&2 || true
  exit 1
fi
cp -r "$work/layout-one" "$out/layout"
echo "$d1" >"$out/DIGEST"
echo "reproducible-image: both builds of $commit give the manifest $d1" >&2

# The release image itself, run (the tests' own components come from target/wasm)
./scripts/build-wasm.sh >&2
# The release image itself, run: the e2e image tests on it (store one).
HYPERVISOR_TEST_IMAGE="localhost/hypervisor:$tag" HYPERVISOR_TEST_IMAGE_STORE="$work/store-one" \
  cargo test --workspace --locked --features hypervisor/simulated-attestation --test e2e image >&2
end=$(date +%s)
echo "reproducible-image: binaries $((built - start)) s, two image builds $((imaged - built)) s," \
  "image tests $((end - imaged)) s" >&2
echo "image $d1 (commit $commit)"
cat "$out/SHA256SUMS"
