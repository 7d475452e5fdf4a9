#!/bin/sh
# Approved runbook for the demo's checkout service: switches the running version to the target
# Backout passes in BACKOUT_TARGET_VERSION. A real runbook would call the deployment tool here.
set -eu
state_dir=$(dirname "$0")/state
echo "$(date -u +%FT%TZ) rollback of ${BACKOUT_SERVICE} to ${BACKOUT_TARGET_VERSION} for ${BACKOUT_INCIDENT_ID}" \
  >> "$state_dir/runbook.log"
printf '%s\n' "$BACKOUT_TARGET_VERSION" > "$state_dir/version.tmp"
mv "$state_dir/version.tmp" "$state_dir/version"
echo "checkout now runs $BACKOUT_TARGET_VERSION"
