#!/usr/bin/env bash
# Installs everything imgspool needs to build, run and test on Debian 12, from Debian's packages
# Safe to run again; does nothing when all is there.
#   install-deps.sh         what building and running the daemon needs
#   install-deps.sh --test  that, plus what the tests need (GoogleTest, sqlite3 CLI, promtool,
#                           Node.js and npm for the S3 test harness, OpenSSH's server and
#                           clients and rsync for the real-client drop tests, mandoc to lint
#                           the man pages, lintian for the Debian package; dpkg-shlibdeps
#                           and dpkg-parsechangelog come with build-essential's dpkg-dev,
#                           PostgreSQL 15's server and client for the tests that start one)
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libvips-dev libvips-tools libinotifytools0-dev libsqlite3-dev sqlite3
  libcurl4-openssl-dev libssl-dev libtoml11-dev uuid-dev nlohmann-json3-dev libcli11-dev
  libjemalloc-dev libmicrohttpd-dev libpq-dev
)
if [[ ${1:-} == --test ]]; then
  # libheif-dev: the tests write iPhone-style HEICs (HEIF transform boxes) with libheif itself.
  PACKAGES+=(curl libgtest-dev libheif-dev lintian mandoc nodejs npm prometheus openssh-server openssh-client python3-seccomp
             rsync systemd postgresql-15 postgresql-client-15)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The machines this runs on may carry their own Node.js outside Debian's packages: keep it.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs/}"); missing=("${missing[@]/npm/}")
fi
read -r -a missing <<<"${missing[*]}"

if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  echo "install-deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
