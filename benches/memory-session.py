#!/usr/bin/env python3
"""RSS over a scripted session of the release host (issue 51, item 1).

One `hypervisor serve` on a new data directory (default configuration, plug-ins precompiled
as scripts/serve.sh leaves them), driven through its public routes, RSS read from /proc after
each phase:

  1. start                     idle 3 s after /ping first answered; peak of the start (VmHWM)
  2. 8 JS set-ups              POST /environments/setup, 8 different environments, each run once
  3. 100 agents                hypervisor-client agent deploy (text-stats, 100 names)
  4. 1,000 invocations of each kind, 4 client threads:
                               native invoke, MCP tools/call, A2A SendMessage, JS environment
                               execute, Python (POST /execute/python is encrypted: the CLI's
                               `exec --python`, 100 of them, each a process)
  5. after load                idle 10 s after the last request: does memory come back?

Targets (issue 51): idle after start <= 120 MiB, peak of the start <= 250 MiB, <= 300 MiB
after the load (phase 4), and back near the start's idle afterwards; a missed target is
printed as MISSED, loudly.

    benches/memory-session.py               # target/release/hypervisor{,-client}
    HYPERVISOR=/other/hypervisor benches/memory-session.py
    CONFIG=small.toml benches/memory-session.py   # serve --config small.toml (cache budgets, ...)
    SMAPS=1 benches/memory-session.py             # and where the memory is after each phase

Builds nothing: run scripts/serve.sh (or cargo build --release -p hypervisor -p
hypervisor-client, then target/release/hypervisor precompile) first.
"""

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostproc import free_port, resident_by_mapping, status_mib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.environ.get("HYPERVISOR", os.path.join(ROOT, "target/release/hypervisor"))
CLIENT = os.environ.get("HYPERVISOR_CLIENT", os.path.join(ROOT, "target/release/hypervisor-client"))
TEXT_STATS = os.path.join(ROOT, "target/wasm/text-stats.wasm")
INVOCATIONS = int(os.environ.get("INVOCATIONS", "1000"))
TARGETS = {"start idle": 120, "start peak": 250, "after load": 300}






def post(url, body, headers=None):
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"content-type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read() or b"null")


def cli_ok(argv):
    """Runs the CLI; on a failure prints what it said (and returns False)."""
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        print(f"memory-session: {' '.join(argv[3:])} failed ({done.returncode}): "
              f"{done.stderr.strip()}", file=sys.stderr)
    return done.returncode == 0


def run_many(n, fn, threads=4):
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for result in pool.map(fn, range(n)):
            if result is False:
                sys.exit("memory-session: a request failed")


