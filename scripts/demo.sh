#!/usr/bin/env bash
# The main job on real components, all on 127.0.0.1: a sample shop deployed as release folders,
# scraped by Prometheus, whose alert reaches Backout through Alertmanager. Release v2 breaks the
# shop; Backout opens the incident with v2 as the suspected change, a lead decides, an engineer
# rolls back to v1 through the `releases` provider, validation passes on Prometheus data and a
# smoke test, the incident is documented, reviewed and closed, and the evidence bundle is
# exported and verified. Then someone switches `current` by hand, and the audit check finds it.
#
# Usage: scripts/demo.sh [BUILD_DIR] [--exit]
#   --exit  stop everything at the end instead of keeping the servers up until Ctrl-C.
set -euo pipefail
build_dir=build
keep_running=1
for arg in "$@"; do
  case $arg in
    --exit) keep_running=0 ;;
    *) build_dir=$arg ;;
  esac
done
cd "$(dirname "$0")/.."
root=$(pwd)
[[ $build_dir == /* ]] || build_dir="$root/$build_dir"
backout="$build_dir/backout"
sample="$build_dir/examples/sample-service/sample_service"
demo=${BACKOUT_DEMO_DIR:-$root/demo-data}
port=${BACKOUT_DEMO_PORT:-18470}
shop_port=$((port + 1))
prometheus_port=$((port + 2))
alertmanager_port=$((port + 3))

started=$(date +%s)
step() { printf '\n== %s (+%ss) %s\n' "$(date -u +%H:%M:%S)" "$(($(date +%s) - started))" "$*"; }
fail() {
  echo "demo: $*" >&2
  for log in server shop prometheus alertmanager; do
    [[ -f $demo/$log.log ]] && { echo "--- tail of $demo/$log.log" >&2; tail -n 20 "$demo/$log.log" >&2; }
  done
  exit 1
}
# Polls `command` every half second until it succeeds or `seconds` pass.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$(($(date +%s) + seconds))
  until "$@" > /dev/null 2>&1; do
    (($(date +%s) < deadline)) || fail "timed out after ${seconds}s waiting for $what"
    sleep 0.5
  done
}

pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
  wait 2> /dev/null || true
}
trap stop_all EXIT

rm -rf "$demo"
mkdir -p "$demo/data" "$demo/tokens" "$demo/prometheus" "$demo/alertmanager"

step "lay out the shop: releases v0, v1 (good) and v2 (fails half its requests)"
shop="$demo/shop"
# Each release completes after the one before, as deploys do: v0 three days ago, v1 two days ago,
# v2 now.
for version in v0 v1 v2; do
  mkdir -p "$shop/releases/$version"
  echo "$version" > "$shop/releases/$version/VERSION"
done
touch -d '3 days ago' "$shop/releases/v0/.backout-release-complete"
touch -d '2 days ago' "$shop/releases/v1/.backout-release-complete"
touch "$shop/releases/v2/.backout-release-complete"
echo 0.5 > "$shop/releases/v2/error_rate"
ln -s "$shop/releases/v1" "$shop/current"
echo "Branch main (at 1a2b3c4) deployed as release v1 by ci" > "$shop/revisions.log"

step "start the shop on 127.0.0.1:$shop_port"
"$sample" --listen "127.0.0.1:$shop_port" --root "$shop" \
  --notifications "$demo/notifications.log" > "$demo/shop.log" 2>&1 &
pids+=($!)
wait_for 10 "the shop" curl -fsS "http://127.0.0.1:$shop_port/version"

step "start Prometheus on 127.0.0.1:$prometheus_port and Alertmanager on 127.0.0.1:$alertmanager_port"
head -c 24 /dev/urandom | base64 > "$demo/alertmanager-token"
head -c 24 /dev/urandom | base64 > "$demo/webhook-secret"
chmod 600 "$demo/alertmanager-token" "$demo/webhook-secret"
error_ratio='sum(rate(sample_errors_total[10s])) / sum(rate(sample_requests_total[10s]))'
cat > "$demo/prometheus/prometheus.yml" << YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [$demo/prometheus/rules.yml]
alerting:
  alertmanagers:
    - static_configs: [{targets: ['127.0.0.1:$alertmanager_port']}]
scrape_configs:
  - job_name: shop
    static_configs: [{targets: ['127.0.0.1:$shop_port'], labels: {service: shop}}]
YAML
cat > "$demo/prometheus/rules.yml" << YAML
groups:
  - name: shop
    rules:
      - alert: ShopErrorRatioHigh
        expr: $error_ratio > 0.2
        for: 3s
        labels: {service: shop, severity: critical}
        annotations: {summary: "more than 20 % of shop requests fail"}
YAML
cat > "$demo/alertmanager/alertmanager.yml" << YAML
route:
  receiver: backout
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: backout
    webhook_configs:
      - url: http://127.0.0.1:$port/api/v1/signals/alertmanager
        send_resolved: true
        max_alerts: 100
        http_config:
          authorization: {type: Bearer, credentials_file: $demo/alertmanager-token}
YAML
prometheus --config.file="$demo/prometheus/prometheus.yml" \
  --storage.tsdb.path="$demo/prometheus/data" --web.listen-address="127.0.0.1:$prometheus_port" \
  --rules.alert.resend-delay=1s > "$demo/prometheus.log" 2>&1 &
pids+=($!)
prometheus-alertmanager --config.file="$demo/alertmanager/alertmanager.yml" \
  --storage.path="$demo/alertmanager/data" --web.listen-address="127.0.0.1:$alertmanager_port" \
  --cluster.listen-address= > "$demo/alertmanager.log" 2>&1 &
pids+=($!)
wait_for 30 "Prometheus" curl -fsS "http://127.0.0.1:$prometheus_port/-/ready"
wait_for 30 "Alertmanager" curl -fsS "http://127.0.0.1:$alertmanager_port/-/ready"

cat > "$demo/backout.yaml" << YAML
listen: 127.0.0.1:$port
database: sqlite:$demo/data/backout.db
data_dir: $demo/data
users:
  - {name: lead-1, roles: [engineering-lead]}
  - {name: sre-1, roles: [devops-engineer], services: [shop]}
  - {name: sre-2, roles: [devops-engineer], services: [shop]}
signals:
  alertmanager:
    bearer_token: file:$demo/alertmanager-token
    service_label: service
notifications:
  retry_initial: 1s
  retry_max: 5s
  webhooks:
    - {name: team, url: 'http://127.0.0.1:$shop_port/notifications', secret: 'file:$demo/webhook-secret'}
services:
  - name: shop
    environment: production
    customer_facing: true
    reconcile_interval: 1h
    provider:
      kind: releases
      root: $shop
      health_url: http://127.0.0.1:$shop_port/version
    checks:
      - name: error-ratio
        kind: prometheus
        url: http://127.0.0.1:$prometheus_port
        query: '$error_ratio'
        below: 0.05
        for: 5s
        within: 90s
        step: 1s
        interval: 1s
        evidence_before: 5m
      - name: checkout-smoke
        kind: http
        within: 30s
        interval: 1s
        steps:
          - {name: checkout, url: 'http://127.0.0.1:$shop_port/checkout', expect_body_contains: checkout ok}
YAML

step "start backout serve on 127.0.0.1:$port (SQLite store in $demo/data)"
"$backout" serve --config "$demo/backout.yaml" > "$demo/server.log" 2>&1 &
server_pid=$!
pids+=($server_pid)
wait_for 30 "backout serve" curl -fsS "http://127.0.0.1:$port/readyz"

export BACKOUT_URL="http://127.0.0.1:$port"
as() {
  local user=$1
  shift
  BACKOUT_TOKEN=$(cat "$demo/tokens/$user") "$backout" "$@"
}
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)'"$1"')'; }

cp "$demo/data/admin.token" "$demo/tokens/admin"
step "the admin grants the roster: lead-1 decides, sre-1 and sre-2 execute for shop"
for grant in "lead-1 engineering-lead" "sre-1 devops-engineer" "sre-2 devops-engineer"; do
  set -- $grant
  service_flag=()
  [[ $2 == devops-engineer ]] && service_flag=(--service shop)
  as admin user create "$1" --role "$2" "${service_flag[@]}" -o json | json_field '["token"]' \
    > "$demo/tokens/$1"
  echo "granted $1 ($2)"
done

step "CI records v1 as deployed and verified"
v1=$(as sre-1 change record --service shop --version v1 --previous-version v0 --ticket CHG-100 \
  --approver lead-1 --deployer ci -o json | json_field '["id"]')
as sre-1 change verify "$v1" --passed --details "smoke tests green" > /dev/null
echo "change $v1: shop v1, verified"
sleep 5  # let Prometheus see v1 serve cleanly

step "CI deploys v2: records the change, then switches current to releases/v2"
v2=$(as sre-1 change record --service shop --version v2 --previous-version v1 --ticket CHG-101 \
  --approver lead-1 --deployer ci -o json | json_field '["id"]')
ln -sfn "$shop/releases/v2" "$shop/current.tmp" && mv -T "$shop/current.tmp" "$shop/current"
echo "Branch main (at 5e6f7a8) deployed as release v2 by ci" >> "$shop/revisions.log"
echo "change $v2: shop v2 is live"

step "v2 fails half its requests; waiting for Prometheus -> Alertmanager -> Backout"
incident_open() {
  as lead-1 incident list -o json | python3 -c '
import json, sys
items = json.load(sys.stdin)
items = items.get("items", items) if isinstance(items, dict) else items
sys.exit(0 if items else 1)'
}
wait_for 120 "the alert to open an incident" incident_open
incident=$(as lead-1 incident list -o json | python3 -c '
import json, sys
items = json.load(sys.stdin)
items = items.get("items", items) if isinstance(items, dict) else items
print(items[0]["id"])')
suspected=$(as lead-1 incident show "$incident" -o json | json_field '.get("suspected_change_id", "")')
echo "incident $incident opened by the alert; suspected change: $suspected (v2 is $v2)"
[[ $suspected == "$v2" ]] || fail "the incident suspects '$suspected', not v2's change $v2"

step "lead-1 assesses the rollback and decides go"
target=$(as lead-1 incident assess "$incident" -o json |
  json_field '["assessment"]["target_version"]')
echo "plan: roll shop back to $target"
as lead-1 incident decide "$incident" --go --reason "v2 fails half of checkout requests" > /dev/null
echo "decision: go"

step "sre-1 executes the rollback through the releases provider"
as sre-1 incident rollback "$incident" --wait -o json | json_field '["outcome"]'
echo "current -> $(readlink "$shop/current")"

step "lead-1 validates recovery: Prometheus error ratio below 5 % for 5 s, and a checkout smoke test"
as lead-1 incident validate "$incident" --wait -o json | json_field '["outcome"]'

step "sre-2 documents the root cause; lead-1 writes and completes the review, adds an action item"
as sre-2 incident document "$incident" --root-cause "v2 shipped a connection pool of size 1" \
  --factor "no canary stage" > /dev/null
as lead-1 review write "$incident" > /dev/null
as lead-1 review status "$incident" completed > /dev/null
as lead-1 action add "$incident" --title "add a canary stage for shop" --owner sre-2 \
  --due "$(date -u -d '+14 days' +%F)" > /dev/null
echo "root cause, review and action item recorded"

step "lead-1 closes the incident"
as lead-1 incident close "$incident" -o json | json_field '["state"]'

step "export the evidence bundle and verify it offline"
as lead-1 evidence export "$incident" --out "$demo/evidence-$incident.tar.gz" > /dev/null
"$backout" evidence verify "$demo/evidence-$incident.tar.gz"
mkdir -p "$demo/evidence"
tar -xzf "$demo/evidence-$incident.tar.gz" -C "$demo/evidence"

step "the audit check is clean"
as lead-1 service reconcile shop > /dev/null
as lead-1 audit check || fail "the audit check found problems right after a clean incident"

step "someone switches current to releases/v0 by hand, outside Backout"
sleep 1
ln -sfn "$shop/releases/v0" "$shop/current.tmp" && mv -T "$shop/current.tmp" "$shop/current"
as lead-1 service reconcile shop > /dev/null
audit_status=0
as lead-1 audit check > "$demo/audit-after-hand-switch.txt" 2>&1 || audit_status=$?
cat "$demo/audit-after-hand-switch.txt"
echo
[[ $audit_status == 1 ]] || fail "the audit check ended with status $audit_status, expected 1"
grep -q discovered_not_linked "$demo/audit-after-hand-switch.txt" ||
  fail "the audit check did not report the rollback done by hand"
echo "the audit check reports the discovered rollback (exit status 1)"

step "done in $(($(date +%s) - started)) s"
cat << TEXT
Evidence bundle:  $demo/evidence-$incident.tar.gz
Its report:       $demo/evidence/report.html
Notifications:    $demo/notifications.log ($(wc -l < "$demo/notifications.log" 2> /dev/null || echo 0) delivered)
Server log:       $demo/server.log
Explore:          export BACKOUT_URL=$BACKOUT_URL BACKOUT_TOKEN=\$(cat $demo/tokens/lead-1)
                  $backout incident show $incident
                  $backout discovered list
Prometheus:       http://127.0.0.1:$prometheus_port/graph
TEXT
if ((keep_running)); then
  echo "The servers stay up until Ctrl-C."
  wait "$server_pid"
fi
