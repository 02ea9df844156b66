#!/usr/bin/env python3
"""report.py RESULTS.json OUTDIR: writes OUTDIR/report.md and OUTDIR/chart.svg (+ chart.png)
from bench.py's results. Figures are medians over the runs; ratios are computed within each run
(both systems measured back to back) and then the median of those ratios is shown."""
import json
import os
import shutil
import statistics
import subprocess
import sys

from imgspool_peer import percentile

REF1, REF2 = "sharp-seed", "sharp-imgspool"
DAEMON, BASELINE, HTTP = "imgspool-daemon", "imgspool-daemon-baseline", "imgspool-http"
HTTP_TARGET = 0.95  # issue 12: uploads by 4 clients at >= 0.95x the throughput of a drop
# issue 13: (peer, reference it is divided by, target)
DAEMON_PG, W3, NODES_PG = "imgspool-daemon-pg", "imgspool-daemon-w3", "imgspool-nodes-pg"
PG_TARGETS = ((NODES_PG, W3, 0.9), (DAEMON_PG, DAEMON, 0.95))
MIB = 2**20
KIND_ORDER = [f"{v} {f}" for v in ("small", "medium", "large", "original") for f in ("jpeg", "png", "webp")]


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=2, suffix=""):
    if v is None:
        return "–"
    return f"{v:.{digits}f}{suffix}"


