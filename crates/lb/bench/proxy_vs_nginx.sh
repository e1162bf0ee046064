#!/usr/bin/env bash
# Throughput and latency of one small keep-alive response: straight to a
# backend, through nginx `proxy_pass`, and through picket-lb, on this machine.
#
# The backend is nginx answering `200 ok` on every path (so it is never the
# bottleneck and is the same for all three). nginx proxy and picket-lb get one
# worker each. Peak: wrk, 64 connections. Latency at equal load: hey at half
# of picket-lb's peak, 50 connections. With two or more cores, the proxy under
# test runs pinned to core 1 and the load generator and the backend to core 0,
# so the proxies do not compete with the load for CPU. ROUNDS (default 3)
# alternates the three targets.
#
#   apt-get install -y nginx wrk hey sqlite3
#   cargo build --profile dist -p picket-lb     # what ships (deploy/Dockerfile)
#   [LB=target/release/picket-lb] [LB_THREADS=1] crates/lb/bench/proxy_vs_nginx.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/../../.."
SECS=${1:-10}
LB=${LB:-target/dist/picket-lb}
[ -x "$LB" ] || { echo "build it first: cargo build --profile dist -p picket-lb" >&2; exit 1; }
for t in nginx wrk hey sqlite3; do command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }; done

ROUNDS=${ROUNDS:-3}
if [ "$(nproc)" -ge 2 ]; then LOAD="taskset -c 0" PROXY="taskset -c 1"; else LOAD="" PROXY=""; fi

W=$(mktemp -d)
BACK=18181 NGX=18182 PLB=18183
cleanup() {
  [ -f "$W/back.pid" ] && kill "$(cat "$W/back.pid")" 2>/dev/null || true
  [ -f "$W/ngx.pid" ] && kill "$(cat "$W/ngx.pid")" 2>/dev/null || true
  [ -n "${LBPID:-}" ] && kill "$LBPID" 2>/dev/null || true
  sleep 0.5; rm -rf "$W"
}
trap cleanup EXIT

conf() { # name port body cpu-prefix
  cat > "$W/$1.conf" <<NGX
worker_processes 1;
pid $W/$1.pid;
error_log $W/$1.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend { server 127.0.0.1:$BACK; keepalive 128; }
  server {
    listen 127.0.0.1:$2 reuseport;
    keepalive_requests 1000000;
    location / { $3 }
  }
}
NGX
  $4 nginx -c "$W/$1.conf" -p "$W"
}
conf back $BACK 'default_type text/plain; return 200 "ok\n";' "$LOAD"
conf ngx $NGX 'proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";' "$PROXY"

DB="$W/picket.db"
DATABASE_URL="sqlite://$DB?mode=rwc" PICKET_LB_LISTEN=127.0.0.1:$PLB PICKET_LB_THREADS=${LB_THREADS:-1} \
  PICKET_HC_INTERVAL_SECS=5 RUST_LOG=warn $PROXY "$LB" 2>"$W/lb.err" &
LBPID=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PLB/health" >/dev/null && break; sleep 0.1; done
# The balancer creates the schema when its control service starts.
for _ in $(seq 100); do
  now=$(date +%s%3N)
  sqlite3 -cmd ".timeout 5000" "$DB" "INSERT INTO node (node_id,node_name,host,status,last_seen,created_at,modified_at)
    VALUES ('bench','bench','127.0.0.1:$BACK','online',$now,$now,$now)" 2>/dev/null && break
  sleep 0.1
done
for _ in $(seq 50); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PLB/x")" = 200 ] && break; sleep 0.1
done

peak() { # url → requests/s
  $LOAD wrk -t1 -c64 -d"${SECS}s" "$1" | awk '/Requests\/sec/ {print $2}'
}
lat() { # url rate → "p50 p99" in ms
  local per=$(( $2 / 50 )); [ "$per" -ge 1 ] || per=1
  $LOAD hey -z "${SECS}s" -c 50 -q "$per" "$1" | awk '/ 50% in/ {p50=$3} / 99% in/ {p99=$3} END {printf "%.3f %.3f\n", p50*1000, p99*1000}'
}
echo "machine: $(nproc) cores; ${SECS}s per run; $(nginx -v 2>&1); load on: ${LOAD:-any core}; proxy on: ${PROXY:-any core}"
port_of() { case $1 in direct) echo $BACK;; nginx) echo $NGX;; picket-lb) echo $PLB;; esac; }
for r in $(seq "$ROUNDS"); do
  declare -A P
  for name in direct nginx picket-lb; do
    P[$name]=$(peak "http://127.0.0.1:$(port_of $name)/x")
  done
  half=$(printf '%.0f' "$(echo "${P[picket-lb]} / 2" | bc -l)")
  printf 'round %s\n%-10s %12s %10s %10s   (latency at %s req/s)\n' "$r" target "peak req/s" "p50 ms" "p99 ms" "$half"
  declare -A L
  for name in direct nginx picket-lb; do
    read -r p50 p99 < <(lat "http://127.0.0.1:$(port_of $name)/x" "$half")
    L[$name]=$p99
    printf '%-10s %12s %10s %10s\n' "$name" "${P[$name]}" "$p50" "$p99"
  done
  printf 'picket-lb / nginx throughput: %.2f; p99 added over direct: picket-lb %.2f ms, nginx %.2f ms\n' \
    "$(echo "${P[picket-lb]} / ${P[nginx]}" | bc -l)" \
    "$(echo "${L[picket-lb]} - ${L[direct]}" | bc -l)" "$(echo "${L[nginx]} - ${L[direct]}" | bc -l)"
done
