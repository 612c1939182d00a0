#!/usr/bin/env bash
# Builds the host's OCI image (deploy/image/Containerfile) from a build's outputs, the same way
# every time, so that the same binaries give the same manifest digest whoever builds it.
#
#   scripts/build-image.sh --from DIR --layout OUT [--tag TAG] [--store STORE]
#
#   --from DIR     holds `hypervisor` and `hypervisor-client` (scripts/reproducible-build.sh
#                  --out DIR makes them; any build works, but only that one is reproducible)
#   --layout OUT   writes the image there as an OCI image layout (gzip layers, the form a
#                  registry serves: `skopeo copy oci:OUT:TAG docker://…` uploads it unchanged)
#   --tag TAG      the image's tag in the store and the layout (default: latest)
#   --store STORE  a podman storage root of its own (STORE/root, STORE/run); default: the
#                  system's. The image is left there as localhost/hypervisor:TAG (and
#                  localhost/hypervisor:build, the name it is built under).
#
# Prints the manifest digest of the layout (what `image@sha256:…` pins) on stdout; the
# versions of the tools, the local (uncompressed) digest and the layout check on stderr.
#
# What makes it reproducible:
# - rootfs/ is assembled with fixed modes (0755 directories and programs, 0644 files) and
#   modification times (the epoch); COPY --chown fixes the owners;
# - `podman build --timestamp 0` sets the image's creation time (and its layers' file times) to
#   the epoch, `--omit-history` drops the history lines (one embeds a hash that depends on the
#   builder's file ownership), `--identity-label=false` drops the builder's version label;
# - the C runtime (glibc, libgcc_s: Debian 12's packages, whose versions are printed) and CA
#   roots (Debian's ca-certificates) come from the build machine, like the compiler: rebuilders
#   use the same Debian release and tool versions (docs/DEPLOY.md lists them);
# - the tool: podman and buildah differ in one manifest annotation
#   (org.opencontainers.image.base.digest, which buildah leaves empty), so the published digests
#   are podman's, version printed below.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

from="" layout="" tag="latest" store=""
while [ $# -gt 0 ]; do
  case "$1" in
    --from) from="$2"; shift 2 ;;
    --layout) layout="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --store) store="$2"; shift 2 ;;
    *) echo "build-image: unknown argument $1 (see the comment at the top)" >&2; exit 2 ;;
  esac
done
if [ -z "$from" ] || [ -z "$layout" ]; then
  echo "usage: scripts/build-image.sh --from DIR --layout OUT [--tag TAG] [--store STORE]" >&2
  exit 2
fi
for binary in hypervisor hypervisor-client; do
  if [ ! -x "$from/$binary" ]; then
    echo "build-image: no $from/$binary (scripts/reproducible-build.sh --out $from builds both)" >&2
    exit 2
  fi
done

"$root/scripts/install-containers.sh"

podman_cmd=(podman)
if [ -n "$store" ]; then
  mkdir -p "$store/root" "$store/run"
  podman_cmd=(podman --root "$store/root" --runroot "$store/run" --storage-driver vfs)
fi

# The context: rootfs/ (what the image holds) and data/ (the empty data volume).
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
rootfs="$ctx/rootfs"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs/lib/x86_64-linux-gnu" \
  "$rootfs/lib64" "$rootfs/tmp" "$ctx/data"
cp "$from/hypervisor" "$from/hypervisor-client" "$rootfs/usr/local/bin/"
# The plug-ins compiled ahead of time by that binary, for the image's default configuration,
# where it looks for them (beside itself), so that a first start does not compile them
# (host/src/engine/precompiled.rs checks them). Compilation is deterministic: the same binary
# gives the same files.
env -u HYPERVISOR_CONFIG "$from/hypervisor" precompile \
  --out "$rootfs/usr/local/bin/hypervisor-precompiled" >&2

# The shared libraries the binaries load, and the loader: exactly what ldd names.
libraries() {
  ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/lib64\// {print $1}'
}
for lib in $( (libraries "$from/hypervisor"; libraries "$from/hypervisor-client") | sort -u); do
  case "$lib" in
    /lib64/*) cp -L "$lib" "$rootfs/lib64/" ;;
    *) cp -L "$lib" "$rootfs/lib/x86_64-linux-gnu/" ;;
  esac
done
cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
# An unprivileged user and group for the host (65532, as distroless images name it), and name
# resolution from /etc/hosts then DNS (PostgreSQL, facilitator and PCCS host names).
printf 'root:x:0:0:root:/root:/sbin/nologin\nhypervisor:x:65532:65532:hypervisor:/data:/sbin/nologin\n' \
  >"$rootfs/etc/passwd"
printf 'root:x:0:\nhypervisor:x:65532:\n' >"$rootfs/etc/group"
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
cp "$root/deploy/image/Containerfile" "$ctx/Containerfile"

# Fixed modes and times, whatever the umask and clock of this machine.
find "$ctx" -type d -exec chmod 0755 {} +
find "$ctx" -type f -exec chmod 0644 {} +
chmod 0755 "$rootfs/usr/local/bin/"* "$rootfs/lib64/"*
chmod 1777 "$rootfs/tmp"
find "$ctx" -exec touch -h -d @0 {} +

echo "build-image: $(podman --version), $(runc --version 2>/dev/null | head -n 1)," \
  "libc6 $(dpkg-query -W -f '${Version}' libc6 2>/dev/null || echo '?')," \
  "libgcc-s1 $(dpkg-query -W -f '${Version}' libgcc-s1 2>/dev/null || echo '?')," \
  "ca-certificates $(dpkg-query -W -f '${Version}' ca-certificates 2>/dev/null || echo '?')" >&2
# One name for every build: podman writes the name built (-t) into the manifest's
# org.opencontainers.image.base.name annotation, so another name would give another digest.
image="localhost/hypervisor:build"
"${podman_cmd[@]}" build --quiet --timestamp 0 --omit-history --identity-label=false \
  --label "org.opencontainers.image.title=wasm-hypervisor" \
  -f "$ctx/Containerfile" -t "$image" "$ctx" >/dev/null
local_digest="$("${podman_cmd[@]}" image inspect --format '{{.Digest}}' "$image")"
"${podman_cmd[@]}" tag "$image" "localhost/hypervisor:$tag"
echo "build-image: localhost/hypervisor:$tag in the store: $local_digest (uncompressed layers)" >&2

# The layout a registry would serve: gzip layers (deterministic for the same bytes and level).
rm -rf "$layout"
"${podman_cmd[@]}" push --quiet --format oci --compression-format gzip "$image" "oci:$layout:$tag"
oci-image-tool validate --type image --ref "name=$tag" "$layout" >&2
digest="$(python3 - "$layout" "$tag" <<'PY'
import json, sys
index = json.load(open(f"{sys.argv[1]}/index.json"))
tag = sys.argv[2]
found = [m["digest"] for m in index["manifests"]
         if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
if len(found) != 1:
    sys.exit(f"build-image: {len(found)} manifests tagged {tag} in the layout")
print(found[0])
PY
)"
echo "build-image: $layout:$tag manifest $digest" >&2
echo "$digest"
