#!/usr/bin/env bash
# Runs every test of an existing build with CTest and prints how many ran against PostgreSQL.
set -euo pipefail
build_dir=${1:-build}
cd "$(dirname "$0")/.."
bash scripts/format-check.sh
mkdir -p "$build_dir/tmp"
status=0
(cd "$build_dir" && ctest --output-on-failure --timeout 600 -j2) || status=$?
# CTest lists skipped cases without the reason that the test printed, so name it here.
if [[ ! -x /usr/sbin/sshd ]]; then
  echo "GitSshTest cases skipped: /usr/sbin/sshd is missing; install openssh-server" \
    "(scripts/install-deps.sh does)"
fi
# -FA leaves out the fixture tests that start and stop the shared PostgreSQL cluster.
pg_count=$(cd "$build_dir" && ctest -N -L postgresql -FA '.*' | sed -n 's/^Total Tests: //p')
echo "tests against PostgreSQL: ${pg_count:-0}"
exit $status
