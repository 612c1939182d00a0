#!/usr/bin/env bash
# Installs HAProxy from Debian if it is missing (as root; otherwise says how). Used by
# scripts/test.sh (tests/e2e/balancer.rs) and scripts/cluster.sh, which run
# deploy/haproxy/haproxy.cfg.
set -euo pipefail
if command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-haproxy: haproxy is missing; run as root, or: sudo apt-get install haproxy" >&2
  exit 1
fi
echo "install-haproxy: apt-get install haproxy" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null
# Debian starts the packaged service; only our own instances should run.
if command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now haproxy >/dev/null 2>&1 || true
fi
service haproxy stop >/dev/null 2>&1 || true
/usr/sbin/haproxy -v | head -n 1 >&2
