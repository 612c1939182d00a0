#!/usr/bin/env python3
"""Writes deploy/dstack/app-compose.json (and app-compose.sha256) from docker-compose.yaml, or
checks that the committed files agree.

The dstack guest hashes the exact bytes of app-compose.json (the compose hash, extended into
RTMR3 as the `compose-hash` event), so the file is written in the one form dstack's SDKs
write: keys sorted recursively, compact, UTF-8, no trailing newline (docs/DEPLOY.md).

  python3 deploy/dstack/app-compose.py                     write both files
  python3 deploy/dstack/app-compose.py --image REF@sha256:D
                                          set the hypervisor service's image first
  python3 deploy/dstack/app-compose.py --check [--sdk]     check the committed files (with
                                          --sdk, also with dstack's official Python SDK,
                                          dstack-sdk: get_compose_hash)
Standard library only, except --sdk.
"""

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMPOSE = HERE / "docker-compose.yaml"
APP_COMPOSE = HERE / "app-compose.json"
HASH = HERE / "app-compose.sha256"

# The app's settings (dstack's AppCompose, manifest version 2). allowed_envs: the only
# variables the operator's encrypted environment may set; anything else it sends is dropped.
SETTINGS = {
    "manifest_version": 2,
    "name": "wasm-hypervisor",
    "runner": "docker-compose",
    "kms_enabled": True,
    "gateway_enabled": True,
    "local_key_provider_enabled": False,
    "key_provider_id": "",
    "public_logs": False,
    "public_sysinfo": True,
    "public_tcbinfo": True,
    "allowed_envs": ["HYPERVISOR_DATABASE", "HYPERVISOR_REPLICA_ID"],
    "no_instance_id": False,
    "secure_time": True,
}

IMAGE_LINE = re.compile(r"^(\s*image:\s*)(\S+)\s*$", re.M)
PINNED = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


def canonical(doc):
    """dstack's deterministic JSON: sorted keys, compact, UTF-8."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def app_compose(compose_text):
    return canonical(dict(SETTINGS, docker_compose_file=compose_text))


def images(compose_text):
    return [m.group(2).strip("'\"") for m in IMAGE_LINE.finditer(compose_text)]


def check(use_sdk):
    compose = COMPOSE.read_text(encoding="utf-8")
    data = APP_COMPOSE.read_bytes()
    problems = []
    if data != app_compose(compose):
        problems.append("app-compose.json is not docker-compose.yaml with the settings of "
                        "app-compose.py in canonical form: run app-compose.py")
    digest = hashlib.sha256(data).hexdigest()
    recorded = HASH.read_text().split()[0] if HASH.exists() else ""
    if recorded != digest:
        problems.append(f"app-compose.sha256 says {recorded!r}, the file hashes to {digest}")
    for ref in images(compose):
        if not PINNED.match(ref):
            problems.append(f"image {ref} is not pinned by @sha256 digest")
    if not images(compose):
        problems.append("docker-compose.yaml names no image")
    if use_sdk:
        from dstack_sdk import get_compose_hash  # the official SDK (PyPI dstack-sdk)
        sdk = get_compose_hash(json.loads(data))
        if sdk != digest:
            problems.append(f"dstack-sdk's get_compose_hash gives {sdk}, the file {digest}")
        sdk_normalised = get_compose_hash(json.loads(data), normalize=True)
        if sdk_normalised != digest:
            problems.append(f"normalised, dstack-sdk gives {sdk_normalised}")
    for p in problems:
        print(f"app-compose: {p}", file=sys.stderr)
    if not problems:
        print(f"app-compose: ok, compose hash {digest}" + (" (dstack-sdk agrees)" if use_sdk else ""))
    return 1 if problems else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="the hypervisor image, REPOSITORY@sha256:DIGEST")
    parser.add_argument("--check", action="store_true", help="check the committed files")
    parser.add_argument("--sdk", action="store_true", help="with --check: also dstack-sdk")
    args = parser.parse_args()
    if args.check:
        return check(args.sdk)
    compose = COMPOSE.read_text(encoding="utf-8")
    if args.image:
        if not PINNED.match(args.image):
            sys.exit("app-compose: --image must be REPOSITORY@sha256:<64 lowercase hex>")
        compose, n = IMAGE_LINE.subn(lambda m: m.group(1) + args.image, compose, count=1)
        if n != 1:
            sys.exit("app-compose: no image: line in docker-compose.yaml")
        COMPOSE.write_text(compose, encoding="utf-8")
    data = app_compose(compose)
    APP_COMPOSE.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    HASH.write_text(f"{digest}  app-compose.json\n")
    print(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
