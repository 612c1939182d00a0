#!/usr/bin/env bash
# Builds the release OCI image reproducibly and checks that it is, then runs it:
#
#   scripts/reproducible-image.sh                   all of it, from HEAD
#   scripts/reproducible-image.sh --binaries DIR    from step 2, on binaries made earlier by
#                                                   scripts/reproducible-build.sh --out DIR
#
#   1. scripts/reproducible-build.sh --out: the host (plug-ins embedded) and the CLI, built
#      from a clean clone of HEAD the reproducible way;
#   2. scripts/build-image.sh twice from copies of those outputs, in two directories of
#      different names and two separate podman stores: the manifest digests must be equal
#      (and the layouts valid: oci-image-tool validate);
#   3. the layout uploaded to a registry on loopback (Debian's docker-registry) with skopeo,
#      pulled back by digest into a fresh store, as dstack pulls `image@sha256:…`;
#   4. the image end-to-end tests (tests/e2e/image.rs) on the pulled image: podman on
#      loopback, against SQLite and against PostgreSQL: ping, an encrypted execution, deploy
#      and invoke, the CLI inside the image.
# Prints the image's manifest digest and the binaries' SHA-256s (what deploy/dstack pins and
# `hypervisor-client reference-values --app-compose` reads) and keeps the build in
# target/image: binaries/, layout/ (`skopeo copy --preserve-digests oci:target/image/layout:TAG
# docker://REPO:TAG` publishes it with the same digest), DIGEST, SHA256SUMS. Root only (the policy plug-in's reproducible build, podman).
# About 20 minutes on 2 cores (one release build); not part of scripts/test.sh, whose image
# test builds its image from the test binaries instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
start=$(date +%s)
out="$root/target/image"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ "${1:-}" = "--binaries" ]; then
  # Binaries made earlier by `scripts/reproducible-build.sh --out DIR` (with its COMMIT file).
  from="$(cd "${2:?usage: scripts/reproducible-image.sh [--binaries DIR]}" && pwd)"
  if [ "$from" != "$out/binaries" ]; then
    rm -rf "$out"
    mkdir -p "$out"
    cp -r "$from" "$out/binaries"
  fi
  rm -rf "$out/layout"
  (cd "$out/binaries" && sha256sum hypervisor hypervisor-client ./*.wasm | sed 's| \./| |') \
    >"$out/SHA256SUMS"
else
  rm -rf "$out"
  mkdir -p "$out"
  ./scripts/reproducible-build.sh --out "$out/binaries" >"$out/SHA256SUMS"
fi
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

# Published the way dstack pulls it: uploaded to a registry (Debian's docker-registry, on
# loopback) with skopeo, which keeps the digest (--preserve-digests fails rather than change
# it), then pulled by digest into a fresh store.
if ! command -v docker-registry >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
  service docker-registry stop >/dev/null 2>&1 || true
fi
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mkdir -p "$work/registry"
printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$work/registry/data" "$port" >"$work/registry/config.yml"
docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.2; done
skopeo copy --quiet --dest-tls-verify=false --preserve-digests "oci:$work/layout-one:$tag" \
  "docker://127.0.0.1:$port/wasm-hypervisor:$tag" >&2
pulled="127.0.0.1:$port/wasm-hypervisor@$d1"
podman --root "$work/store-pull/root" --runroot "$work/store-pull/run" --storage-driver vfs \
  pull --quiet --tls-verify=false "$pulled" >&2
echo "reproducible-image: pushed and pulled back by digest: $pulled" >&2

# The image as pulled, run: the e2e image tests on it (their own components come from
# target/wasm).
./scripts/build-programs.sh >&2
HYPERVISOR_TEST_IMAGE="$pulled" HYPERVISOR_TEST_IMAGE_STORE="$work/store-pull" \
  cargo test --workspace --locked --features hypervisor/simulated-attestation --test e2e image >&2
end=$(date +%s)
echo "reproducible-image: binaries $((built - start)) s, two image builds $((imaged - built)) s," \
  "registry round trip and image tests $((end - imaged)) s" >&2
echo "image $d1 (commit $commit)"
cat "$out/SHA256SUMS"
