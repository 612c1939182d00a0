#!/usr/bin/env python3
"""First start on a new data directory, side by side in one run (issue 51, items 1 and 2).

For each variant, ROUNDS starts of `hypervisor serve` on a new, empty data directory:
  - compiled:    `--precompiled-dir ""`, the previous behaviour (plug-ins compiled at start);
  - precompiled: the plug-ins compiled ahead of time by `hypervisor precompile` (what
                 scripts/serve.sh and the image do), loaded after their checks;
  - cached:      a second start on the data directory of a `compiled` start (the sealed
                 plug-in cache, every start but the first before precompiled plug-ins);
  - baseline:    with BASELINE=/path/to/an/older/hypervisor, that binary's first start.

Reported per start: time from spawn until `/ping` answers, peak RSS during the start (VmHWM),
RSS 3 s after ready (VmRSS, idle) and how each plug-in was loaded (from /metrics). Targets
(issue 51): ready <= 2 s and peak <= 250 MiB for the precompiled first start, idle <= 120 MiB;
a missed target is printed as MISSED, loudly.

    benches/first-start.py                       # target/release/hypervisor, 3 rounds
    ROUNDS=5 BASELINE=/tmp/old/hypervisor benches/first-start.py

Builds nothing: run `cargo build --release -p hypervisor` first (scripts/serve.sh does).
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostproc import free_port, status_mib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.environ.get("HYPERVISOR", os.path.join(ROOT, "target/release/hypervisor"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
MIB = 1024 * 1024
TARGET_READY_S = 2.0
TARGET_PEAK_MIB = 250
TARGET_IDLE_MIB = 120






def get(url):
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.read().decode()


def plugin_loads(url):
    loads = {}
    for line in get(url + "/metrics").splitlines():
        if line.startswith("hypervisor_plugin_loads_total{"):
            source = line.split('source="')[1].split('"')[0]
            loads[source] = int(float(line.rsplit(" ", 1)[1]))
    return loads


def start(binary, data_dir, args):
    """One start; returns (ready seconds, peak MiB, idle MiB, plug-in loads)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, RUST_LOG="warn")
    env.pop("HYPERVISOR_CONFIG", None)
    spawned = time.monotonic()
    child = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir, *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        while True:
            if child.poll() is not None:
                sys.exit(f"first-start: {binary} exited with {child.returncode}")
            try:
                if get(url + "/ping").strip() == "pong":
                    break
            except OSError:
                pass
            if time.monotonic() - spawned > 300:
                sys.exit("first-start: no answer after 300 s")
            time.sleep(0.01)
        ready = time.monotonic() - spawned
        peak_at_ready = status_mib(child.pid, "VmHWM")
        time.sleep(3)
        idle = status_mib(child.pid, "VmRSS")
        peak = max(peak_at_ready, status_mib(child.pid, "VmHWM"))
        try:
            loads = plugin_loads(url)
        except OSError:
            loads = {}
        return ready, peak, idle, loads
    finally:
        child.terminate()
        child.wait()


def main():
    if not os.access(BINARY, os.X_OK):
        sys.exit(f"first-start: no {BINARY} (cargo build --release -p hypervisor)")
    work = tempfile.mkdtemp(prefix="first-start-")
    try:
        precompiled = os.path.join(work, "precompiled")
        t = time.monotonic()
        subprocess.run([BINARY, "precompile", "--out", precompiled], check=True,
                       stdout=subprocess.DEVNULL, env=dict(os.environ, RUST_LOG="warn"))
        print(f"hypervisor precompile: {time.monotonic() - t:.1f} s, "
              f"{sum(os.path.getsize(os.path.join(precompiled, f)) for f in os.listdir(precompiled)) / MIB:.1f} MiB")
        variants = [
            ("compiled (before)", BINARY, ["--precompiled-dir", ""], False),
            ("precompiled (now)", BINARY, ["--precompiled-dir", precompiled], False),
            ("cached (second start)", BINARY, ["--precompiled-dir", ""], True),
        ]
        if os.environ.get("BASELINE"):
            variants.insert(0, ("baseline binary", os.environ["BASELINE"], [], False))
        results = {name: [] for name, *_ in variants}
        for r in range(ROUNDS):
            # Interleaved, so that the machine's state weighs on every variant alike.
            for name, binary, args, second in variants:
                data = os.path.join(work, f"data-{r}-{len(results[name])}-{name.split()[0]}")
                if second:
                    start(binary, data, args)
                results[name].append(start(binary, data, args))
        print(f"\n{ROUNDS} rounds, {os.cpu_count()} cores; median (min-max)\n")
        print(f"| {'start':24} | ready s | peak MiB | idle MiB | plug-ins loaded |")
        print(f"|{'-' * 26}|---------|----------|----------|-----------------|")
        missed = []
        for name, *_ in variants:
            rows = results[name]
            def col(i, fmt):
                vals = [row[i] for row in rows]
                return f"{fmt(statistics.median(vals))} ({fmt(min(vals))}-{fmt(max(vals))})"
            loads = rows[-1][3]
            loads_text = ", ".join(f"{k} {v}" for k, v in sorted(loads.items()) if v) or "-"
            print(f"| {name:24} | {col(0, lambda v: f'{v:.2f}')} | {col(1, lambda v: f'{v:.0f}')} | "
                  f"{col(2, lambda v: f'{v:.0f}')} | {loads_text} |")
            if name.startswith("precompiled"):
                ready = max(row[0] for row in rows)
                peak = max(row[1] for row in rows)
                idle = max(row[2] for row in rows)
                if ready > TARGET_READY_S:
                    missed.append(f"first start ready in {ready:.2f} s > {TARGET_READY_S} s")
                if peak > TARGET_PEAK_MIB:
                    missed.append(f"first start peak {peak:.0f} MiB > {TARGET_PEAK_MIB} MiB")
                if idle > TARGET_IDLE_MIB:
                    missed.append(f"idle after start {idle:.0f} MiB > {TARGET_IDLE_MIB} MiB")
                if loads.get("compiled", 0):
                    missed.append("a plug-in was compiled at a precompiled start")
        print()
        for m in missed:
            print(f"!!! TARGET MISSED: {m}")
        if not missed:
            print(f"targets met: ready <= {TARGET_READY_S} s, peak <= {TARGET_PEAK_MIB} MiB, "
                  f"idle <= {TARGET_IDLE_MIB} MiB (worst of {ROUNDS} precompiled first starts)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
