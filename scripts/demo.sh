#!/usr/bin/env bash
# The main job on the embedded SQLite default: writes a sample ledger, exports a signed
# checkpoint and the public key, appends more, then verifies the whole log against both.
set -euo pipefail
build_dir=${1:-build}
cd "$(dirname "$0")/.."
backout="$build_dir/backout"
data=${BACKOUT_DEMO_DIR:-demo-data}
rm -rf "$data"
mkdir -p "$data"
database="sqlite:$data/backout.db"

step() { printf '\n== %s %s\n' "$(date -u +%H:%M:%S)" "$*"; }

step "write 1000 sample ledger entries"
"$backout" ledger sample --database "$database" --data-dir "$data" --entries 1000
step "export the signed checkpoint and the public key, as an auditor would keep them"
"$backout" ledger checkpoint --database "$database" --out "$data/checkpoint.json" \
  --public-key-out "$data/ledger-key.pub"
step "append 200 more entries"
"$backout" ledger sample --database "$database" --data-dir "$data" --entries 200
step "verify the log, its key and that it extends the exported checkpoint"
"$backout" ledger verify --database "$database" --public-key "$data/ledger-key.pub" \
  --checkpoint "$data/checkpoint.json"
step "inclusion proof of entry 42"
"$backout" ledger proof --database "$database" --entry 42 | head -n 12
printf '\nThe database is %s; try `%s ledger verify --database %s`.\n' "$data/backout.db" \
  "$backout" "$database"
