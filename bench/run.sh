#!/usr/bin/env bash
# bench/run.sh — imgspool against its peers on one corpus; writes bench/out/report.md (+ chart).
#
#   bench/run.sh                      the reference corpus (../shared/corpus/make-corpus.sh, 100 photos), 3 runs
#   bench/run.sh --n 40               bench's own corpus of 40 photos (bench/corpus/make-corpus.py)
#   bench/run.sh --reference 20       the reference corpus' first 20 photos (make-corpus.sh OUT 20)
#   bench/run.sh --corpus DIR         any folder of .jpg/.png/.webp photos
#   bench/run.sh --quick              1 run, fewer quality/latency samples (default corpus: own, 10 photos)
#   bench/run.sh --smoke              CI: 3 photos, 1 run, every peer, outputs checked deeply; < ~2 min;
#                                     exits non-zero if anything broke
# More: --runs N, --imgspool BIN (default build/imgspool), --peers a,b,... (see bench/README.md),
#       --limit N (use N photos of the corpus), --settle-ms MS (daemon, default 100),
#       --quality-sample N, --lone N (lone-JPEG latency samples), --long N (daemon RSS after 200 vs
#       N photos; by hand), --out DIR, --keep-work (keep every peer's outputs under OUT/work),
#       --baseline BIN (another imgspool build's daemon, interleaved with imgspool-daemon in each run).
# Needs bench/install-deps.sh to have run. Runs everything under `nice`.
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$BENCH")

corpus="" n="" reference=100 want_reference="" runs="" mode=full limit=0 out="$BENCH/out" imgspool="" peers=""
settle=100 quality="" lone="" long=0 keep="" baseline=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --corpus) corpus=$2; shift 2 ;;
    --n) n=$2; shift 2 ;;
    --reference) reference=$2; want_reference=1; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --quick) mode=quick; shift ;;
    --smoke) mode=smoke; shift ;;
    --limit) limit=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --imgspool) imgspool=$2; shift 2 ;;
    --peers) peers=$2; shift 2 ;;
    --settle-ms) settle=$2; shift 2 ;;
    --quality-sample) quality=$2; shift 2 ;;
    --lone) lone=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    --long) long=$2; shift 2 ;;
    --keep-work) keep=--keep-work; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

case $mode in
  smoke) runs=${runs:-1}; quality=${quality:-1}; lone=${lone:-1}; [[ -n $corpus$want_reference ]] || n=${n:-3}; [[ $limit -gt 0 ]] || limit=3 ;;
  quick) runs=${runs:-1}; quality=${quality:-2}; lone=${lone:-3}; [[ -n $corpus$want_reference ]] || n=${n:-10} ;;
  full) runs=${runs:-3}; quality=${quality:-5}; lone=${lone:-5} ;;
esac

for tool in node python3 vips vipsheader butteraugli /usr/bin/convert-im6.q16 gnuplot; do
  command -v "$tool" >/dev/null || { echo "bench/run.sh: '$tool' missing: run bench/install-deps.sh" >&2; exit 1; }
done
[[ -d $BENCH/peers/node_modules/sharp ]] || { echo "bench/run.sh: sharp missing: run bench/install-deps.sh" >&2; exit 1; }

if [[ -z $imgspool ]]; then
  imgspool=$REPO/build/imgspool
  if [[ ! -x $imgspool ]]; then
    if [[ $mode == smoke ]]; then
      echo "bench/run.sh: $imgspool missing: build it first (cmake -S . -B build && cmake --build build) or pass --imgspool" >&2
      exit 1
    fi
    echo "bench/run.sh: no $imgspool: the imgspool peers are skipped" >&2
    imgspool=""
  fi
fi

mkdir -p "$out"
# ---- the corpus -----------------------------------------------------------------------------
if [[ -z $corpus ]]; then
  if [[ -n $n ]]; then
    # bench's own corpus, cached by N and generator version
    corpus=$out/corpus-$n
    stamp="$(sha256sum "$BENCH/corpus/make-corpus.py" | cut -c1-16) $n $(vips --version)"
    if [[ ! -f $corpus/.stamp || $(cat "$corpus/.stamp") != "$stamp" ]]; then
      echo "bench: making bench's own corpus of $n photos in $corpus" >&2
      nice python3 "$BENCH/corpus/make-corpus.py" "$corpus" "$n" --cache "$out/debs"
      echo "$stamp" >"$corpus/.stamp"
    fi
  else
    # the reference corpus of the published figures, made by the shared script (called, not copied)
    script=$REPO/../shared/corpus/make-corpus.sh
    [[ -x $script ]] || script=/work/shared/corpus/make-corpus.sh
    [[ -f $script ]] || { echo "bench/run.sh: no shared/corpus/make-corpus.sh beside the repo; use --n N or --corpus DIR" >&2; exit 1; }
    corpus=$out/reference-$reference
    stamp="$(sha256sum "$script" | cut -c1-16) $reference $(vips --version)"
    if [[ ! -f $corpus/.stamp || $(cat "$corpus/.stamp") != "$stamp" ]]; then
      echo "bench: making the reference corpus of $reference photos in $corpus" >&2
      nice bash "$script" "$corpus" "$reference"
      echo "$stamp" >"$corpus/.stamp"
    fi
  fi
fi

# ---- run, then report -----------------------------------------------------------------------
args=(--corpus "$corpus" --out "$out" --runs "$runs" --mode "$mode" --limit "$limit" --settle-ms "$settle"
  --quality-sample "$quality" --lone "$lone" --long "$long" --imgspool "$imgspool")
[[ -n $peers ]] && args+=(--peers "$peers")
if [[ -n $baseline ]]; then
  [[ -x $baseline ]] || { echo "bench/run.sh: --baseline $baseline is not an executable" >&2; exit 1; }
  args+=(--baseline "$baseline")
fi
[[ -n $keep ]] && args+=("$keep")
t0=$(date +%s)
rc=0
nice python3 -B "$BENCH/lib/bench.py" "${args[@]}" || rc=$?
python3 -B "$BENCH/lib/report.py" "$out/results.json" "$out" || rc=1
echo "bench: report in $out/report.md (chart: $out/chart.svg), $(( $(date +%s) - t0 )) s" >&2
if [[ $rc -ne 0 ]]; then
  echo "bench: FAILED (see 'Failures' in $out/report.md)" >&2
fi
exit $rc
