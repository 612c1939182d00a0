#!/usr/bin/env bash
# Starts, on this one machine, what docs/DEPLOY.md describes: a PostgreSQL server, three
# replicas sharing it, and a load balancer in front of them, to try a cluster.
#
#   scripts/cluster.sh            # http://127.0.0.1:3000 (balancer), replicas on 3001-3003
#   Ctrl-C stops everything and deletes the temporary directory.
#
# - PostgreSQL: the installed server binaries (/usr/lib/postgresql/*/bin, or HYPERVISOR_PG_BIN),
#   a cluster initialised in a temporary directory, run as the `postgres` system user when
#   this script runs as root, on 127.0.0.1:${PG_PORT:-55432} only.
# - Replicas: `hypervisor serve --database postgres://... --replica-id rN`. The first creates the
#   cluster key; the other two join by proving their attestation to it through the database.
#   This machine has no TEE, so the replicas run on SIMULATED attestation (built with the
#   `simulated-attestation` feature, `cluster.allow_simulated = true`): it proves nothing and
#   every response says so. Never run a production cluster like this.
# - The balancer: HAProxy (Debian; installed if missing) running deploy/haproxy/haproxy.cfg,
#   the configuration docs/DEPLOY.md describes: round robin, /ping health checks.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

pg_port="${PG_PORT:-55432}"
lb_port="${LB_PORT:-3000}"
bin="${HYPERVISOR_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
if [ ! -x "$bin/initdb" ]; then
  echo "cluster: no PostgreSQL server binaries (install postgresql, or set HYPERVISOR_PG_BIN)" >&2
  exit 1
fi

./scripts/install-haproxy.sh
./scripts/build-programs.sh
echo "cluster: building the host with simulated attestation (release)" >&2
cargo build --release --locked -p hypervisor --features simulated-attestation

work="$(mktemp -d /tmp/hypervisor-cluster.XXXXXX)"
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$work"
  as_pg=(runuser -u postgres --)
fi
chmod 700 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  "${as_pg[@]}" "$bin/pg_ctl" -D "$work/pg" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

"${as_pg[@]}" "$bin/initdb" -D "$work/pg" -U postgres --auth=trust --no-sync \
  --encoding=UTF8 --locale=C.UTF-8 >/dev/null
"${as_pg[@]}" mkdir -p "$work/sock"
"${as_pg[@]}" "$bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-h 127.0.0.1 -p $pg_port -k $work/sock" start >/dev/null
"${as_pg[@]}" "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres hypervisor
database="postgres://postgres@127.0.0.1:$pg_port/hypervisor"
echo "cluster: PostgreSQL on 127.0.0.1:$pg_port (data in $work/pg)"

for n in 1 2 3; do
  dir="$work/replica$n"
  mkdir -p "$dir"
  cat > "$dir.toml" <<TOML
listen = "127.0.0.1:$((3000 + n))"
data_dir = "$dir"
[attestation]
provider = "simulated"
[cluster]
replica_id = "r$n"
allow_simulated = true
TOML
  target/release/hypervisor serve --config "$dir.toml" --database "$database" \
    2> "$dir.log" > "$dir.out" &
  pids+=($!)
  # One at a time: the first creates the cluster key, the others join it.
  for _ in $(seq 1 600); do
    grep -q "listening on" "$dir.out" 2>/dev/null && break
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      echo "cluster: replica r$n did not start:" >&2
      tail -n 20 "$dir.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "cluster: replica r$n on http://127.0.0.1:$((3000 + n)) (log: $dir.log)"
done

haproxy="$(command -v haproxy || echo /usr/sbin/haproxy)"
HYPERVISOR_LB="127.0.0.1:$lb_port" HYPERVISOR_R1=127.0.0.1:3001 HYPERVISOR_R2=127.0.0.1:3002 \
  HYPERVISOR_R3=127.0.0.1:3003 "$haproxy" -db -f deploy/haproxy/haproxy.cfg 2> "$work/haproxy.log" &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$lb_port/ping" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "cluster: ready at http://127.0.0.1:$lb_port (HAProxy, log: $work/haproxy.log); Ctrl-C stops it"
wait
