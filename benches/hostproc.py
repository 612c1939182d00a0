"""What the Python benchmarks (first-start.py, memory-session.py) share: a free loopback port
and a process's memory from /proc."""

import socket


def free_port():
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_mib(pid, field):
    """A field of /proc/PID/status in MiB (VmRSS, VmHWM, ...); 0 if absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def resident_by_mapping(pid, top=8):
    """Where a process's resident memory is, from /proc/PID/smaps: (MiB, count, what) for the
    largest groups of mappings, a group being the permissions and the file (or `heap` for the
    allocator's anonymous arenas of 1 MiB or more and `anon` for smaller anonymous mappings,
    compiled code among them)."""
    groups = {}
    current = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if fields and "-" in fields[0] and not fields[0].endswith(":"):
                low, high = (int(x, 16) for x in fields[0].split("-"))
                name = fields[5] if len(fields) > 5 else ""
                if name.startswith("/"):
                    name = name.rsplit("/", 1)[-1][:40]
                elif not name:
                    name = "heap (arena)" if high - low >= 1 << 30 else "anon"
                current = (fields[1], name)
            elif fields and fields[0] == "Rss:" and current:
                total, count = groups.get(current, (0, 0))
                groups[current] = (total + int(fields[1]), count + 1)
    rows = sorted(((kib / 1024, n, f"{perm} {name}") for (perm, name), (kib, n) in groups.items()),
                  reverse=True)
    return rows[:top]
