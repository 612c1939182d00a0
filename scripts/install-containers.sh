#!/usr/bin/env bash
# Installs the container tools the image scripts use, from Debian, if any is missing (as root;
# otherwise says how): podman (builds and runs the image), runc (podman's runtime here: crun
# fails on this machine kind's hybrid cgroup layout), skopeo (copies the image between
# stores and layouts without touching its bytes) and oci-image-tool (validates the layout).
# Used by scripts/test.sh (tests/e2e/image.rs) and scripts/build-image.sh.
#
# The image's manifest digest depends on the tool that builds it (buildah leaves the
# org.opencontainers.image.base.digest annotation empty where podman fills it), so
# scripts/build-image.sh prints the versions it ran; the published digests were made with
# Debian 12's podman 4.3.1 (docs/DEPLOY.md, "The image").
set -euo pipefail
need=()
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || need+=(runc)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v oci-image-tool >/dev/null 2>&1 || need+=(oci-image-tool)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
if [ "${#need[@]}" = 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-containers: missing ${need[*]}; run as root, or: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
echo "install-containers: apt-get install ${need[*]}" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
podman --version >&2
