#!/usr/bin/env bash
# API benchmark: incident reads (GET /api/v1/incidents/ID with a bearer token) against a running
# `backout serve` on the SQLite store, at 8 concurrent connections with wrk, next to the ceiling:
# the same HTTP library returning a fixed body of the same size from memory (bench/static_server).
# Prints requests per second and p99 latency for both, and their ratios.
# Usage: bench/api_bench.sh [BUILD_DIR] [SECONDS] [INCIDENTS]
set -euo pipefail
build_dir=${1:-build}
duration=${2:-10}
incidents=${3:-1000}
cd "$(dirname "$0")/.."
root=$(pwd)
backout="$root/$build_dir/backout"
command -v wrk > /dev/null || { echo "api_bench: wrk is missing; apt-get install wrk" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
cat > "$work/backout.yaml" << YAML
listen: 127.0.0.1:$port
data_dir: $work/data
users:
  - {name: lead-1, roles: [engineering-lead]}
services:
  - name: checkout
    provider: {kind: command, run: [/bin/true]}
YAML
"$backout" serve --config "$work/backout.yaml" > "$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && break
  sleep 0.1
done
export BACKOUT_URL="http://127.0.0.1:$port"
export BACKOUT_TOKEN
BACKOUT_TOKEN=$(cat "$work/data/admin.token")
BACKOUT_TOKEN=$("$backout" user create lead-1 --role engineering-lead -o json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

echo "api_bench: opening $incidents incidents"
for i in $(seq 1 "$incidents"); do
  printf '{"service":"checkout","severity":"sev3","title":"benchmark incident %d"}' "$i" |
    curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $BACKOUT_TOKEN" \
      -H 'Content-Type: application/json' --data-binary @- "$BACKOUT_URL/api/v1/incidents"
done
target="INC-$((incidents / 2))"
curl -fsS -H "Authorization: Bearer $BACKOUT_TOKEN" "$BACKOUT_URL/api/v1/incidents/$target" \
  > "$work/body.json"

run_wrk() {  # URL [HEADER]; prints "requests_per_second p99_ms"
  local out
  if [[ $# -gt 1 ]]; then
    out=$(wrk -t2 -c8 -d"${duration}s" --latency -H "$2" "$1")
  else
    out=$(wrk -t2 -c8 -d"${duration}s" --latency "$1")
  fi
  if grep -q "Non-2xx" <<< "$out"; then
    echo "api_bench: wrk saw error responses:" >&2
    echo "$out" >&2
    exit 1
  fi
  local rps p99
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<< "$out")
  p99=$(awk '$1 == "99%" {print $2}' <<< "$out")
  echo "$rps $(to_ms "$p99")"
}
to_ms() {  # wrk prints 812.00us, 1.20ms or 1.01s
  python3 -c 'import re,sys; v=sys.argv[1]; n,u=re.match(r"([0-9.]+)(us|ms|s)",v).groups(); print(round(float(n)*{"us":0.001,"ms":1,"s":1000}[u],3))' "$1"
}

read -r backout_rps backout_p99 < <(run_wrk "$BACKOUT_URL/api/v1/incidents/$target" \
  "Authorization: Bearer $BACKOUT_TOKEN")

static_port=$(free_port)
"$root/$build_dir/bench/static_server" "$static_port" "$work/body.json" &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$static_port/" 2> /dev/null && break
  sleep 0.05
done
read -r static_rps static_p99 < <(run_wrk "http://127.0.0.1:$static_port/api/v1/incidents/$target")

python3 - "$backout_rps" "$backout_p99" "$static_rps" "$static_p99" "$(wc -c < "$work/body.json")" \
  "$incidents" << 'PY'
import sys
b_rps, b_p99, s_rps, s_p99 = map(float, sys.argv[1:5])
size, count = sys.argv[5], sys.argv[6]
print(f"api incident read ({size}-byte body, {count} incidents, 8 connections):")
print(f"  backout serve   {b_rps:10.0f} req/s   p99 {b_p99:8.3f} ms")
print(f"  static httplib  {s_rps:10.0f} req/s   p99 {s_p99:8.3f} ms")
print(f"  ratio           {b_rps / s_rps:10.2f} of the ceiling's throughput, p99 {b_p99 / s_p99:.2f}x")
PY
