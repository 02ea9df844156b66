#!/usr/bin/env bash
# bench/install-deps.sh — what the benchmark needs beyond the project's own scripts/install-deps.sh:
# Debian packages (ImageMagick, gnuplot, butteraugli, GNU time, exiftool, the vips CLI) and the
# npm packages of the sharp peers (bench/peers/package-lock.json, installed with `npm ci`).
# Idempotent: installs only what is missing. Root or sudo for apt-get.
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(
  libvips-tools          # vips, vipsheader: corpus generator, vips CLI peer, reference renders
  imagemagick            # the ImageMagick peer and `compare -metric SSIM`
  gnuplot-nox            # the report's chart
  butteraugli            # perceptual distance per variant kind
  time                   # /usr/bin/time, for hand runs
  libimage-exiftool-perl # exiftool: checks the corpus' EXIF orientation
  nodejs npm             # the sharp peers
  python3                # bench/lib/*.py (standard library only)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A Node.js / Python installed outside Debian's packages is fine: keep it.
keep() { local -n arr=$1; local out=(); for x in "${arr[@]}"; do [[ " ${*:2} " == *" $x "* ]] || out+=("$x"); done; arr=("${out[@]}"); }
if command -v node >/dev/null && command -v npm >/dev/null; then keep missing nodejs npm; fi
if command -v python3 >/dev/null; then keep missing python3; fi

if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  echo "bench/install-deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages of the sharp peers, exactly as locked.
if [[ ! -d peers/node_modules/sharp ]] || ! cmp -s peers/package-lock.json peers/node_modules/.package-lock.json.bench; then
  (cd peers && npm ci --no-audit --no-fund --loglevel=error)
  cp peers/package-lock.json peers/node_modules/.package-lock.json.bench
fi
node -e "require('$PWD/peers/node_modules/sharp')" || { echo "bench/install-deps: sharp does not load" >&2; exit 1; }
