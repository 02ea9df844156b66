#!/usr/bin/env bash
# Peer 3b: ImageMagick 6 (Debian's imagemagick) `convert`, one process per photo, `xargs -P JOBS`.
#   magick.sh OUTDIR FILE...          (JOBS: parallel photos, default nproc)
# Per photo one convert run: decode once, -auto-orient, -strip, then each 150/400/800 centre
# cover crop (-resize WxH^ -extent) written in the source's format and as WebP, and the
# re-encoded original, with imgspool's encoder settings (imgspool-settings.json). A WebP source
# gets each crop once. LOSSLESS=1: each crop once as PNG (the quality scores' reference).
# Outputs: OUTDIR/<photo stem>/<variant>.<ext>. Exit non-zero if any photo failed.
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 OUTDIR FILE..." >&2; exit 2; }
OUT=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
# Debian's binary by its own name: /usr/local/bin may hold an unrelated `convert`.
CONVERT=${CONVERT:-/usr/bin/convert-im6.q16}
[[ -x $CONVERT ]] || { echo "magick: $CONVERT missing (bench/install-deps.sh installs imagemagick)" >&2; exit 1; }
setting() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["magick"][sys.argv[2]])' "$here/imgspool-settings.json" "$1"; }
export MJPEG MPNG MWEBP OUT CONVERT LOSSLESS=${LOSSLESS:-0}
MJPEG=$(setting jpeg); MPNG=$(setting png); MWEBP=$(setting webp)
mkdir -p "$OUT"

one() {
  set -euo pipefail
  local src=$1 name ext dir args=() fmt
  name=$(basename "$src"); name=${name%.*}
  fmt=$(head -c 16 "$src" | od -An -tx1 | tr -d ' \n')
  case $fmt in
    ffd8ff*) ext=jpg; read -r -a opts <<<"$MJPEG" ;;
    89504e47*) ext=png; read -r -a opts <<<"$MPNG" ;;
    52494646????????57454250*) ext=webp; read -r -a opts <<<"$MWEBP" ;;
    *) echo "magick: $src: unsupported format" >&2; return 1 ;;
  esac
  read -r -a wopts <<<"$MWEBP"
  local kinds=("$ext" webp)
  [[ $ext == webp ]] && kinds=(webp)
  if [[ $LOSSLESS == 1 ]]; then ext=png; opts=(-define png:compression-level=1); kinds=(png); fi
  dir=$OUT/$name
  mkdir -p "$dir"
  args=("$src" -auto-orient -strip -write mpr:src +delete)
  for size in small:150 medium:400 large:800; do
    local v=${size%%:*} s=${size#*:}
    for k in "${kinds[@]}"; do
      local o=("${opts[@]}")
      [[ $k == webp ]] && o=("${wopts[@]}")
      args+=(\( mpr:src -resize "${s}x${s}^" -gravity center -extent "${s}x${s}"
        "${o[@]}" -write "$dir/$v.$k" +delete \))
    done
  done
  args+=(mpr:src "${opts[@]}" -write "$dir/original.$ext" null:)
  "$CONVERT" "${args[@]}"
}
export -f one
printf '%s\0' "$@" | xargs -0 -n 1 -P "${JOBS:-$(nproc)}" bash -c 'one "$1"' _
