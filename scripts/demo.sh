#!/usr/bin/env bash
# The main job on the embedded SQLite default: starts `backout serve`, takes one incident through
# the whole procedure with a lead and two engineers, then verifies the ledger offline, exports a
# signed checkpoint and proves that the log keeps extending it.
set -euo pipefail
build_dir=${1:-build}
cd "$(dirname "$0")/.."
root=$(pwd)
backout="$root/$build_dir/backout"
demo=${BACKOUT_DEMO_DIR:-$root/demo-data}
port=${BACKOUT_DEMO_PORT:-18470}

rm -rf "$demo"
mkdir -p "$demo/runbooks/state" "$demo/data"
cp examples/demo/*.sh "$demo/runbooks/"
echo v2 > "$demo/runbooks/state/version"

cat > "$demo/backout.yaml" <<YAML
listen: 127.0.0.1:$port
database: sqlite:$demo/data/backout.db
data_dir: $demo/data
users:
  - {name: lead-1, roles: [engineering-lead]}
  - {name: sre-1, roles: [devops-engineer], services: [checkout]}
  - {name: sre-2, roles: [devops-engineer], services: [checkout]}
services:
  - name: checkout
    environment: production
    customer_facing: true
    depends_on: [payments]
    provider:
      kind: command
      run: [$demo/runbooks/rollback-checkout.sh]
      status: [$demo/runbooks/checkout-version.sh]
      timeout: 60s
    checks:
      - {name: smoke, kind: command, run: [$demo/runbooks/smoke-check.sh], timeout: 30s}
  - name: payments
    provider: {kind: command, run: [$demo/runbooks/rollback-checkout.sh]}
YAML

step() { printf '\n== %s %s\n' "$(date -u +%H:%M:%S)" "$*"; }

step "start backout serve on 127.0.0.1:$port (log: $demo/server.log)"
"$backout" serve --config "$demo/backout.yaml" > "$demo/server.log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/readyz" > /dev/null || {
  echo "the server did not become ready; its log:" >&2
  cat "$demo/server.log" >&2
  exit 1
}

export BACKOUT_URL="http://127.0.0.1:$port"
as() {
  local user=$1
  shift
  BACKOUT_TOKEN=$(cat "$demo/tokens/$user") "$backout" "$@"
}
json_field() { sed -n "s/^ *\"$1\": \"\\([^\"]*\\)\".*/\\1/p" | head -n 1; }

mkdir -p "$demo/tokens"
cp "$demo/data/admin.token" "$demo/tokens/admin"
step "admin grants the roster: lead-1 decides, sre-1 and sre-2 execute for checkout"
for grant in "lead-1 engineering-lead" "sre-1 devops-engineer" "sre-2 devops-engineer"; do
  set -- $grant
  service_flag=()
  [[ $2 == devops-engineer ]] && service_flag=(--service checkout)
  as admin user create "$1" --role "$2" "${service_flag[@]}" -o json | json_field token \
    > "$demo/tokens/$1"
  echo "created $1 ($2)"
done

step "CI records v1 and verifies it, then records v2"
v1=$(as sre-1 change record --service checkout --version v1 --previous-version v0 \
  --ticket CHG-100 --approver lead-1 --deployer ci -o json | json_field id)
as sre-1 change verify "$v1" --passed --details "smoke tests passed" > /dev/null
v2=$(as sre-1 change record --service checkout --version v2 --previous-version v1 \
  --ticket CHG-101 --approver lead-1 --deployer ci -o json | json_field id)
echo "changes: v1=$v1 (validated good), v2=$v2"

step "error rate rises after v2: lead-1 opens an incident with v2 as the suspected change"
incident=$(as lead-1 incident open --service checkout --severity sev2 \
  --title "checkout errors after v2" --suspected-change "$v2" --ticket OPS-7 -o json |
  json_field id)
echo "incident $incident"

step "assess: impact, target and plan"
as lead-1 incident assess "$incident"
step "lead-1 decides go"
as lead-1 incident decide "$incident" --go --reason "v2 raises the error rate; v1 was verified good" > /dev/null
echo "decision recorded"
step "sre-1 executes the approved rollback through the runbook"
as sre-1 incident rollback "$incident" --wait
step "lead-1 validates recovery (readiness and smoke test)"
as lead-1 incident validate "$incident" --wait
step "sre-2 documents the root cause"
as sre-2 incident document "$incident" --root-cause "v2 dropped the payment retry" \
  --factor "no canary stage" > /dev/null
echo "documented"
step "review and action item"
as lead-1 review write "$incident" > /dev/null
action=$(as lead-1 action add "$incident" --title "Add a canary stage" --owner sre-2 \
  --due 2027-01-31 -o json | json_field id)
as sre-2 action done "$action" --evidence "https://git.example.test/checkout/pull/42" > /dev/null
echo "review written; action $action done"
step "lead-1 closes the incident and lifts the deploy freeze"
as lead-1 incident close "$incident" > /dev/null
as lead-1 service unfreeze checkout --reason "v1 is stable again" > /dev/null
as lead-1 incident show "$incident"

step "stop the server, then verify the ledger offline"
kill -TERM "$server_pid"
wait "$server_pid" || true
trap - EXIT
database="sqlite:$demo/data/backout.db"
"$backout" ledger checkpoint --database "$database" --out "$demo/checkpoint.json" \
  --public-key-out "$demo/ledger-key.pub"
"$backout" ledger verify --database "$database" --public-key "$demo/ledger-key.pub" \
  --checkpoint "$demo/checkpoint.json"

printf '\nDone. Database: %s, server log: %s, runbook log: %s\n' "$demo/data/backout.db" \
  "$demo/server.log" "$demo/runbooks/state/runbook.log"
printf 'Explore: %s serve --config %s, then BACKOUT_TOKEN=$(cat %s) %s incident list\n' \
  "$backout" "$demo/backout.yaml" "$demo/tokens/lead-1" "$backout"
