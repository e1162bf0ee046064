#!/usr/bin/env bash
# User-space instructions per proxied request, counted by callgrind: nginx
# `proxy_pass` against picket-lb, in front of the same nginx backend, both
# with keep-alive on the client and the upstream side. Unlike req/s this does
# not move with the machine's load or frequency, so it is how a change to the
# balancer's request path is judged. Kernel work (the loopback TCP stack, the
# same four socket calls per request for both) is not counted.
#
#   apt-get install -y nginx hey sqlite3 valgrind
#   cargo build --profile dist -p picket-lb
#   [LB=target/release/picket-lb] crates/lb/bench/instructions.sh [requests]
set -euo pipefail
cd "$(dirname "$0")/../../.."
N=${1:-20000}
LB=${LB:-target/dist/picket-lb}
[ -x "$LB" ] || { echo "build it first: cargo build --profile dist -p picket-lb" >&2; exit 1; }
for t in nginx hey sqlite3 valgrind callgrind_control callgrind_annotate; do
  command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }
done

W=$(mktemp -d)
BACK=18191 NGX=18192 PLB=18193
cleanup() {
  [ -f "$W/back.pid" ] && kill "$(cat "$W/back.pid")" 2>/dev/null || true
  [ -n "${VG:-}" ] && kill -9 "$VG" 2>/dev/null || true
  sleep 0.3; rm -rf "$W"
}
trap cleanup EXIT

cat > "$W/back.conf" <<NGX
worker_processes 1;
pid $W/back.pid;
error_log $W/back.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  server { listen 127.0.0.1:$BACK; keepalive_requests 1000000;
    location / { default_type text/plain; return 200 "ok\n"; } }
}
NGX
cat > "$W/ngx.conf" <<NGX
worker_processes 1;
daemon off;
master_process off;
error_log $W/ngx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend { server 127.0.0.1:$BACK; keepalive 128; }
  server { listen 127.0.0.1:$NGX; keepalive_requests 1000000;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
NGX
nginx -c "$W/back.conf" -p "$W"

wait_200() { # url
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0; sleep 0.2
  done
  echo "no 200 from $1" >&2; exit 1
}

# Counts from after a warm-up to the end of N requests (64 connections).
measure() { # name port
  wait_200 "http://127.0.0.1:$2/x"
  hey -n 2000 -c 64 "http://127.0.0.1:$2/x" >/dev/null
  callgrind_control -z "$VG" >/dev/null
  local ok
  ok=$(hey -n "$N" -c 64 "http://127.0.0.1:$2/x" | awk '/\[200\]/ {print $2}')
  callgrind_control -d "$VG" >/dev/null
  sleep 1
  local f ir
  f=$(ls -S "$W"/cg.* | head -1)
  ir=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  printf '%-10s %10s requests %14s instructions %8d per request\n' "$1" "$ok" "$ir" $((ir / ok))
  kill -9 "$VG"; wait "$VG" 2>/dev/null || true; VG=
  rm -f "$W"/cg.*
}

echo "$(nginx -v 2>&1); $(valgrind --version); $N requests after 2000 of warm-up"
valgrind --tool=callgrind --callgrind-out-file="$W/cg.%p" nginx -c "$W/ngx.conf" -p "$W" 2>"$W/vg-ngx.err" &
VG=$!
measure nginx $NGX

DB="$W/picket.db"
DATABASE_URL="sqlite://$DB?mode=rwc" PICKET_LB_LISTEN=127.0.0.1:$PLB PICKET_LB_THREADS=1 \
  PICKET_HC_INTERVAL_SECS=5 RUST_LOG=warn \
  valgrind --tool=callgrind --callgrind-out-file="$W/cg.%p" "$LB" 2>"$W/vg-lb.err" &
VG=$!
for _ in $(seq 300); do curl -fs "http://127.0.0.1:$PLB/health" >/dev/null && break; sleep 0.2; done
for _ in $(seq 100); do
  now=$(date +%s%3N)
  sqlite3 -cmd ".timeout 5000" "$DB" "INSERT INTO node (node_id,node_name,host,status,last_seen,created_at,modified_at)
    VALUES ('bench','bench','127.0.0.1:$BACK','online',$now,$now,$now)" 2>/dev/null && break
  sleep 0.2
done
measure picket-lb $PLB
