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
  clang-format curl openssl awscli
  prometheus prometheus-alertmanager
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

if ((${#missing[@]} == 0)); then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run this script as root, or install them with apt-get" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
