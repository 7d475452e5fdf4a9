#!/usr/bin/env bash
# Runs every benchmark and prints, for each, Backout's figure, the peer's or the limit's figure
# measured in the same run, and their ratio. Each benchmark's header line gives the time and the
# 1-minute load average when it started, because other work on the machine moves the figures.
#
# Usage: bench/run.sh [BUILD_DIR] [--quick] [--only NAME[,NAME…]]
#   --quick    stop the ledger growth at 10^5 entries instead of 10^6 (with 10^6 the growth
#              benchmark took 41 s and 514 MB of temporary disk on a 2-core machine)
#   --only     run only the named benchmarks: ledger, kube, codedeploy, api, intake, latency,
#              demo, memory, growth
set -euo pipefail
build_dir=build
ledger_sizes=1000,100000,1000000
only=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) ledger_sizes=1000,100000 ;;
    --only)
      only=$2
      shift
      ;;
    -*)
      echo "bench/run.sh: unknown option $1; see the usage at the top of the file" >&2
      exit 2
      ;;
    *) build_dir=$1 ;;
  esac
  shift
done
cd "$(dirname "$0")/.."

header() {
  printf '\n== %s (%s UTC, load average %s, %s)\n' "$1" "$(date -u +%H:%M:%S)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc) cores"
}
selected() { [[ -z $only || ",$only," == *",$1,"* ]]; }

if selected ledger; then
  header "ledger: durable appends and hashing"
  "$build_dir/bench/ledger_bench" --appends 2000 --synchronous FULL
  "$build_dir/bench/ledger_bench" --appends 5000 --synchronous NORMAL
fi
if selected kube; then
  header "Kubernetes rollback vs kubectl"
  "$build_dir/bench/kube_bench" --runs 20
fi
if selected codedeploy; then
  header "CodeDeploy call vs aws"
  "$build_dir/bench/codedeploy_bench" --calls 200 --cli-runs 5
fi
if selected api; then
  header "API incident reads vs a static response"
  bench/api_bench.sh "$build_dir" 10 1000
fi
if selected intake; then
  header "alert intake vs Alertmanager"
  "$build_dir/bench/intake_bench" --requests 1000 --alerts-per-request 50 --clients 8 --rounds 3
fi
if selected latency; then
  header "firing alert to provider call, automatic policy"
  python3 bench/policy_latency.py --build-dir "$build_dir" --runs 60
fi
if selected memory; then
  header "resident memory vs Alertmanager"
  python3 bench/memory_bench.py --build-dir "$build_dir" --requests 400 --alerts-per-request 50 \
    --clients 4
fi
if selected growth; then
  header "growth: ledger append and verify, incident listing"
  start=$(date +%s)
  "$build_dir/bench/growth_bench" --ledger-sizes "$ledger_sizes" --incident-sizes 1000,100000
  echo "growth took $(($(date +%s) - start)) s"
fi
if selected demo; then
  header "demo detect-to-recovered breakdown"
  python3 bench/demo_breakdown.py --build-dir "$build_dir"
fi
