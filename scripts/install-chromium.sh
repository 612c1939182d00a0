#!/usr/bin/env bash
# Installs Debian's Chromium if it is missing (as root; otherwise says how). Used by
# scripts/test.sh: the TypeScript SDK's browser test (sdk/typescript/test/browser.test.js) drives
# it headless through playwright-core, which never downloads a browser of its own.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-chromium: chromium is missing; run as root, or: sudo apt-get install chromium" >&2
  exit 1
fi
echo "install-chromium: apt-get install chromium" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
/usr/bin/chromium --version >&2
