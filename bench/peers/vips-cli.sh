#!/usr/bin/env bash
# Peer 3a: the `vips` command-line tools, one photo per job, `xargs -P JOBS` jobs at once.
#   vips-cli.sh OUTDIR FILE...        (JOBS: parallel photos, default nproc)
# Per photo: 6 `vips thumbnail` runs (150/400/800 centre cover crops, in the source's format and
# as WebP; thumbnail auto-rotates and uses shrink-on-load) and one `vips autorot` for the
# re-encoded original, with imgspool's encoder settings (imgspool-settings.json). A WebP source
# gets each crop once. LOSSLESS=1: each crop once as PNG (the quality scores' reference).
# Outputs: OUTDIR/<photo stem>/<variant>.<ext>. Exit non-zero if any photo failed.
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 OUTDIR FILE..." >&2; exit 2; }
OUT=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
setting() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vips"][sys.argv[2]])' "$here/imgspool-settings.json" "$1"; }
export VJPEG VPNG VWEBP OUT LOSSLESS=${LOSSLESS:-0}
VJPEG=$(setting jpeg); VPNG=$(setting png); VWEBP=$(setting webp)
mkdir -p "$OUT"

one() {
  set -euo pipefail
  local src=$1 name ext opts dir
  name=$(basename "$src"); name=${name%.*}
  case $(vipsheader -f vips-loader "$src") in
    jpegload*) ext=jpg; opts=$VJPEG ;;
    pngload*) ext=png; opts=$VPNG ;;
    webpload*) ext=webp; opts=$VWEBP ;;
    *) echo "vips-cli: $src: unsupported format" >&2; return 1 ;;
  esac
  dir=$OUT/$name
  mkdir -p "$dir"
  local outs=("$ext[$opts]" "webp[$VWEBP]")
  [[ $ext == webp ]] && outs=("webp[$VWEBP]")
  if [[ $LOSSLESS == 1 ]]; then ext=png; opts="compression=1,strip"; outs=("png[$opts]"); fi
  for size in small:150 medium:400 large:800; do
    for o in "${outs[@]}"; do
      vips thumbnail "$src" "$dir/${size%%:*}.$o" "${size#*:}" --height "${size#*:}" --crop centre
    done
  done
  vips autorot "$src" "$dir/original.$ext[$opts]"
}
export -f one
printf '%s\0' "$@" | xargs -0 -n 1 -P "${JOBS:-$(nproc)}" bash -c 'one "$1"' _
