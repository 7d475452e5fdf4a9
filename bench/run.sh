#!/usr/bin/env bash
# Runs every benchmark and prints Backout's figure, the peer's and their ratio.
set -euo pipefail
build_dir=${1:-build}
cd "$(dirname "$0")/.."
"$build_dir/bench/ledger_bench" --appends 2000 --synchronous FULL
"$build_dir/bench/ledger_bench" --appends 5000 --synchronous NORMAL
"$build_dir/bench/kube_bench" --runs 20
"$build_dir/bench/codedeploy_bench" --calls 200 --cli-runs 5
bench/api_bench.sh "$build_dir" 10 1000
"$build_dir/bench/intake_bench" --requests 400 --alerts-per-request 50 --clients 8