class Report:
    def __init__(self, results):
        self.r = results
        self.meta = results["meta"]
        self.runs = results["runs"]
        self.peers = [p for p in self.meta.get("peers", {}) if any(p in run["peers"] for run in self.runs)]

    def series(self, peer, key):
        return [run["peers"][peer].get(key) for run in self.runs if peer in run["peers"]]

    def ratio(self, peer, ref, key, invert=False):
        """Median over runs of peer/ref (ref/peer when invert) for one figure."""
        values = []
        for run in self.runs:
            p, q = run["peers"].get(peer), run["peers"].get(ref)
            if p and q and p.get(key) and q.get(key):
                values.append(q[key] / p[key] if invert else p[key] / q[key])
        return med(values)

    def label(self, peer):
        return self.meta["peers"].get(peer, peer)

    # ---- sections ----------------------------------------------------------------------------
    def header(self):
        m = self.meta
        load = ", ".join(f"{x:.1f}" for x in m.get("load_at_start", []))
        fm = m.get("formats", {})
        lines = [
            "# imgspool benchmark report",
            "",
            f"- Date: {m['date']}; mode `{m['mode']}`, {len(self.runs)} run(s) (figures are medians over runs;"
            " ratios are medians of per-run ratios).",
            f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_bytes'] / 2**30:.0f} GiB, Linux {m['kernel']};"
            f" load average at start {load} (a shared machine: compare ratios, not absolute times).",
            f"- Corpus: `{m['corpus']}`: {m['images']} photos (JPEG {fm.get('jpeg', 0)}, PNG {fm.get('png', 0)},"
            f" WebP {fm.get('webp', 0)}), {m['corpus_bytes'] / MIB:.1f} MiB.",
            f"- Versions: imgspool {m.get('imgspool') or '(not run)'}; sharp {m['sharp']}; system {m['vips']};"
            f" {m['imagemagick']}; node {m['node']}.",
            f"- Daemon settings: settle_ms = {m['settle_ms']} (part of every drop→done latency), workers = one per core.",
            "",
        ]
        if m.get("skipped"):
            lines += [f"Not run (no imgspool binary, or no PostgreSQL server programs): {', '.join(m['skipped'])}.", ""]
        return lines

    def targets(self):
        rows = []

        def add(name, value, target, ok, unit=""):
            if value is None:
                rows.append(f"| {name} | – | {target} | not measured |")
            else:
                rows.append(f"| {name} | {value}{unit} | {target} | {'met' if ok else 'MISSED'} |")

        http = self.ratio(HTTP, DAEMON, "images_per_s")
        if "imgspool-batch" not in self.peers:
            issues = []
            if http is not None:
                add("HTTP ×4 clients vs drop", f"{http:.3f}×", f"≥ {HTTP_TARGET}×", http >= HTTP_TARGET)
                issues.append("12")
            for peer, ref, target in PG_TARGETS:
                r = self.ratio(peer, ref, "images_per_s")
                if r is not None:
                    add(f"{self.label(peer)} vs {self.label(ref)}", f"{r:.3f}×", f"≥ {target}×", r >= target)
                    if "13" not in issues:
                        issues.append("13")
            if not rows:
                return []
            return [f"## Targets (issue {', '.join(issues)})", "", "| target | measured | wanted | |",
                    "|---|---|---|---|", *rows, ""]

        t1 = self.ratio("imgspool-batch", REF1, "images_per_s")
        t2 = self.ratio("imgspool-batch", REF2, "images_per_s")
        m1 = self.ratio("imgspool-batch", REF1, "peak_rss_bytes")
        b1 = self.ratio("imgspool-batch", REF1, "bytes_total")
        if t1 is not None:
            add("batch throughput vs peer 1", f"{t1:.2f}×", "≥ 2.0×", t1 >= 2.0)
        if t2 is not None:
            add("batch throughput vs peer 2", f"{t2:.2f}×", "≥ 1.3×", t2 >= 1.3)
        if m1 is not None:
            add("peak RSS vs peer 1", f"{m1:.2f}×", "≤ 0.5×", m1 <= 0.5)
        if b1 is not None:
            add("output bytes vs peer 1", f"{b1:.2f}×", "≤ 1.1×", b1 <= 1.1)
        q = self.r.get("quality", {}).get("scores", {})
        if "imgspool-batch" in q and REF1 in q:
            worse = []
            for kind, items in q["imgspool-batch"].items():
                mine = statistics.mean(i["butteraugli"] for i in items)
                theirs = q[REF1].get(kind)
                if theirs and mine > statistics.mean(i["butteraugli"] for i in theirs) * 1.0001:
                    worse.append(f"{kind} ({mine:.2f} vs {statistics.mean(i['butteraugli'] for i in theirs):.2f})")
            add("butteraugli per kind vs peer 1", "worse in " + ", ".join(worse) if worse else "no kind worse",
                "no kind worse", not worse)
        lone = med([run.get("lone_latency", {}).get("p99") for run in self.runs])
        if lone is not None:
            add("daemon p99 drop→done, lone 12 MP JPEG", f"{lone:.3f}", "< 1 s", lone < 1.0, " s")
        dt = self.ratio("imgspool-daemon", "imgspool-batch", "images_per_s")
        if dt is not None:
            add("daemon throughput vs batch", f"{dt:.3f}×", "≥ 0.95×", dt >= 0.95)
        dup = med([run["peers"]["imgspool-daemon"].get("duplicates", {}).get("files_per_s")
                   for run in self.runs if "imgspool-daemon" in run["peers"]])
        if dup is not None:
            add("duplicate drops (daemon)", f"{dup:.0f}", "≥ 50 files/s", dup >= 50, " files/s")
        if http is not None:
            add("HTTP ×4 clients vs drop (issue 12)", f"{http:.3f}×", f"≥ {HTTP_TARGET}×", http >= HTTP_TARGET)
        return ["## Targets (issue 5)", "", "| target | measured | wanted | |", "|---|---|---|---|", *rows, ""]

    def main_table(self):
        lines = ["## Throughput, CPU and memory", "",
                 "| system | wall s | images/s | CPU s / image | peak RSS MiB | output MiB |"
                 " images/s × peer 1 | images/s × peer 2 | CPU × peer 1 | RSS × peer 1 |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for p in self.peers:
            rss = med(self.series(p, "peak_rss_bytes"))
            out = med(self.series(p, "bytes_total"))
            lines.append(
                f"| {self.label(p)} | {fmt(med(self.series(p, 'wall_s')), 1)} | {fmt(med(self.series(p, 'images_per_s')), 3)}"
                f" | {fmt(med(self.series(p, 'cpu_s_per_image')), 2)} | {fmt(rss / MIB if rss else None, 0)}"
                f" | {fmt(out / MIB if out else None, 1)}"
                f" | {fmt(self.ratio(p, REF1, 'images_per_s'), 2, '×')} | {fmt(self.ratio(p, REF2, 'images_per_s'), 2, '×')}"
                f" | {fmt(self.ratio(p, REF1, 'cpu_s'), 2, '×')} | {fmt(self.ratio(p, REF1, 'peak_rss_bytes'), 2, '×')} |")
        lines += ["", "Peak RSS is the summed resident memory of the system's whole process tree (polled every 20 ms);"
                  " for the daemon, of the daemon while it works through the drop. CPU is user + system of the"
                  " whole tree. The S3 row does not count s3rver's own CPU or memory.", ""]
        return lines

    def bytes_table(self):
        kinds = [k for k in KIND_ORDER if any(k in (run["peers"].get(p, {}).get("bytes_by_kind") or {})
                                              for run in self.runs for p in self.peers)]
        peers = [p for p in self.peers if any(self.series(p, "bytes_by_kind"))]
        if not kinds:
            return []
        lines = ["## Output bytes per variant kind (KiB, all photos)", "",
                 "| kind | " + " | ".join(self.label(p) for p in peers) + " |",
                 "|---|" + "---:|" * len(peers)]
        for k in kinds + ["total"]:
            cells = []
            for p in peers:
                last = [b for b in self.series(p, "bytes_by_kind") if b][-1]
                v = sum(last.values()) if k == "total" else last.get(k)
                cells.append(fmt(v / 1024 if v is not None else None, 0))
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
        return lines + [""]

    def quality_tables(self):
        q = self.r.get("quality")
        if not q:
            return []
        scores = q["scores"]
        peers = [p for p in self.peers if p in scores]
        kinds = [k for k in KIND_ORDER if any(k in scores[p] for p in peers)]
        lines = [f"## Quality per variant kind (mean over the sampled photos: {', '.join(q['sample'])})", "",
                 "butteraugli against the same system's lossless render of the same crop (lower is better;"
                 " < 1.0 invisible, > 2 clearly visible) / SSIM of the luma against that render / SSIM against one"
                 " shared libvips render from the fully decoded source (higher is better; a sub-pixel shift of the"
                 " crop lowers this one too). Originals are scored on their centre 1024×1024 tile.", "",
                 "| kind | " + " | ".join(self.label(p) for p in peers) + " |",
                 "|---|" + "---|" * len(peers)]
        for k in kinds:
            cells = []
            for p in peers:
                items = scores[p].get(k)
                if not items:
                    cells.append("–")
                    continue
                ba = statistics.mean(i["butteraugli"] for i in items)
                so = statistics.mean(i["ssim_own"] for i in items)
                sc = statistics.mean(i["ssim"] for i in items)
                cells.append(f"{ba:.2f} / {so:.4f} / {sc:.4f}")
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
        return lines + [""]

    def daemon_section(self):
        lines = []
        daemon_runs = [run["peers"]["imgspool-daemon"] for run in self.runs if "imgspool-daemon" in run["peers"]]
        lone = [run["lone_latency"] for run in self.runs if "lone_latency" in run]
        bdup = [run["batch_duplicates"] for run in self.runs if "batch_duplicates" in run]
        if not (daemon_runs or lone or bdup):
            return []
        lines += ["## Daemon latency and duplicates", "", "| figure | p50 | p95 | p99 |", "|---|---:|---:|---:|"]
        if lone:
            lines.append("| drop→done, a lone 12 MP JPEG into an idle daemon (s) | " +
                         " | ".join(fmt(med([l[f"p{p}"] for l in lone]), 3) for p in (50, 95, 99)) + " |")
        if daemon_runs:
            lines.append(f"| drop→done, all {self.meta['images']} photos dropped at once (s) | " +
                         " | ".join(fmt(med([d["latency_full_queue_s"][str(p)] if str(p) in d["latency_full_queue_s"]
                                             else d["latency_full_queue_s"][p] for d in daemon_runs]), 3)
                                    for p in (50, 95, 99)) + " |")
        lines.append("")
        if daemon_runs:
            dups = [d["duplicates"] for d in daemon_runs]
            lines.append(f"- Duplicates through the daemon (same bytes, new names): {fmt(med([d['files_per_s'] for d in dups]), 0)}"
                         f" files/s, cache hits {dups[-1]['cache_hits']} of {dups[-1]['files']}.")
        if bdup:
            lines.append(f"- Duplicates through `imgspool process` (second pass, one state): "
                         f"{fmt(med([d['files_per_s'] for d in bdup]), 0)} files/s including process start,"
                         f" cache hits {bdup[-1]['cache_hits']} of {bdup[-1]['files']}.")
        return lines + [""]

    def baseline_section(self):
        """imgspool-daemon against the baseline build's daemon (bench --baseline), run by run."""
        runs = [run for run in self.runs if DAEMON in run["peers"] and BASELINE in run["peers"]]
        if not runs:
            return []
        lines = [f"## Daemon against the baseline build (`{self.meta.get('baseline')}`)", "",
                 "Both daemons get the same drop in every run, one right after the other (the baseline first in"
                 " even runs); the ratio divides the two figures of the same run. Lone latency: a 12 MP JPEG"
                 f" dropped alone into an idle daemon, settle_ms = {self.meta['settle_ms']} included.", "",
                 "| run | load at start | images/s: daemon / baseline | daemon ÷ baseline | CPU s: daemon / baseline"
                 " | daemon × batch | baseline × batch | lone p50: daemon / baseline (s) | lone p99: daemon / baseline (s) |",
                 "|---:|---:|---|---:|---|---:|---:|---|---|"]

        def per_batch(run, peer):
            b = run["peers"].get("imgspool-batch")
            return run["peers"][peer]["images_per_s"] / b["images_per_s"] if b else None

        def lone(run, key, p):
            return fmt(run.get(key, {}).get(f"p{p}"), 3)
        ratios = []
        for run in runs:
            d, b = run["peers"][DAEMON], run["peers"][BASELINE]
            ratios.append(d["images_per_s"] / b["images_per_s"])
            lines.append(
                f"| {run['run']} | {run['load_at_start'][0]:.1f} | {d['images_per_s']:.3f} / {b['images_per_s']:.3f}"
                f" | {ratios[-1]:.3f}× | {d['cpu_s']:.1f} / {b['cpu_s']:.1f}"
                f" | {fmt(per_batch(run, DAEMON), 3, '×')} | {fmt(per_batch(run, BASELINE), 3, '×')}"
                f" | {lone(run, 'lone_latency', 50)} / {lone(run, 'lone_latency_baseline', 50)}"
                f" | {lone(run, 'lone_latency', 99)} / {lone(run, 'lone_latency_baseline', 99)} |")
        lines += ["", f"- Throughput, daemon ÷ baseline daemon: median {med(ratios):.3f}× over {len(ratios)} run(s)"
                  f" (range {min(ratios):.3f}–{max(ratios):.3f}×); CPU per image, daemon ÷ baseline:"
                  f" {fmt(self.ratio(DAEMON, BASELINE, 'cpu_s'), 3, '×')} (median)."]
        for key, who in (("lone_latency", "daemon"), ("lone_latency_baseline", "baseline daemon")):
            pooled = [x for run in runs for x in run.get(key, {}).get("all_s", [])]
            if pooled:
                lines.append(f"- Lone 12 MP JPEG drop→done, {who}, all {len(pooled)} samples pooled:"
                             f" p50 {percentile(pooled, 50):.3f} s, p99 {percentile(pooled, 99):.3f} s,"
                             f" max {max(pooled):.3f} s.")
        return lines + [""]

    def http_section(self):
        """imgspool-http against imgspool-daemon, run by run: the same photos uploaded by the
        clients vs dropped into the spool, and where the upload's time goes."""
        runs = [run for run in self.runs if DAEMON in run["peers"] and HTTP in run["peers"]]
        if not runs:
            return []
        clients = runs[0]["peers"][HTTP]["http"]["clients"]
        lines = ["## HTTP drop-in against the spool drop (issue 12)", "",
                 f"The same {self.meta['images']} photos, uploaded to `POST /images/upload` by {clients} client threads"
                 " (one shared list; a 503 waits for its Retry-After) vs renamed into inbox/ at once; a fresh daemon"
                 " each. Wall: first upload's start → last original in done/http/. Upload: request start → 202;"
                 " accepted → done: 202 → original in done/http/.", "",
                 "| run | load at start | images/s: http / drop | **http ÷ drop** | daemon CPU s: http / drop"
                 " | 503s retried | last 202 at (s) | upload p50 / p99 (s) | accepted→done p50 / p99 (s) |",
                 "|---:|---:|---|---:|---|---:|---:|---|---|"]
        ratios = []
        for run in runs:
            h, d = run["peers"][HTTP], run["peers"][DAEMON]
            x = h["http"]
            ratios.append(h["images_per_s"] / d["images_per_s"])

            def q(key, p):
                return x[key].get(str(p), x[key].get(p))
            lines.append(
                f"| {run['run']} | {run['load_at_start'][0]:.1f} | {h['images_per_s']:.3f} / {d['images_per_s']:.3f}"
                f" | {ratios[-1]:.3f}× | {h['cpu_s']:.1f} / {d['cpu_s']:.1f} | {x['busy_503']}"
                f" | {x['last_accepted_s']:.1f} | {q('upload_s', 50):.3f} / {q('upload_s', 99):.3f}"
                f" | {q('accepted_to_done_s', 50):.2f} / {q('accepted_to_done_s', 99):.2f} |")
        lines += ["", f"- Throughput, HTTP ÷ drop: median {med(ratios):.3f}× over {len(ratios)} run(s)"
                  f" (range {min(ratios):.3f}–{max(ratios):.3f}×; target ≥ {HTTP_TARGET}×); daemon CPU per image,"
                  f" HTTP ÷ drop: {fmt(self.ratio(HTTP, DAEMON, 'cpu_s'), 3, '×')} (median)."]
        return lines + [""]

    def pg_section(self):
        """The PostgreSQL peers against their SQLite references, run by run (issue 13)."""
        runs = [run for run in self.runs if any(p in run["peers"] and r in run["peers"] for p, r, _ in PG_TARGETS)]
        if not runs:
            return []
        lines = ["## Several nodes on PostgreSQL (issue 13)", "",
                 "A fresh database per run on one PostgreSQL server (tests/pg/pg_server.sh, durability defaults) on"
                 " this machine; the SQLite peers keep theirs in state_dir. Three nodes: one spool folder, one local"
                 " store folder, one database, `workers = 1` each. Wall: first rename into inbox/ → last original"
                 " in done/. Every photo must have exactly one job row, complete. PostgreSQL CPU: its processes'"
                 " over the first drop. Commits per job: pg_stat_database's xact_commit of the run's database over"
                 " the whole peer run (start-up, both drops, the bench's own few queries) ÷ jobs of both drops"
                 " (the duplicates are cache hits).", "",
                 "| run | load at start | images/s: daemon-pg / daemon | **daemon-pg ÷ daemon** | images/s: nodes / w3"
                 " | **nodes ÷ w3** | CPU s: daemon / daemon-pg / w3 / nodes | PostgreSQL CPU s: daemon-pg / nodes"
                 " | PostgreSQL commits per job: daemon-pg / nodes | jobs per node |",
                 "|---:|---:|---|---:|---|---:|---|---|---|---|"]
        ratios = {p: [] for p, _, _ in PG_TARGETS}

        def pair(run, peer, ref):
            a, b = run["peers"].get(peer), run["peers"].get(ref)
            if not (a and b):
                return "–", "–"
            ratios[peer].append(a["images_per_s"] / b["images_per_s"])
            return f"{a['images_per_s']:.3f} / {b['images_per_s']:.3f}", f"{ratios[peer][-1]:.3f}×"

        def cpu(run, peer, key="cpu_s"):
            return fmt(run["peers"].get(peer, {}).get(key), 1)

        def commits(run, peer):
            t = run["peers"].get(peer, {}).get("db_transactions")
            return fmt(t["commits"] / t["jobs"], 1) if t else "–"
        for run in runs:
            d_ips, d_ratio = pair(run, DAEMON_PG, DAEMON)
            n_ips, n_ratio = pair(run, NODES_PG, W3)
            per_node = run["peers"].get(NODES_PG, {}).get("job_rows", {}).get("complete_per_node", {})
            lines.append(
                f"| {run['run']} | {run['load_at_start'][0]:.1f} | {d_ips} | {d_ratio} | {n_ips} | {n_ratio}"
                f" | {cpu(run, DAEMON)} / {cpu(run, DAEMON_PG)} / {cpu(run, W3)} / {cpu(run, NODES_PG)}"
                f" | {cpu(run, DAEMON_PG, 'db_cpu_s')} / {cpu(run, NODES_PG, 'db_cpu_s')}"
                f" | {commits(run, DAEMON_PG)} / {commits(run, NODES_PG)}"
                f" | {', '.join(f'{k} {v}' for k, v in sorted(per_node.items())) or '–'} |")
        lines.append("")
        for peer, ref, target in PG_TARGETS:
            r = ratios[peer]
            if r:
                lines.append(f"- Throughput, {peer} ÷ {ref}: median {med(r):.3f}× over {len(r)} run(s) (range"
                             f" {min(r):.3f}–{max(r):.3f}×; target ≥ {target}×: {'met' if med(r) >= target else 'MISSED'}).")
        return lines + [""]

    def scaling_section(self):
        runs = [run["scaling"] for run in self.runs if "scaling" in run]
        if not runs:
            return []
        lines = ["## Scaling of `imgspool process` with workers", "",
                 "| workers | images/s | CPU s | peak RSS MiB |", "|---:|---:|---:|---:|"]
        for row in runs[0]:
            w = row["workers"]
            same = [x for r in runs for x in r if x["workers"] == w]
            lines.append(f"| {w} | {fmt(med([x['images_per_s'] for x in same]), 3)} | {fmt(med([x['cpu_s'] for x in same]), 1)}"
                         f" | {fmt(med([x['peak_rss_bytes'] for x in same]) / MIB, 0)} |")
        return lines + [""]

    def long_section(self):
        lr = self.r.get("long")
        if not lr:
            return []
        n = lr["images"]

        def line(what, rss):
            a, b = rss.get("200"), rss.get(str(n))
            growth = f"{(b / a - 1) * 100:+.1f}%" if a and b else "–"
            return (f"- {what}: {fmt(a / MIB if a else None, 0)} MiB at 200 photos, {fmt(b / MIB if b else None, 0)} MiB"
                    f" at {n} ({growth}; target within ±10%)")
        lines = ["## Memory over a long run", "",
                 f"The daemon fed {n} distinct photos, 32 in its inbox at a time ({lr['wall_s']} s).", ""]
        if lr.get("peak_rss_before_bytes"):
            lines.append(line(f"peak RSS over the {lr['peak_rss_window']} photos before the mark",
                              lr["peak_rss_before_bytes"]))
        lines.append(line("RSS at the instant of the mark (swings with the jobs in flight)", lr["rss_after_bytes"]))
        return lines + [""]

    def failures(self):
        f = self.r.get("failures") or []
        return ["## Failures", "", *[f"- {x}" for x in f], ""] if f else []

    def chart(self, out_dir):
        if not self.peers:
            return ["(no chart: no system finished a run)", ""]
        data = os.path.join(out_dir, "chart.dat")
        with open(data, "w") as f:
            f.write("# system images_per_s peak_rss_mib\n")
            for p in self.peers:
                ips = med(self.series(p, "images_per_s"))
                rss = med(self.series(p, "peak_rss_bytes"))
                f.write(f'"{p}" {ips or 0:.4f} {(rss or 0) / MIB:.1f}\n')
        if not shutil.which("gnuplot"):
            return ["(no chart: gnuplot is missing; bench/install-deps.sh installs gnuplot-nox)", ""]
        script = os.path.join(out_dir, "chart.gp")
        with open(script, "w") as f:
            f.write(f"""set datafile separator whitespace
set style data histograms
set style histogram gap 1
set style fill solid 0.8 border -1
set boxwidth 0.8
set grid ytics
set xtics rotate by -30 left font ",10"
set key off
set yrange [0:*]
do for [t in "svg pngcairo"] {{
  if (t eq "svg") {{ set terminal svg size 1000,520 dynamic font "sans,11"; set output "{out_dir}/chart.svg" }}
  else {{ set terminal pngcairo size 1000,520 font "sans,10"; set output "{out_dir}/chart.png" }}
  set multiplot layout 1,2 title "{self.meta['images']} photos, web profile, {self.meta['cores']} cores (medians of {len(self.runs)} run(s))"
  set title "throughput (images/s, higher is better)"
  plot "{data}" using 2:xtic(1) linecolor rgb "#3465a4"
  set title "peak RSS (MiB, lower is better)"
  plot "{data}" using 3:xtic(1) linecolor rgb "#cc0000"
  unset multiplot
  set output
}}
""")
        proc = subprocess.run(["gnuplot", script], capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"gnuplot: {proc.stderr.strip()}")
        return ["![throughput and peak memory per system](chart.svg)", ""]

    def write(self, out_dir):
        lines = self.header() + self.chart(out_dir) + self.targets() + self.main_table() + self.bytes_table() \
            + self.quality_tables() + self.daemon_section() + self.baseline_section() + self.http_section() + self.pg_section() + self.scaling_section() + self.long_section() \
            + self.failures()
        with open(os.path.join(out_dir, "report.md"), "w") as f:
            f.write("\n".join(lines))


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: report.py RESULTS.json OUTDIR")
    with open(sys.argv[1]) as f:
        results = json.load(f)
    Report(results).write(sys.argv[2])


if __name__ == "__main__":
    main()