def main():
    for path in (BINARY, CLIENT, TEXT_STATS):
        if not os.path.exists(path):
            sys.exit(f"memory-session: no {path} (scripts/serve.sh builds everything)")
    work = tempfile.mkdtemp(prefix="memory-session-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, RUST_LOG="warn")
    env.pop("HYPERVISOR_CONFIG", None)
    config = ["--config", os.environ["CONFIG"]] if os.environ.get("CONFIG") else []
    child = subprocess.Popen([BINARY, "serve", *config, "--listen", f"127.0.0.1:{port}",
                              "--data-dir", os.path.join(work, "data")],
                             stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "log"), "w"), env=env)
    rows = []

    def measure(phase, started):
        rss = status_mib(child.pid, "VmRSS")
        rows.append((phase, rss, status_mib(child.pid, "VmHWM"), time.monotonic() - started))
        print(f"  {phase:34} RSS {rss:6.0f} MiB  (peak so far {rows[-1][2]:.0f} MiB, {rows[-1][3]:.1f} s)",
              flush=True)
        if os.environ.get("SMAPS"):
            for mib, n, what in resident_by_mapping(child.pid):
                print(f"      {mib:7.1f} MiB in {n:4} mappings  {what}", flush=True)

    try:
        t = time.monotonic()
        while True:
            try:
                urllib.request.urlopen(base + "/ping", timeout=1).read()
                break
            except OSError:
                if child.poll() is not None or time.monotonic() - t > 300:
                    sys.exit("memory-session: the host did not start (log in " + work + ")")
                time.sleep(0.02)
        ready = time.monotonic() - t
        time.sleep(3)
        measure(f"start (ready in {ready:.2f} s)", t)
        start_peak = rows[-1][2]

        t = time.monotonic()
        envs = []
        for i in range(8):
            module = ("export async function handler(event) { const out = {}; "
                      f"for (let k = 0; k < {1000 + i}; k++) out['k' + (k % 50)] = k; "
                      "return {n: event.data.n, keys: Object.keys(out).length}; }")
            envs.append(post(base + "/environments/setup",
                             {"mainModule": "main.js", "modules": {"main.js": module}})["id"])
            post(f"{base}/environments/{envs[-1]}/execute", {"data": {"n": i}})
        measure("8 JS set-ups", t)

        t = time.monotonic()
        key = os.path.join(work, "owner.key")
        for i in range(100):
            subprocess.run([CLIENT, "--server", base, "--key", key, "agent", "deploy", f"stats-{i}",
                            TEXT_STATS, "--description", f"word statistics {i}"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        measure("100 agents deployed", t)

        t = time.monotonic()
        event = {"text": "The quick brown fox jumps over the lazy dog. It barked."}
        run_many(INVOCATIONS, lambda i: post(f"{base}/agents/stats-{i % 100}/invoke",
                                             {"event": event}) is not None)
        measure(f"{INVOCATIONS} native invocations", t)
        t = time.monotonic()
        run_many(INVOCATIONS, lambda i: "result" in post(base + "/mcp", {
            "jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": f"stats-{i % 100}", "arguments": event}}))
        measure(f"{INVOCATIONS} MCP tools/call", t)
        t = time.monotonic()
        run_many(INVOCATIONS, lambda i: "result" in post(f"{base}/agents/stats-{i % 100}/a2a", {
            "jsonrpc": "2.0", "id": i, "method": "SendMessage",
            "params": {"message": {"messageId": f"m{i}", "role": "ROLE_USER",
                                   "parts": [{"text": "one two three"}]}}}, {"A2A-Version": "1.0"}))
        measure(f"{INVOCATIONS} A2A SendMessage", t)
        t = time.monotonic()
        run_many(INVOCATIONS, lambda i: post(f"{base}/environments/{envs[i % 8]}/execute",
                                             {"data": {"n": i}}).get("exitCode") == 0)
        measure(f"{INVOCATIONS} JS executions", t)
        t = time.monotonic()
        script = os.path.join(work, "stats.py")
        with open(script, "w") as f:
            f.write("import sys\nprint(sum(range(1000)))\n")
        run_many(100, lambda i: cli_ok([CLIENT, "--server", base, "exec", "--python", script]),
                 threads=2)
        measure("100 encrypted Python runs", t)
        after_load = rows[-1][1]

        t = time.monotonic()
        time.sleep(10)
        measure("10 s after the load", t)
        after_rest = rows[-1][1]
    finally:
        child.terminate()
        child.wait()

    start_idle = rows[0][1]
    print()
    missed = []
    if start_idle > TARGETS["start idle"]:
        missed.append(f"idle after start {start_idle:.0f} MiB > {TARGETS['start idle']} MiB")
    if start_peak > TARGETS["start peak"]:
        missed.append(f"peak of the start {start_peak:.0f} MiB > {TARGETS['start peak']} MiB")
    worst = max(r[1] for r in rows)
    if worst > TARGETS["after load"]:
        missed.append(f"RSS reached {worst:.0f} MiB > {TARGETS['after load']} MiB under the session")
    print(f"after the load: {after_load:.0f} MiB; 10 s later {after_rest:.0f} MiB "
          f"(start's idle {start_idle:.0f} MiB: +{after_rest - start_idle:.0f} MiB kept)")
    for m in missed:
        print(f"!!! TARGET MISSED: {m}")
    if not missed:
        print("targets met: start idle <= 120 MiB, start peak <= 250 MiB, <= 300 MiB under the session")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
