#!/usr/bin/env python3
"""feature_cost.py --imgspool BIN (--reference N | --corpus DIR) [options]

What each profile feature costs when a profile uses it: `imgspool process -c CONFIG FILES...`
(the batch mode, as bench's `imgspool-batch` peer runs it) over the same photos once per case
below, back to back, the order reversed every other run, each case on a fresh state and store
(no derivative-cache hits). Per case and run: CPU seconds (user + system of the process tree,
wait4) and output bytes (everything in the store), per photo; per feature the median over runs
of the per-run ratio and delta against the case it is compared with. Writes OUT/features.json
(every raw number) and OUT/features.md (the tables). Everything runs under `nice` when started
through bench/features/run.sh (or run it under nice yourself).

Options: --runs N (default 3; use an odd number), --limit N (the corpus' first N photos),
--only a,b (these cases and the ones they compare with), --converted N (only the first N JPEGs
for jpeg-in, heic-in and tiff-in: HEIC encoding takes ~20 CPU s a photo), --animations N (animated GIFs made
from the corpus' JPEGs, default 10) and --frames N (per GIF, default 30), --workers N (default 0
= one per core), --out DIR (default bench/out/features).

A case is a row of CASES: a profile built from the `web` profile's variants (`baseline` is `web`
spelt as a custom profile, since a custom profile may not be called `web`) plus TOML lines for
the profile table and for each of the three crops, an input set and the case it is compared
with. A case whose config this build refuses (`imgspool check-config`, e.g. a key from a branch
not merged yet) is reported as "not in this build" and not run.
"""
import argparse
import datetime
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(BENCH, "lib"))
from measure import measure  # noqa: E402
import imgspool_peer as isp  # noqa: E402

# ---- the cases ------------------------------------------------------------------------------
# name: (input set, compared with, profile-table TOML lines, TOML lines for each of the three crops)
#   input sets: "corpus" (every photo), "jpeg" (the corpus' JPEGs), "heic" / "tiff" (those JPEGs
#   converted with `vips copy x.jpg x.heic`, made once and cached), "gif" (animated GIFs made
#   from the JPEGs). {watermark} in a line is replaced by the path of a 200x80 RGBA PNG the tool makes.
# A new feature is one line here (and its compared-with case, if new).
CASES = {
    "baseline": ("corpus", None, [], []),
    "avif": ("corpus", "baseline", ["avif_effort = 2"], ['formats = ["source", "webp", "avif"]']),
    "avif-effort4": ("corpus", "baseline", ["avif_effort = 4"], ['formats = ["source", "webp", "avif"]']),
    "attention": ("corpus", "baseline", [], ['crop = "attention"']),
    "entropy": ("corpus", "baseline", [], ['crop = "entropy"']),
    "placeholders": ("corpus", "baseline", ['placeholder = ["blurhash", "lqip"]'], []),
    "watermark": ("corpus", "baseline", [],
                  ['watermark = { image = "{watermark}", gravity = "south-east", margin = 16, opacity = 0.5, '
                   'min_width = 400 }']),
    "jpeg-in": ("jpeg", None, [], []),
    "heic-in": ("heic", "jpeg-in", [], []),
    "tiff-in": ("tiff", "jpeg-in", [], []),
    "gif-still": ("gif", None, ["animated = false"], []),
    "gif-animated": ("gif", "gif-still", ["animated = true"], []),
}
CROPS = (("small", 150), ("medium", 400), ("large", 800))
PHOTO_EXT = (".jpg", ".jpeg", ".png", ".webp")

T0 = time.monotonic()


def log(msg):
    print(f"feature_cost [{time.monotonic() - T0:6.1f} s]: {msg}", file=sys.stderr, flush=True)


def profile_toml(name, profile_lines, crop_lines, watermark):
    """`web`'s variants as the custom profile `name`, plus the case's lines."""
    sub = [line.replace("{watermark}", watermark) for line in crop_lines]
    text = [f"[profiles.{name}]", *profile_lines, ""]
    for variant, size in CROPS:
        text += [f"[[profiles.{name}.variant]]", f'name = "{variant}"', f"width = {size}", f"height = {size}",
                 'fit = "cover"', "quality = 85"]
        if not any(line.startswith("formats") for line in sub):
            text.append('formats = ["source", "webp"]')
        text += sub + [""]
    text += [f"[[profiles.{name}.variant]]", 'name = "original"', 'formats = ["source"]', "quality = 85", ""]
    return "\n".join(text)


