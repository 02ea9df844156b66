#!/usr/bin/env python3
"""The benchmark driver behind bench/run.sh: runs every peer on a corpus, checks their outputs,
measures, scores quality and writes OUT/results.json (bench/lib/report.py turns it into the
report). See bench/README.md for what each figure means."""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from measure import measure  # noqa: E402
import imgspool_peer as isp  # noqa: E402
import http_upload  # noqa: E402
import pg_bench_server  # noqa: E402

EXT_FORMAT = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp"}
SIZES = {"small": 150, "medium": 400, "large": 800}
ORIGINAL_TILE = 1024  # originals are scored on the centre tile of this size
HTTP_CLIENTS = 4  # imgspool-http: concurrent upload clients (issue 12)

PEERS = {  # name -> (label, needs)
    "sharp-seed": "sharp, original design (peer 1)",
    "sharp-imgspool": "sharp, imgspool's encoders (peer 2)",
    "vips-cli": "vips CLI + xargs -P",
    "magick": "ImageMagick convert + xargs -P",
    "imgspool-batch": "imgspool process",
    "imgspool-daemon": "imgspool run (daemon)",
    "imgspool-http": "imgspool run, HTTP uploads by 4 clients",
    "imgspool-daemon-w3": "imgspool run (daemon), 3 workers",
    "imgspool-daemon-pg": "imgspool run (daemon), PostgreSQL job record",
    "imgspool-nodes-pg": "3 × imgspool run (nodes a, b, c; 1 worker each), one spool, PostgreSQL",
    "imgspool-s3": "imgspool process, S3 store",
}
# With --baseline BIN: the daemon of another imgspool build (e.g. the last benchmarked commit),
# run right before or after imgspool-daemon in every run, so the two compare within one run.
BASELINE = "imgspool-daemon-baseline"
BASELINE_LABEL = "imgspool run (daemon), baseline build"
# Peers compared run by run with a reference peer: in even runs each goes right before its
# reference, in odd runs where --peers puts it, so neither always finds the other's warm caches.
PAIRED = {BASELINE: "imgspool-daemon", "imgspool-http": "imgspool-daemon",
          "imgspool-daemon-pg": "imgspool-daemon", "imgspool-nodes-pg": "imgspool-daemon-w3"}
PG_PEERS = ("imgspool-daemon-pg", "imgspool-nodes-pg")
NODES = ("a", "b", "c")  # imgspool-nodes-pg: one worker each (issue 13)
# Left out of --smoke unless named (CI's smoke stays near 2 minutes): imgspool-nodes-pg runs the
# PostgreSQL paths of both, and imgspool-daemon's run the rest.
NOT_IN_SMOKE = ("imgspool-daemon-w3", "imgspool-daemon-pg")


T0 = time.monotonic()


def log(msg):
    print(f"bench [{time.monotonic() - T0:6.1f} s]: {msg}", file=sys.stderr, flush=True)


def one_line(error, limit=600):
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[:limit] + " ..."


def sniff(path):
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def corpus_files(corpus):
    files = sorted(os.path.join(corpus, f) for f in os.listdir(corpus)
                   if f.rsplit(".", 1)[-1].lower() in EXT_FORMAT)
    if not files:
        sys.exit(f"bench: no .jpg/.png/.webp files in {corpus}")
    return files


def pick_spread(files, k):
    """Up to k files, JPEGs first but at least one PNG and one WebP when the corpus has them."""
    by = {"jpeg": [], "png": [], "webp": []}
    for f in files:
        by[sniff(f)].append(f)
    chosen = [lst[0] for fmt, lst in by.items() if lst and fmt != "jpeg"][: max(0, k - 1)]
    chosen = by["jpeg"][: k - len(chosen)] + chosen
    for f in files:
        if len(chosen) >= k:
            break
        if f not in chosen:
            chosen.append(f)
    return sorted(chosen)


def vips_dims(path):
    out = subprocess.run(["vipsheader", "-f", "width", path], capture_output=True, text=True)
    out2 = subprocess.run(["vipsheader", "-f", "height", path], capture_output=True, text=True)
    if out.returncode or out2.returncode:
        raise RuntimeError(f"{path}: unreadable: {out.stderr.strip()}")
    return int(out.stdout), int(out2.stdout)


def display_dims(src):
    """Width and height after EXIF auto-orientation."""
    w, h = vips_dims(src)
    o = subprocess.run(["vipsheader", "-f", "orientation", src], capture_output=True, text=True)
    if o.returncode == 0 and o.stdout.strip() in ("5", "6", "7", "8"):
        w, h = h, w
    return w, h


