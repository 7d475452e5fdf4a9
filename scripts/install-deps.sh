#!/usr/bin/env bash
# Installs every Debian package that building and testing Backout needs. Idempotent: when all
# packages are present it returns in well under a second without calling apt.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev
  libcpp-httplib-dev libcurl4-openssl-dev libssl-dev
  libsqlite3-dev sqlite3 libpq-dev postgresql
  libgit2-dev libarchive-dev libkainjow-mustache-dev
  libcmark-gfm-dev libcmark-gfm-extensions-dev librsvg2-dev
  clang-format lld curl openssl awscli wrk python3
  prometheus prometheus-alertmanager
  openssh-server
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

# kubectl: the CI image carries Google's kubectl package, which conflicts with Debian's
# kubernetes-client (both own /usr/bin/kubectl), so install Debian's only when none exists.
if ! command -v kubectl >/dev/null 2>&1; then
  missing+=(kubernetes-client)
fi

# Node.js 20 or later runs LaunchDarkly's own API client against the LaunchDarkly emulator and
# the Unleash server and SDK that the Unleash provider's tests use. Debian 12's own nodejs is 18,
# which unleash-server 7.5.1 does not support, so a machine with no node gets Debian's package
# here and the check below reports the version.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

# The npm packages of the LaunchDarkly emulator's client test, exactly as its lock file pins
# them, installed only when missing so a fresh clone gets them.
install_launchdarkly_client() {
  local client_dir
  client_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/emulators/launchdarkly/client"
  if [[ ! -d "$client_dir/node_modules" ]]; then
    echo "install-deps: npm ci in $client_dir"
    (cd "$client_dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# The npm packages the Unleash tests run (versions pinned by package-lock.json), installed once.
# `npm ci` fetches 410 packages (190 MB); it took 35 s on an idle 2-core machine and 163 s on a
# busy one.
install_npm_components() {
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/components/unleash"
  [[ -d "$dir/node_modules" ]] && return 0
  local major
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if ((major < 20)); then
    echo "install-deps: node $(node --version 2>/dev/null || echo missing) is too old for" \
      "unleash-server 7.5.1, which needs Node.js 20 or later; the Unleash tests will fail" >&2
    return 0
  fi
  echo "install-deps: npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=warn)
}

if ((${#missing[@]} == 0)); then
  install_launchdarkly_client
  install_npm_components
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run this script as root, or install them with apt-get" >&2
  exit 1
fi

# The git provider's ssh tests start their own sshd on a free port of 127.0.0.1, so the system's
# ssh service must not start when openssh-server is installed. Debian's maintainer scripts ask
# /usr/sbin/policy-rc.d before they start a service, and exit code 101 denies the start. A
# machine that has no such file (Docker's Debian images ship one that denies every start) gets
# one that denies only ssh, removed again when the script exits.
policy_file=/usr/sbin/policy-rc.d
if [[ ! -e $policy_file ]]; then
  printf '#!/bin/sh\n# Written by install-deps.sh for the duration of apt-get install.\n%s\n' \
    'case "$1" in ssh | ssh.service | ssh.socket | sshd) exit 101 ;; esac; exit 0' >"$policy_file"
  chmod 0755 "$policy_file"
  trap 'rm -f "$policy_file"' EXIT
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_launchdarkly_client
install_npm_components