def write_case_config(work, name, case, workers, watermark):
    shutil.rmtree(work, ignore_errors=True)
    config = isp.write_config(work, workers=workers, profile=name)
    with open(config, "a") as f:
        f.write("\n" + profile_toml(name, case[2], case[3], watermark))
    return config


# ---- inputs ---------------------------------------------------------------------------------
def corpus_files(corpus, limit):
    files = sorted(os.path.join(corpus, f) for f in os.listdir(corpus) if f.lower().endswith(PHOTO_EXT))
    return files[:limit] if limit else files


def reference_corpus(out_root, n):
    """bench/run.sh's cached reference corpus (same folder and stamp, so either makes it for both)."""
    script = os.path.join(os.path.dirname(BENCH), "..", "shared", "corpus", "make-corpus.sh")
    if not os.path.isfile(script):
        script = "/work/shared/corpus/make-corpus.sh"
    corpus = os.path.join(out_root, f"reference-{n}")
    with open(script, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    vips = subprocess.run(["vips", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    stamp = f"{digest} {n} {vips}"
    stamp_file = os.path.join(corpus, ".stamp")
    if not (os.path.isfile(stamp_file) and open(stamp_file).read().strip() == stamp):
        log(f"making the reference corpus of {n} photos in {corpus}")
        subprocess.run(["nice", "bash", script, corpus, str(n)], check=True)
        with open(stamp_file, "w") as f:
            f.write(stamp + "\n")
    return corpus


def file_key(path):
    st = os.stat(path)
    return f"{os.path.basename(path)}:{st.st_size}:{int(st.st_mtime)}"


def converted(jpegs, cache, ext):
    """The JPEGs as .heic or .tif (`vips copy`), cached in `cache` by source name, size and mtime."""
    os.makedirs(cache, exist_ok=True)
    out = []
    for src in jpegs:
        stem = os.path.splitext(os.path.basename(src))[0]
        dst = os.path.join(cache, f"{stem}.{ext}")
        stamp = dst + ".src"
        if not (os.path.isfile(dst) and os.path.isfile(stamp) and open(stamp).read() == file_key(src)):
            log(f"vips copy {os.path.basename(src)} {os.path.basename(dst)}")
            subprocess.run(["nice", "vips", "copy", src, dst], check=True)
            with open(stamp, "w") as f:
                f.write(file_key(src))
        out.append(dst)
    return out


def animated_gifs(jpegs, cache, count, frames):
    """`count` animated GIFs of `frames` 480x360 frames each: a 720x540 centre cover of a corpus JPEG
    (vips thumbnail), panned diagonally 8x6 px per frame, 80 ms a frame, looping (ImageMagick cuts
    and joins the frames in one process: this libvips has no CLI way to set page-height)."""
    os.makedirs(cache, exist_ok=True)
    out = []
    step_x, step_y = 8, 6
    if (frames - 1) * step_x > 240 or (frames - 1) * step_y > 180:
        step_x, step_y = 240 // max(1, frames - 1), 180 // max(1, frames - 1)
    for i, src in enumerate(jpegs[:count]):
        dst = os.path.join(cache, f"anim-{i:03d}-{frames}f.gif")
        stamp = dst + ".src"
        if os.path.isfile(dst) and os.path.isfile(stamp) and open(stamp).read() == file_key(src):
            out.append(dst)
            continue
        log(f"making {os.path.basename(dst)} from {os.path.basename(src)}")
        base = os.path.join(cache, f"tmp-{i}.png")
        subprocess.run(["nice", "vips", "thumbnail", src, base, "720", "--height", "540", "--crop", "centre"],
                       check=True)
        cmd = ["nice", "/usr/bin/convert-im6.q16", base]
        for k in range(frames):
            cmd += ["(", "-clone", "0", "-crop", f"480x360+{k * step_x}+{k * step_y}", "+repage", ")"]
        subprocess.run(cmd + ["-delete", "0", "-set", "delay", "8", "-loop", "0", dst], check=True)
        os.remove(base)
        with open(stamp, "w") as f:
            f.write(file_key(src))
        out.append(dst)
    if len(out) < count:
        log(f"only {len(out)} JPEGs to make animations from (asked for {count})")
    return out


def watermark_png(cache):
    """A 200x80 RGBA PNG: white text "imgspool", transparent around it."""
    path = os.path.join(cache, "watermark.png")
    if not os.path.isfile(path):
        os.makedirs(cache, exist_ok=True)
        txt, box = os.path.join(cache, "wm-text.v"), os.path.join(cache, "wm-box.v")
        subprocess.run(["vips", "text", txt, "imgspool", "--width", "180", "--height", "60", "--dpi", "300"],
                       check=True)
        subprocess.run(["vips", "gravity", txt, box, "centre", "200", "80"], check=True)
        subprocess.run(["vips", "bandjoin", f"{box} {box} {box} {box}", path], check=True)  # RGB = alpha = text
        os.remove(txt)
        os.remove(box)
    return path


# ---- running --------------------------------------------------------------------------------
def check_config(binary, config):
    p = subprocess.run([binary, "check-config", "-c", config], capture_output=True, text=True)
    return p.returncode == 0, (p.stderr or p.stdout).strip()


def store_bytes(work):
    total, count, by_ext = 0, 0, {}
    for root, _, names in os.walk(os.path.join(work, "store")):
        for name in names:
            size = os.path.getsize(os.path.join(root, name))
            ext = name.rsplit(".", 1)[-1]
            total += size
            count += 1
            by_ext[ext] = by_ext.get(ext, 0) + size
    return total, count, by_ext


def run_case(binary, name, case, files, work, workers, watermark, keep):
    config = write_case_config(work, name, case, workers, watermark)
    stdout, stderr = os.path.join(work, "stdout.jsonl"), os.path.join(work, "stderr.log")
    load1 = os.getloadavg()[0]
    r = measure([binary, "process", "-c", config, *files], stdout, stderr)
    if r["rc"] != 0:
        raise RuntimeError(f"{name}: imgspool process exited {r['rc']}: {isp.tail(stderr)}")
    isp.check_batch_output(stdout, len(files))
    total, count, by_ext = store_bytes(work)
    frames = {}  # format -> frames of the outputs that kept an animation (images.outputs)
    for (outputs,) in isp.sqlite_rows(work, "SELECT outputs FROM images"):
        for o in json.loads(outputs):
            if o.get("frames", 1) > 1:
                frames[o["format"]] = frames.get(o["format"], 0) + o["frames"]
    r.update({"case": name, "photos": len(files), "load1": round(load1, 1), "output_bytes": total,
              "outputs": count, "bytes_by_ext": by_ext, "frames_by_format": frames})
    if not keep:
        shutil.rmtree(os.path.join(work, "store"), ignore_errors=True)
    return r


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def summarise(results, cases, skipped):
    """Per case: medians per photo; per compared case: medians of the per-run ratio and delta."""
    rows = []
    by_case = {}
    for run in results:
        for r in run:
            by_case.setdefault(r["case"], []).append(r)
    for name in cases:
        if name in skipped:
            rows.append({"case": name, "skipped": skipped[name]})
            continue
        rs = by_case.get(name, [])
        if not rs:
            rows.append({"case": name, "skipped": "not measured (the run was cut short)"})
            continue
        n = rs[0]["photos"]
        row = {"case": name, "input": cases[name][0], "photos": n, "runs": len(rs),
               "cpu_ms_per_photo": median([1000 * r["cpu_s"] / n for r in rs]),
               "cpu_ms_per_photo_runs": [round(1000 * r["cpu_s"] / n, 1) for r in rs],
               "wall_s": median([r["wall_s"] for r in rs]),
               "kb_per_photo": median([r["output_bytes"] / 1024 / n for r in rs]),
               "peak_rss_mib": median([r["peak_rss_bytes"] / 2**20 for r in rs]),
               "outputs_per_photo": rs[0]["outputs"] / n,
               "bytes_by_ext": rs[0]["bytes_by_ext"], "frames_by_format": rs[0]["frames_by_format"]}
        ref = cases[name][1]
        if ref and ref in by_case:
            pairs = [(a, b) for run in results for a in run if a["case"] == name
                     for b in run if b["case"] == ref]
            row["vs"] = ref
            row["cpu_ratio_runs"] = [round(a["cpu_s"] / b["cpu_s"], 3) for a, b in pairs]
            row["cpu_ratio"] = median(row["cpu_ratio_runs"])
            row["cpu_delta_ms_per_photo"] = median([1000 * (a["cpu_s"] / a["photos"] - b["cpu_s"] / b["photos"])
                                                    for a, b in pairs])
            row["bytes_ratio"] = median([a["output_bytes"] / b["output_bytes"] for a, b in pairs])
            row["kb_delta_per_photo"] = median([(a["output_bytes"] / a["photos"] - b["output_bytes"] / b["photos"])
                                                / 1024 for a, b in pairs])
            row["wall_ratio"] = median([a["wall_s"] / b["wall_s"] for a, b in pairs])
        rows.append(row)
    return rows


def markdown(rows, meta):
    lines = [f"Feature cost: {meta['photos']} photos of `{meta['corpus']}`, {meta['runs']} runs, "
             f"imgspool `{meta['imgspool']}`, {meta['started']} – {meta['finished']}", "",
             "| case | input | vs | CPU ms / photo (per run) | **CPU ratio** (per run) | **Δ CPU ms / photo** | "
             "KB / photo | **bytes ratio** | **Δ KB / photo** | wall ratio | peak RSS MiB |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "skipped" in r:
            why = r["skipped"] if r["skipped"].startswith(("failed", "not measured")) else "not in this build: " + r["skipped"]
            lines.append(f"| {r['case']} | | | {why} | | | | | | | |")
            continue
        runs = ", ".join(f"{x:.0f}" for x in r["cpu_ms_per_photo_runs"])
        cpu = f"{r['cpu_ms_per_photo']:.0f} ({runs})"
        if "vs" in r:
            ratio_runs = ", ".join(f"{x:.3f}" for x in r["cpu_ratio_runs"])
            lines.append(f"| {r['case']} | {r['input']} ×{r['photos']} | {r['vs']} | {cpu} | "
                         f"**{r['cpu_ratio']:.3f}×** ({ratio_runs}) | **{r['cpu_delta_ms_per_photo']:+.0f}** | "
                         f"{r['kb_per_photo']:.1f} | **{r['bytes_ratio']:.3f}×** | **{r['kb_delta_per_photo']:+.1f}** | "
                         f"{r['wall_ratio']:.3f}× | {r['peak_rss_mib']:.0f} |")
        else:
            lines.append(f"| {r['case']} | {r['input']} ×{r['photos']} | | {cpu} | | | {r['kb_per_photo']:.1f} | | | | "
                         f"{r['peak_rss_mib']:.0f} |")
    lines += ["", "Bytes by extension (first run), KB per photo:", ""]
    for r in rows:
        if "skipped" not in r:
            per = ", ".join(f"{k} {v / 1024 / r['photos']:.1f}" for k, v in sorted(r["bytes_by_ext"].items()))
            fr = f"; frames kept: {r['frames_by_format']}" if r["frames_by_format"] else ""
            lines.append(f"- {r['case']}: {per}{fr}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--imgspool")
    ap.add_argument("--reference", type=int)
    ap.add_argument("--corpus")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only")
    ap.add_argument("--animations", type=int, default=10)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--converted", type=int, default=0,
                    help="only the first N JPEGs as jpeg-in, heic-in and tiff-in (default: all of the selection)")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(BENCH, "out", "features"))
    ap.add_argument("--keep-work", action="store_true")
    ap.add_argument("--from-json", help="only write the tables again from this features.json (e.g. of a run cut "
                    "short: the runs it finished count)")
    a = ap.parse_args()
    if a.from_json:
        with open(a.from_json) as f:
            data = json.load(f)
        meta = data["meta"]
        meta.setdefault("finished", "cut short")
        cases = {n: (c["input"], c["vs"], c["profile"], c["crop"]) for n, c in meta["cases"].items()}
        failed = data.get("failed", {})
        results = [[r for r in run if r["case"] not in failed] for run in data["runs"]]
        meta["runs"] = len(results)
        text = markdown(summarise(results, cases, {**data.get("skipped", {}), **failed}), meta)
        with open(os.path.join(os.path.dirname(a.from_json), "features.md"), "w") as f:
            f.write(text)
        print(text)
        return
    if not a.imgspool:
        ap.error("--imgspool BIN is required")
    binary = os.path.abspath(a.imgspool)
    out_root = os.path.join(BENCH, "out")
    if a.corpus:
        corpus = a.corpus
    else:
        corpus = reference_corpus(out_root, a.reference or 60)
    os.makedirs(a.out, exist_ok=True)
    cache = os.path.join(out_root, "features-inputs")

    cases = dict(CASES)
    if a.only:
        wanted = set(a.only.split(","))
        unknown = wanted - set(CASES)
        if unknown:
            ap.error(f"unknown case(s): {', '.join(sorted(unknown))} (cases: {', '.join(CASES)})")
        wanted |= {CASES[w][1] for w in wanted if CASES[w][1]}
        cases = {k: v for k, v in CASES.items() if k in wanted}

    files = corpus_files(corpus, a.limit)
    jpegs = [f for f in files if f.lower().endswith((".jpg", ".jpeg"))]
    if a.converted:
        jpegs = jpegs[:a.converted]  # jpeg-in, heic-in, tiff-in (HEIC encoding is slow: ~20 CPU s a photo)
    needs = {c[0] for c in cases.values()}
    inputs = {"corpus": files, "jpeg": jpegs}
    if "heic" in needs:
        inputs["heic"] = converted(jpegs, os.path.join(cache, "heic"), "heic")
    if "tiff" in needs:
        inputs["tiff"] = converted(jpegs, os.path.join(cache, "tiff"), "tif")
    if "gif" in needs:
        inputs["gif"] = animated_gifs(jpegs, os.path.join(cache, "gif"), a.animations, a.frames)
    watermark = watermark_png(cache)

    skipped = {}
    for name, case in cases.items():
        ok, msg = check_config(binary, write_case_config(os.path.join(a.out, "check", name), name, case, a.workers,
                                                          watermark))
        if not ok:
            skipped[name] = " ".join(msg.split())[:300]
            log(f"{name}: config refused by this build, skipped: {skipped[name]}")
    order = [n for n in cases if n not in skipped]

    meta = {"corpus": corpus, "photos": len(files), "runs": a.runs, "imgspool": binary,
            "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cases": {n: {"input": c[0], "vs": c[1], "profile": c[2], "crop": c[3], "files": len(inputs[c[0]])}
                      for n, c in cases.items()}}
    results, failed = [], {}
    for run_no in range(1, a.runs + 1):
        run = []
        for name in (order if run_no % 2 else list(reversed(order))):
            if name in failed:
                continue
            try:
                r = run_case(binary, name, cases[name], inputs[cases[name][0]], os.path.join(a.out, "work", name),
                             a.workers, watermark, a.keep_work)
            except (RuntimeError, OSError, ValueError) as e:  # one case failing leaves the others' figures
                failed[name] = f"failed in run {run_no}: " + " ".join(str(e).split())[:300]
                log(f"{name}: {failed[name]}")
                continue
            r["run"] = run_no
            log(f"run {run_no} {name}: {r['cpu_s']:.1f} CPU s, {r['wall_s']:.1f} s wall, "
                f"{r['output_bytes'] / 2**20:.1f} MiB out, load {r['load1']}")
            run.append(r)
        results.append(run)
        with open(os.path.join(a.out, "features.json"), "w") as f:
            json.dump({"meta": meta, "skipped": skipped, "failed": failed, "runs": results}, f, indent=1)
    meta["finished"] = datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M UTC")
    results = [[r for r in run if r["case"] not in failed] for run in results]
    rows = summarise(results, cases, {**skipped, **failed})
    with open(os.path.join(a.out, "features.json"), "w") as f:
        json.dump({"meta": meta, "skipped": skipped, "failed": failed, "runs": results, "summary": rows},
                  f, indent=1)
    text = markdown(rows, meta)
    with open(os.path.join(a.out, "features.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