def expected_outputs(src):
    fmt = sniff(src)
    ext = {"jpeg": "jpg", "png": "png", "webp": "webp"}[fmt]
    names = {f"{v}.{ext}" for v in SIZES} | {f"{v}.webp" for v in SIZES} | {f"original.{ext}"}
    return names


def check_outputs(peer, out_dir, files, deep):
    """Every photo has all its outputs, non-empty, with the right magic (and, if deep, the right
    dimensions). Returns bytes per kind ("small jpeg", ...) and the output count."""
    kinds, count, dims = {}, 0, {}
    for src in files:
        stem = os.path.splitext(os.path.basename(src))[0]
        d = os.path.join(out_dir, stem)
        have = set(os.listdir(d)) if os.path.isdir(d) else set()
        want = expected_outputs(src)
        if want - have:
            raise RuntimeError(f"{peer}: {stem}: missing {sorted(want - have)} (has {sorted(have)})")
        for name in sorted(want):
            path = os.path.join(d, name)
            variant, ext = name.rsplit(".", 1)
            fmt = EXT_FORMAT[ext]
            size = os.path.getsize(path)
            if size == 0 or sniff(path) != fmt:
                raise RuntimeError(f"{peer}: {path}: empty or not {fmt} (magic says {sniff(path)})")
            if deep:
                if src not in dims:
                    dims[src] = display_dims(src)
                want_dims = (SIZES[variant], SIZES[variant]) if variant in SIZES else dims[src]
                got = vips_dims(path)
                if got != want_dims:
                    raise RuntimeError(f"{peer}: {path} is {got[0]}x{got[1]}, expected {want_dims[0]}x{want_dims[1]}")
            key = f"{variant} {fmt}"
            kinds[key] = kinds.get(key, 0) + size
            count += 1
    return kinds, count


