#!/bin/sh
# Smoke test: passes when checkout runs the last known good version.
grep -qx v1 "$(dirname "$0")/state/version"