class Bench:
    def __init__(self, args):
        self.a = args
        self.out = os.path.abspath(args.out)
        self.work = os.path.join(self.out, "work")
        self.files = corpus_files(args.corpus)
        if args.limit:
            self.files = pick_spread(self.files, args.limit)
        self.n = len(self.files)
        self.cores = os.cpu_count() or 1
        self.s3 = None
        self.pg = None
        self.results = {"runs": [], "meta": self.meta()}

    def meta(self):
        def version(cmd):
            try:
                return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
            except (OSError, IndexError, subprocess.TimeoutExpired):
                return "?"
        cpu = "?"
        try:
            with open("/proc/cpuinfo") as f:
                cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
        sharp_version = subprocess.run(
            ["node", "-e", "const s=require('sharp');console.log(s.versions.sharp+' (libvips '+s.versions.vips+')')"],
            cwd=os.path.join(BENCH, "peers"), capture_output=True, text=True).stdout.strip()
        return {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "host": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "memory_bytes": mem,
            "kernel": platform.release(), "load_at_start": os.getloadavg(),
            "corpus": os.path.abspath(self.a.corpus), "images": self.n,
            "formats": {f: sum(1 for x in self.files if sniff(x) == f) for f in ("jpeg", "png", "webp")},
            "corpus_bytes": sum(os.path.getsize(f) for f in self.files),
            "runs": self.a.runs, "mode": self.a.mode, "settle_ms": self.a.settle_ms,
            "imgspool": version([self.a.imgspool, "--version"]) if self.a.imgspool else None,
            "baseline": os.path.abspath(self.a.baseline) if self.a.baseline else None,
            "sharp": sharp_version, "vips": version(["vips", "--version"]),
            "imagemagick": " ".join(version(["/usr/bin/convert-im6.q16", "-version"]).split()[1:3]),
            "node": version(["node", "--version"]),
        }

    # ---- peers -------------------------------------------------------------------------
    def peer_command(self, peer, out_dir):
        peers_dir = os.path.join(BENCH, "peers")
        if peer == "sharp-seed":
            return ["node", os.path.join(peers_dir, "sharp-pool.js"), "--settings", "seed", "--out", out_dir, *self.files]
        if peer == "sharp-imgspool":
            return ["node", os.path.join(peers_dir, "sharp-pool.js"), "--settings", "imgspool", "--out", out_dir, *self.files]
        if peer == "vips-cli":
            return [os.path.join(peers_dir, "vips-cli.sh"), out_dir, *self.files]
        if peer == "magick":
            return [os.path.join(peers_dir, "magick.sh"), out_dir, *self.files]
        raise KeyError(peer)

    def run_peer(self, peer, run_no):
        out_dir = os.path.join(self.work, peer, "out")
        shutil.rmtree(os.path.join(self.work, peer), ignore_errors=True)
        os.makedirs(out_dir)
        extra = {}
        if peer in ("sharp-seed", "sharp-imgspool", "vips-cli", "magick"):
            logs = os.path.join(self.work, peer)
            r = measure(self.peer_command(peer, out_dir), os.path.join(logs, "stdout"), os.path.join(logs, "stderr"))
            if r["rc"] != 0:
                raise RuntimeError(f"{peer} exited {r['rc']}: {isp.tail(os.path.join(logs, 'stderr'))}")
        elif peer == "imgspool-batch":
            r = isp.run_batch(self.a.imgspool, self.files, os.path.join(self.work, peer, "run"), out_dir=out_dir)
        elif peer == "imgspool-s3":
            r = isp.run_batch(self.a.imgspool, self.files, os.path.join(self.work, peer, "run"), store=self.s3_store())
        elif peer == "imgspool-daemon":
            r, extra = self.run_daemon(self.a.imgspool, peer, out_dir)
        elif peer == BASELINE:
            r, extra = self.run_daemon(self.a.baseline, peer, out_dir)
        elif peer == "imgspool-http":
            r, extra = self.run_http(self.a.imgspool, peer, out_dir)
        elif peer == "imgspool-daemon-w3":
            r, extra = self.run_daemon(self.a.imgspool, peer, out_dir, workers=3)
        elif peer == "imgspool-daemon-pg":
            r, extra = self.run_daemon(self.a.imgspool, peer, out_dir, pg=True)
        elif peer == "imgspool-nodes-pg":
            r, extra = self.run_nodes(self.a.imgspool, peer, out_dir)
        else:
            raise KeyError(peer)
        if peer != "imgspool-s3":
            r["bytes_by_kind"], r["outputs"] = check_outputs(peer, out_dir, self.files, deep=self.a.mode == "smoke")
            r["bytes_total"] = sum(r["bytes_by_kind"].values())
        r["images"] = self.n
        r["images_per_s"] = round(self.n / r["wall_s"], 3)
        r["cpu_s_per_image"] = round(r["cpu_s"] / self.n, 3)
        r.update(extra)
        return r

    def run_daemon(self, binary, peer, out_dir, workers=0, pg=False):
        """The corpus dropped at once into a fresh daemon's inbox (workers: 0 = one per core;
        pg: its job record in a fresh database on the bench's PostgreSQL server)."""
        work = os.path.join(self.work, peer, "run")
        db = self.pg_database(peer) if pg else None
        try:
            daemons = [isp.Daemon(binary, work, workers=workers, settle_ms=self.a.settle_ms,
                                  database_url=db[1] if db else None, query=db[2] if db else None)]
            return self.drop_corpus(daemons, work, out_dir, db)
        finally:
            if db:
                self.pg.drop_database(db[0])

    def run_nodes(self, binary, peer, out_dir):
        """Three one-worker daemons (nodes a, b, c) on one spool folder, one local store folder and
        one fresh PostgreSQL database; the corpus dropped at once into their shared inbox."""
        work = os.path.join(self.work, peer, "run")
        db = self.pg_database(peer)
        daemons = []
        try:
            for i, node in enumerate(NODES):
                daemons.append(isp.Daemon(binary, work, workers=1, settle_ms=self.a.settle_ms, database_url=db[1],
                                          node=node, query=db[2], fresh=i == 0))
            deadline = time.monotonic() + 60
            while int(db[2]("SELECT count(*) FROM nodes WHERE state = 'alive'")[0][0]) != len(NODES):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the {len(NODES)} nodes did not all register within 60 s")
                time.sleep(0.1)
            return self.drop_corpus(daemons, work, out_dir, db)
        finally:
            for d in daemons:
                d.stop()  # already stopped unless something failed
            self.pg.drop_database(db[0])

    def drop_corpus(self, daemons, work, out_dir, db):
        """Drops the corpus at once into the inbox the daemons share: time from the first rename to
        the last original in done/, per-file drop->done latency; then the same photos again under
        new names (cache hits). CPU and peak RSS are the daemons' summed (with several, the sum
        of each one's peak: an upper bound); with db, also the PostgreSQL server's CPU, and every
        photo must have exactly one job row, complete."""
        d = daemons[0]
        try:
            names = [d.stage_copy(f, os.path.basename(f)) for f in self.files]
            cpu0 = sum(x.cpu_seconds() for x in daemons)
            db_cpu0 = self.pg.cpu_seconds() if db else None
            for x in daemons:
                x.sampler.reset_peak()
            dropped = d.drop(names)
            t0 = min(dropped.values())
            finished = d.wait_done(names, timeout=120 + 30 * self.n)
            wall = max(finished.values()) - t0
            cpu = sum(x.cpu_seconds() for x in daemons) - cpu0
            db_cpu = self.pg.cpu_seconds() - db_cpu0 if db else None
            peak = sum(x.sampler.peak for x in daemons)
            for x in daemons[1:]:
                x.check_failed()
                x._check_alive()
            lat = [finished[n] - dropped[n] for n in names]
            # duplicates: same bytes, new names -> no rendering expected
            dups = [d.stage_copy(f, "dup-" + os.path.basename(f)) for f in self.files]
            hits0 = d.cache_hits()
            dropped2 = d.drop(dups)
            finished2 = d.wait_done(dups, timeout=60 + 5 * self.n)
            dup_wall = max(finished2.values()) - min(dropped2.values())
            hits = d.cache_hits() - hits0
        finally:
            codes = [x.stop() for x in daemons]
        bad = [(x.stderr, rc) for x, rc in zip(daemons, codes) if rc != 0]
        if bad:
            raise RuntimeError(f"imgspool run exited {bad[0][1]} on SIGTERM: {isp.tail(bad[0][0])}")
        extra = {}
        if db:
            extra["job_rows"] = self.check_job_rows(d, names, dups)
            # the daemons have stopped, so their backends have reported their statistics
            commits, rollbacks = self.pg.query(f"SELECT xact_commit, xact_rollback FROM pg_stat_database"
                                               f" WHERE datname = '{db[0]}'")[0]
            extra["db_transactions"] = {"commits": int(commits), "rollbacks": int(rollbacks),
                                        "jobs": len(names) + len(dups)}
        # lay out only the first drop's outputs (the duplicates point at the same objects)
        isp.lay_out(work, out_dir, only=set(names), query=d.query)
        result = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "peak_rss_bytes": peak, "rc": codes[0]}
        extra.update({
            "latency_full_queue_s": {p: round(isp.percentile(lat, p), 3) for p in (50, 95, 99)},
            "duplicates": {"files": len(dups), "cache_hits": hits, "wall_s": round(dup_wall, 3),
                           "files_per_s": round(len(dups) / max(dup_wall, 1e-6), 1)},
        })
        if db:
            extra["workers"] = len(daemons)
            extra["db_cpu_s"] = round(db_cpu, 3)
        return result, extra

    @staticmethod
    def check_job_rows(d, names, dups):
        """Every dropped name has exactly one job row, complete, with one images row (no file done
        twice, none lost, whichever node did it); returns the first drop's jobs per node."""
        rows = d.query("SELECT j.source_name, j.status, j.node, (SELECT count(*) FROM images i WHERE i.upload_id = j.id)"
                       " FROM upload_jobs j")
        per_name, per_node = {}, {}
        for source, status, node, images in rows:
            per_name.setdefault(source, []).append((status, node, int(images)))
        wrong = {n: per_name.get(n) for n in names + dups if per_name.get(n) is None or len(per_name[n]) != 1
                 or per_name[n][0][0] != "complete" or per_name[n][0][2] != 1}
        extra_rows = set(per_name) - set(names) - set(dups)
        if wrong or extra_rows:
            sample = dict(list(wrong.items())[:3])
            raise RuntimeError(f"job rows: {len(wrong)} name(s) without exactly one complete row with one image"
                               f" (e.g. {sample}); rows for names never dropped: {sorted(extra_rows)[:3]}")
        for n in names:
            node = per_name[n][0][1]
            per_node[node] = per_node.get(node, 0) + 1
        return {"rows": len(rows), "complete_per_node": per_node}

    def pg_database(self, peer):
        """(name, URL, query function) of a fresh database on the bench's PostgreSQL server,
        which starts with the first PostgreSQL peer and stops at the end of the bench run."""
        if self.pg is None:
            log("starting PostgreSQL (tests/pg/pg_server.sh, durability defaults)")
            self.pg = pg_bench_server.PgServer(os.path.join(self.out, "pg"))
        name, url = self.pg.fresh_database(peer)
        return name, url, lambda sql: self.pg.query(sql, db=name)

    def run_http(self, binary, peer, out_dir):
        """The corpus uploaded to a fresh daemon's HTTP drop-in (POST /images/upload) by
        HTTP_CLIENTS client threads taking photos from one shared list: time from the first
        upload's start to the last original in done/http/ (polled every 5 ms, as for the drop)."""
        work = os.path.join(self.work, peer, "run")
        token = "bench-" + os.urandom(8).hex()
        d = isp.Daemon(binary, work, settle_ms=self.a.settle_ms, http_port=http_upload.free_port(),
                       http_token=token)
        try:
            cpu0 = d.cpu_seconds()
            d.sampler.reset_peak()
            pool = http_upload.UploadPool("127.0.0.1", d.http_port, self.files, clients=HTTP_CLIENTS, token=token)
            pool.start()
            finished = {}
            timeout = 120 + 30 * self.n
            deadline = time.monotonic() + timeout
            while True:
                now = time.monotonic()
                uploads_over = pool.finished()  # read before the ids: no 202 comes after it
                with pool.lock:
                    accepted = set(pool.accepted)
                    errors = list(pool.errors)
                if errors:
                    raise RuntimeError(f"upload failed: {errors[0]}")
                for upload_id in (accepted - finished.keys()) & d.done_stems("http"):
                    finished[upload_id] = now
                if uploads_over and len(finished) == len(accepted):
                    break
                d.check_failed("http")
                d._check_alive()
                if now > deadline:
                    raise RuntimeError(f"imgspool run: {len(accepted) - len(finished)} upload(s) not done and "
                                       f"{self.n - len(accepted)} not accepted after {timeout} s")
                time.sleep(0.005)
            if len(pool.accepted) != self.n:
                raise RuntimeError(f"{len(pool.accepted)} of {self.n} uploads accepted")
            wall = max(finished.values()) - pool.first_sent
            cpu = d.cpu_seconds() - cpu0
            peak = d.sampler.peak
            statuses = d.job_statuses(finished)
            incomplete = {i: s for i, s in statuses.items() if s != "complete"}
            if incomplete or len(statuses) != self.n:
                raise RuntimeError(f"uploads in done/http/ whose job is not complete: {incomplete}"
                                   f" ({len(statuses)} rows for {self.n} uploads)")
        finally:
            rc = d.stop()
        if rc != 0:
            raise RuntimeError(f"imgspool run exited {rc} on SIGTERM: {isp.tail(d.stderr)}")
        up = pool.accepted
        stems = {i: os.path.splitext(os.path.basename(u["path"]))[0] for i, u in up.items()}
        isp.lay_out(work, out_dir, stems=stems)
        upload_s = [u["answered"] - u["sent"] for u in up.values()]
        done_s = [finished[i] - u["answered"] for i, u in up.items()]
        result = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "peak_rss_bytes": peak, "rc": rc}
        extra = {"http": {
            "clients": HTTP_CLIENTS, "busy_503": pool.busy, "broken_retried": pool.broken,
            "last_accepted_s": round(max(u["answered"] for u in up.values()) - pool.first_sent, 3),
            "upload_s": {p: round(isp.percentile(upload_s, p), 3) for p in (50, 95, 99)},
            "accepted_to_done_s": {p: round(isp.percentile(done_s, p), 3) for p in (50, 95, 99)},
            "sent_to_done_s": {p: round(isp.percentile([finished[i] - u["sent"] for i, u in up.items()], p), 3)
                               for p in (50, 95, 99)},
        }}
        return result, extra

    def lone_latency(self, binary=None):
        """A 12 MP JPEG dropped alone into an idle daemon, one after the other. A first drop (another
        photo, when the corpus has one) warms the process up and is not counted."""
        jpegs = [f for f in self.files if sniff(f) == "jpeg"] or self.files
        timed = jpegs[: max(1, self.a.lone)]
        warm = [f for f in self.files if f not in timed][:1]
        work = os.path.join(self.work, "imgspool-lone")
        d = isp.Daemon(binary or self.a.imgspool, work, settle_ms=self.a.settle_ms)
        lat = []
        try:
            for f in warm + timed:
                name = d.stage_copy(f, os.path.basename(f))
                dropped = d.drop([name])
                finished = d.wait_done([name], timeout=120)
                if f in timed:
                    lat.append(finished[name] - dropped[name])
                time.sleep(0.2)
        finally:
            rc = d.stop()
        if rc != 0:
            raise RuntimeError(f"imgspool run exited {rc} on SIGTERM: {isp.tail(d.stderr)}")
        return {"samples": len(lat), **{f"p{p}": round(isp.percentile(lat, p), 3) for p in (50, 95, 99)},
                "all_s": [round(x, 3) for x in lat]}

    def lone_latency_baseline(self):
        return self.lone_latency(self.a.baseline)

    def scaling(self):
        out = []
        for workers in range(1, self.cores + 1):
            r = isp.run_batch(self.a.imgspool, self.files, os.path.join(self.work, f"scaling-{workers}"),
                              workers=workers)
            out.append({"workers": workers, "wall_s": r["wall_s"], "images_per_s": round(self.n / r["wall_s"], 3),
                        "cpu_s": r["cpu_s"], "peak_rss_bytes": r["peak_rss_bytes"]})
            shutil.rmtree(os.path.join(self.work, f"scaling-{workers}"), ignore_errors=True)
        return out

    def batch_duplicates(self):
        """`imgspool process` on the corpus twice with one state: the second pass is all cache hits."""
        work = os.path.join(self.work, "imgspool-dup")
        shutil.rmtree(work, ignore_errors=True)
        config = isp.write_config(work)
        first = measure([self.a.imgspool, "process", "-c", config, *self.files],
                        os.path.join(work, "first.jsonl"), os.path.join(work, "first.log"))
        second = measure([self.a.imgspool, "process", "-c", config, *self.files],
                         os.path.join(work, "second.jsonl"), os.path.join(work, "second.log"))
        if first["rc"] or second["rc"]:
            raise RuntimeError(f"imgspool process (duplicates) failed: {isp.tail(os.path.join(work, 'second.log'))}")
        records = isp.check_batch_output(os.path.join(work, "second.jsonl"), self.n)
        hits = sum(1 for r in records if r.get("cache_hit"))
        return {"files": self.n, "cache_hits": hits, "wall_s": second["wall_s"],
                "files_per_s": round(self.n / second["wall_s"], 1)}

    # ---- S3 ------------------------------------------------------------------------------
    def s3_store(self):
        if self.s3 is None:
            harness = os.path.join(os.path.dirname(BENCH), "tests", "s3", "harness")
            if not os.path.isdir(os.path.join(harness, "node_modules")):
                subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=harness, check=True)
            proc = subprocess.Popen(["node", os.path.join(harness, "start.js")], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True, start_new_session=True)
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("the S3 harness (tests/s3/harness/start.js) did not start")
            info = json.loads(line)
            # s3rver behind the harness' SigV4-checking proxy (s3rver itself knows only its own keys)
            self.s3 = (proc, {"bucket": info["bucket"], "region": info["region"], "endpoint": info["verify"],
                              "access_key_id": info["access_key_id"],
                              "secret_access_key": info["secret_access_key"]})
        return self.s3[1]

    def stop_s3(self):
        if self.s3:
            proc = self.s3[0]
            proc.stdin.close()  # the harness stops when its stdin closes
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait()
            self.s3 = None

    # ---- quality ---------------------------------------------------------------------------
    def quality(self, peers):
        """Scores of a sample of photos: each peer's encoded outputs against its own lossless
        render of the same crop (butteraugli, SSIM) and against one shared libvips render (SSIM)."""
        sample = pick_spread(self.files, self.a.quality_sample)
        qdir = os.path.join(self.out, "quality")
        shutil.rmtree(qdir, ignore_errors=True)
        os.makedirs(qdir)
        common = os.path.join(qdir, "common")
        for src in sample:
            stem = os.path.splitext(os.path.basename(src))[0]
            d = os.path.join(common, stem)
            os.makedirs(d)
            full = os.path.join(d, "full.v")
            subprocess.run(["vips", "autorot", src, full], check=True)
            for variant, size in SIZES.items():
                subprocess.run(["vips", "thumbnail", full, os.path.join(d, f"{variant}.png[strip,compression=1]"),
                                str(size), "--height", str(size), "--crop", "centre", "--no-rotate"], check=True)
            subprocess.run(["vips", "copy", full, os.path.join(d, "original.png[strip,compression=1]")], check=True)
            os.unlink(full)
        # each system's lossless render of the same crops
        own = {}
        families = {"sharp-seed": "sharp", "sharp-imgspool": "sharp", "vips-cli": "vips-cli", "magick": "magick",
                    "imgspool-batch": "imgspool"}  # the daemon and S3 runs use the same renderer
        for family in sorted({families[p] for p in peers if p in families}):
            d = os.path.join(qdir, "lossless-" + family)
            os.makedirs(d)
            if family == "sharp":
                cmd = ["node", os.path.join(BENCH, "peers", "sharp-pool.js"), "--settings", "lossless", "--out", d, *sample]
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            elif family in ("vips-cli", "magick"):
                script = os.path.join(BENCH, "peers", f"{family}.sh")
                subprocess.run([script, d, *sample], check=True, env={**os.environ, "LOSSLESS": "1"})
            else:
                isp.run_batch(self.a.imgspool, sample, os.path.join(qdir, "imgspool-lossless-run"),
                              profile="bench-lossless", out_dir=d)
            own[family] = d
        pairs = []
        for peer in peers:
            if peer not in families:
                continue
            out_dir = os.path.join(self.work, peer, "out")
            for src in sample:
                stem = os.path.splitext(os.path.basename(src))[0]
                for name in sorted(expected_outputs(src)):
                    variant, ext = name.rsplit(".", 1)
                    ref_own = os.path.join(own[families[peer]], stem, f"{variant}.png")
                    crop = None
                    if variant == "original":
                        w, h = display_dims(src)
                        t = min(ORIGINAL_TILE, w, h)
                        crop = {"left": (w - t) // 2, "top": (h - t) // 2, "width": t, "height": t}
                    pairs.append({"id": [peer, f"{variant} {EXT_FORMAT[ext]}", stem],
                                  "test": os.path.join(out_dir, stem, name), "own_ref": ref_own,
                                  "common_ref": os.path.join(common, stem, f"{variant}.png"), "crop": crop})
        with open(os.path.join(qdir, "pairs.json"), "w") as f:
            json.dump(pairs, f)
        with open(os.path.join(qdir, "pairs.json")) as fin:
            proc = subprocess.run(["node", os.path.join(HERE, "quality.js")], stdin=fin, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"quality.js: {proc.stderr.strip()}")
        scores = {}
        for s in json.loads(proc.stdout):
            peer, kind, stem = s["id"]
            scores.setdefault(peer, {}).setdefault(kind, []).append(
                {"photo": stem, "butteraugli": s["butteraugli"], "ssim_own": s["ssim_own"], "ssim": s["ssim"]})
        return {"sample": [os.path.basename(f) for f in sample], "scores": scores}

    # ---- all -----------------------------------------------------------------------------------
    def main(self):
        if self.a.peers:
            peers = [p for p in self.a.peers.split(",") if p]
        else:
            peers = [p for p in PEERS if not (self.a.mode == "smoke" and p in NOT_IN_SMOKE)]
        unknown = [p for p in peers if p not in PEERS]
        if unknown:
            sys.exit(f"bench: unknown peer(s) {unknown}; known: {', '.join(PEERS)}")
        if not self.a.imgspool:
            skipped = [p for p in peers if p.startswith("imgspool")]
            if skipped:
                log(f"no imgspool binary: skipping {', '.join(skipped)}")
                self.results["meta"]["skipped"] = skipped
            peers = [p for p in peers if not p.startswith("imgspool")]
        if not pg_bench_server.available():
            skipped = [p for p in peers if p in PG_PEERS]
            if skipped:
                log(f"no PostgreSQL server programs or psql: skipping {', '.join(skipped)}")
                self.results["meta"]["skipped"] = self.results["meta"].get("skipped", []) + skipped
            peers = [p for p in peers if p not in PG_PEERS]
        if self.a.baseline:
            if "imgspool-daemon" not in peers:
                sys.exit("bench: --baseline compares daemons: it needs the imgspool-daemon peer")
            peers.insert(peers.index("imgspool-daemon") + 1, BASELINE)
        self.results["meta"]["peers"] = {p: PEERS.get(p, BASELINE_LABEL) for p in peers}
        os.makedirs(self.out, exist_ok=True)
        log(f"{self.n} images from {self.a.corpus}, {self.a.runs} run(s), peers: {', '.join(peers)}")
        failures = []
        try:
            for run_no in range(1, self.a.runs + 1):
                for f in self.files:  # same page-cache state for everyone
                    with open(f, "rb") as fh:
                        while fh.read(1 << 20):
                            pass
                run = {"run": run_no, "load_at_start": os.getloadavg(), "peers": {}}
                for peer in self.interleaved(peers, run_no):
                    try:
                        r = self.run_peer(peer, run_no)
                        run["peers"][peer] = r
                        log(f"run {run_no}: {peer}: {r['wall_s']:.2f} s wall, {r['images_per_s']:.3f} img/s, "
                            f"{r['cpu_s_per_image']:.2f} CPU s/img, peak RSS {r['peak_rss_bytes'] / 2**20:.0f} MiB")
                    except Exception as e:  # keep going: the report says what broke
                        failures.append(f"run {run_no}: {peer}: {one_line(e)}")
                        log(f"FAILED run {run_no}: {peer}: {e}")
                for name, fn in self.scenarios(peers, run_no):
                    try:
                        run[name] = fn()
                        log(f"run {run_no}: {name}: {json.dumps(run[name])}")
                    except Exception as e:
                        failures.append(f"run {run_no}: {name}: {one_line(e)}")
                        log(f"FAILED run {run_no}: {name}: {e}")
                self.results["runs"].append(run)
                self.save()
            if self.a.quality_sample > 0:
                try:
                    ok = [p for p in peers if all(p in r["peers"] for r in self.results["runs"][-1:])]
                    self.results["quality"] = self.quality(ok)
                    log(f"quality: scored {len(self.results['quality']['sample'])} photo(s)")
                except Exception as e:
                    failures.append(f"quality: {one_line(e)}")
                    log(f"FAILED quality: {e}")
            if self.a.long and self.a.imgspool:
                try:
                    self.results["long"] = self.long_run(self.a.long)
                except Exception as e:
                    failures.append(f"long: {one_line(e)}")
                    log(f"FAILED long: {e}")
        finally:
            self.stop_s3()
            if self.pg:
                self.pg.stop()
            self.results["failures"] = failures
            self.save()
        if not self.a.keep_work:
            shutil.rmtree(self.work, ignore_errors=True)
        return 1 if failures else 0

    @staticmethod
    def interleaved(names, run_no):
        """The run's order: in even runs each PAIRED peer (the baseline daemon, imgspool-http,
        the PostgreSQL peers) goes right before its reference (and the baseline's lone latency
        before the daemon's), so neither always runs on the other's warm caches."""
        names = list(names)
        if run_no % 2 == 0:
            for other, ref in PAIRED.items():
                if other in names and ref in names:
                    names.remove(other)
                    names.insert(names.index(ref), other)
        return names

    def scenarios(self, peers, run_no):
        """The imgspool scenarios beside the peer runs: (result key, function), in order. The lone
        latency comes with the batch peer (as it always has) or with the daemon peer."""
        if not self.a.imgspool:
            return []
        batch = "imgspool-batch" in peers
        out = []
        if batch and not (self.a.mode == "quick" and run_no > 1):
            out.append(("scaling", self.scaling))
        if batch or "imgspool-daemon" in peers:
            lone = [("lone_latency", self.lone_latency)]
            if BASELINE in peers:
                lone.append(("lone_latency_baseline", self.lone_latency_baseline))
                if run_no % 2 == 0:
                    lone.reverse()
            out += lone
        if batch:
            out.append(("batch_duplicates", self.batch_duplicates))
        return out

    def long_run(self, total):
        """RSS of the daemon after 200 and after `total` distinct photos (hand runs only). The
        RSS at one instant swings with what is in flight, so each mark also has the peak RSS
        over the 100 photos before it (the same stretch of steady work at both marks)."""
        sources = [f for f in self.files if sniff(f) in ("jpeg", "png")]
        work = os.path.join(self.work, "imgspool-long")
        d = isp.Daemon(self.a.imgspool, work, settle_ms=self.a.settle_ms, queue_max=64)
        marks, window_peaks = {}, {}
        window = 100
        try:
            done_names, next_i, outstanding = [], 0, set()
            t0 = time.monotonic()
            while len(done_names) < total:
                while next_i < total and len(outstanding) < 32:
                    src = sources[next_i % len(sources)]
                    name = f"long-{next_i:05d}-{os.path.basename(src)}"
                    d.stage_copy(None, name, data=isp.distinct_copy(src, next_i))
                    d.drop([name])
                    outstanding.add(name)
                    next_i += 1
                present = set(os.listdir(d.done)) & outstanding
                rss = d.rss_bytes()
                for mark in (200, total):
                    if mark - window <= len(done_names) < mark:
                        window_peaks[mark] = max(window_peaks.get(mark, 0), rss)
                for name in present:
                    outstanding.discard(name)
                    done_names.append(name)
                    if len(done_names) in (200, total):
                        marks[len(done_names)] = d.rss_bytes()
                        log(f"long: {len(done_names)} done, daemon RSS {marks[len(done_names)] / 2**20:.0f} MiB,"
                            f" peak over the last {window} {window_peaks.get(len(done_names), 0) / 2**20:.0f} MiB")
                if not present:
                    d._check_alive()
                    time.sleep(0.02)
            wall = time.monotonic() - t0
        finally:
            d.stop()
        return {"images": total, "wall_s": round(wall, 1), "rss_after_bytes": {str(k): v for k, v in marks.items()},
                "peak_rss_window": window, "peak_rss_before_bytes": {str(k): v for k, v in window_peaks.items()}}

    def save(self):
        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump(self.results, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mode", choices=("full", "quick", "smoke"), default="full")
    ap.add_argument("--limit", type=int, default=0, help="use only this many photos of the corpus")
    ap.add_argument("--imgspool", default="")
    ap.add_argument("--baseline", default="", help="another imgspool build: adds the imgspool-daemon-baseline peer")
    ap.add_argument("--peers", default="", help="default: all (in --smoke, all but NOT_IN_SMOKE)")
    ap.add_argument("--settle-ms", type=int, default=100)
    ap.add_argument("--lone", type=int, default=5, help="lone-JPEG latency samples")
    ap.add_argument("--quality-sample", type=int, default=5)
    ap.add_argument("--long", type=int, default=0, help="also feed the daemon this many distinct photos (RSS creep)")
    ap.add_argument("--keep-work", action="store_true")
    sys.exit(Bench(ap.parse_args()).main())


if __name__ == "__main__":
    main()
