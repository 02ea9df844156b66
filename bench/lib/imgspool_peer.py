"""imgspool as a benchmark peer: config files, batch runs, the daemon driven through its inbox,
and the outputs laid out like the other peers' (OUT/<photo stem>/<variant>.<ext>)."""
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time

from measure import measure
from proctree import PeakSampler, process_cpu_seconds, process_rss_bytes

LOSSLESS_PROFILE = """
[profiles.bench-lossless]
png_compression = 1
{variants}"""
LOSSLESS_VARIANT = """
[[profiles.bench-lossless.variant]]
name = "{name}"
width = {size}
height = {size}
fit = "{fit}"
formats = ["png"]
"""


def write_config(work, workers=0, settle_ms=100, store=None, profile="web", queue_max=64, http_port=None,
                 http_token="", database_url=None, node=None):
    """A config for one imgspool run under `work`; store: None (local, work/store) or S3 settings;
    http_port: serve the HTTP drop-in on 127.0.0.1:http_port into the "bench" spool;
    database_url: the job record on PostgreSQL; node: one of several nodes sharing work/spool and
    work/store, with its own state_dir (work/state-NODE) and config (work/NODE.toml)."""
    os.makedirs(work, exist_ok=True)
    lines = [
        "[daemon]",
        f'state_dir = "{work}/state{"-" + node if node else ""}"',
        f"workers = {workers}",
        f"settle_ms = {settle_ms}",
        "rescan_s = 30",
        f"queue_max = {queue_max}",
        "",
        # the reference corpus has 2048x2048 PNGs of up to ~12 MB, above the 10 MiB default
        "[limits]",
        "max_bytes = 67108864",
        "",
        "[[spool]]",
        'name = "bench"',
        f'root = "{work}/spool"',
        f'profile = "{profile}"',
        "",
        "[store]",
    ]
    if store is None:
        lines += ['kind = "local"', f'path = "{work}/store"']
    else:
        lines += ['kind = "s3"'] + [f'{k} = "{v}"' for k, v in store.items()]
    if node:
        lines[1:1] = [f'node = "{node}"']
    if database_url:
        lines += ["", "[database]", f'url = "{database_url}"']
    if http_port is not None:
        lines += ["", "[http]", "enabled = true", 'bind = "127.0.0.1"', f"port = {http_port}", 'spool = "bench"',
                  f'token = "{http_token}"']
    text = "\n".join(lines) + "\n"
    if profile == "bench-lossless":
        variants = "".join(LOSSLESS_VARIANT.format(name=n, size=s, fit="cover" if s else "inside")
                           for n, s in (("small", 150), ("medium", 400), ("large", 800), ("original", 0)))
        text += LOSSLESS_PROFILE.format(variants=variants)
    path = os.path.join(work, f"{node}.toml" if node else "imgspool.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


def check_batch_output(stdout_file, n):
    """The JSON lines of `imgspool process`: one per file, every one complete. Returns them."""
    records = []
    with open(stdout_file) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                records.append(json.loads(line))
    bad = [r for r in records if r.get("status") != "complete"]
    if len(records) != n or bad:
        raise RuntimeError(f"imgspool process: {len(records)} result lines for {n} files, "
                           f"{len(bad)} not complete: {bad[:2]}")
    return records


def run_batch(binary, files, work, workers=0, store=None, profile="web", out_dir=None):
    shutil.rmtree(work, ignore_errors=True)
    config = write_config(work, workers=workers, store=store, profile=profile)
    stdout, stderr = os.path.join(work, "stdout.jsonl"), os.path.join(work, "stderr.log")
    result = measure([binary, "process", "-c", config, *files], stdout, stderr)
    if result["rc"] != 0:
        raise RuntimeError(f"imgspool process exited {result['rc']}: {tail(stderr)}")
    records = check_batch_output(stdout, len(files))
    result["cache_hits"] = sum(1 for r in records if r.get("cache_hit"))
    if out_dir and store is None:
        lay_out(work, out_dir)
    return result


def sqlite_rows(work, sql):
    db = sqlite3.connect(f"file:{work}/state/imgspool.db?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def lay_out(work, out_dir, only=None, stems=None, query=None):
    """Hard-links each complete job's stored objects to out_dir/<source stem>/<variant>.<ext>
    (only the jobs whose source name is in `only`, when given). stems: {upload_id: stem} names the
    folders instead (HTTP uploads are stored under their upload id); other jobs are left out.
    query: runs SQL on the job record (default: SQLite in work/state)."""
    query = query or (lambda sql: sqlite_rows(work, sql))
    rows = query("SELECT id, source_name FROM upload_jobs WHERE status = 'complete'")
    os.makedirs(out_dir, exist_ok=True)
    for upload_id, source_name in rows:
        if only is not None and source_name not in only:
            continue
        if stems is not None and upload_id not in stems:
            continue
        stored = os.path.join(work, "store", "images", upload_id)
        if not os.path.isdir(stored):
            raise RuntimeError(f"job {upload_id} ({source_name}) is complete but {stored} is missing")
        stem = stems[upload_id] if stems is not None else os.path.splitext(os.path.basename(source_name))[0]
        target = os.path.join(out_dir, stem)
        os.makedirs(target, exist_ok=True)
        for name in os.listdir(stored):
            os.link(os.path.join(stored, name), os.path.join(target, name))


def tail(path, n=800):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


class Daemon:
    """`imgspool run` on a fresh work folder, with its inbox/, done/ and failed/ watched; with
    http_port, also serving the HTTP drop-in there (uploads end in done/http/<upload_id>.<ext>).
    database_url: the job record on PostgreSQL, read through `query` (SQL -> rows); node: a node
    of several in the same work folder (shared spool and store; fresh=False for all but the first)."""

    def __init__(self, binary, work, workers=0, settle_ms=100, queue_max=64, http_port=None, http_token="",
                 database_url=None, node=None, query=None, fresh=True):
        if fresh:
            shutil.rmtree(work, ignore_errors=True)
        self.work = work
        self.http_port = http_port
        self.query = query or (lambda sql: sqlite_rows(work, sql))
        self.config = write_config(work, workers=workers, settle_ms=settle_ms, queue_max=queue_max,
                                   http_port=http_port, http_token=http_token, database_url=database_url,
                                   node=node)
        self.root = os.path.join(work, "spool")
        self.stage = os.path.join(work, "stage")  # same file system as inbox/: drops are renames
        os.makedirs(self.stage, exist_ok=True)
        self.stderr = os.path.join(work, f"{node}.log" if node else "daemon.log")
        env = {k: v for k, v in os.environ.items() if k != "IMGSPOOL_HTTP_TOKEN"}  # the config's token
        with open(self.stderr, "wb") as err:
            self.proc = subprocess.Popen([binary, "run", "-c", self.config], stdout=err, stderr=err,
                                         start_new_session=True, env=env)
        self.sampler = PeakSampler(self.proc.pid)
        self.sampler.start()
        self.inbox = os.path.join(self.root, "inbox")
        self.done = os.path.join(self.root, "done")
        self.failed = os.path.join(self.root, "failed")
        try:
            self._wait_started(http_port)
        except BaseException:
            self.stop()  # a daemon that did not come up is not left running
            raise
        time.sleep(1.0)  # let it finish its start-up scan and set its watches

    def _wait_started(self, http_port):
        deadline = time.monotonic() + 30
        while not (os.path.isdir(self.inbox) and os.path.isdir(self.done)):
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"imgspool run: no inbox/ after 30 s: {tail(self.stderr)}")
            time.sleep(0.05)
        while http_port is not None and not self._listening():
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"imgspool run: nothing listens on 127.0.0.1:{http_port} after 30 s: "
                                   f"{tail(self.stderr)}")
            time.sleep(0.05)

    def _listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.http_port), timeout=1).close()
            return True
        except OSError:
            return False

    def _check_alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"imgspool run exited {self.proc.returncode}: {tail(self.stderr)}")

    def stage_copy(self, src, name, data=None):
        path = os.path.join(self.stage, name)
        if data is None:
            shutil.copyfile(src, path)
        else:
            with open(path, "wb") as f:
                f.write(data)
        return name

    def drop(self, names):
        """Renames staged files into inbox/; returns {name: drop time}."""
        times = {}
        for name in names:
            times[name] = time.monotonic()
            os.rename(os.path.join(self.stage, name), os.path.join(self.inbox, name))
        return times

    def wait_done(self, pending, timeout, on_done=None):
        """Polls done/ until every name in `pending` is there; returns {name: done time}."""
        pending, finished = set(pending), {}
        deadline = time.monotonic() + timeout
        while pending:
            now = time.monotonic()
            present = set(os.listdir(self.done))
            for name in pending & present:
                finished[name] = now
                if on_done:
                    on_done(len(finished))
            pending -= present
            if not pending:
                break
            self.check_failed()
            self._check_alive()
            if now > deadline:
                raise RuntimeError(f"imgspool run: {len(pending)} file(s) not done after {timeout:.0f} s")
            time.sleep(0.005)
        return finished

    def check_failed(self, sub=""):
        """Raises if a file (other than an error note) is in failed/ (or failed/<sub>/)."""
        folder = os.path.join(self.failed, sub)
        failed = [f for f in os.listdir(folder) if not f.endswith(".error.json")] if os.path.isdir(folder) else []
        if failed:
            raise RuntimeError(f"imgspool run: {len(failed)} file(s) in {folder}, e.g. "
                               f"{tail(os.path.join(folder, failed[0] + '.error.json'), 400)}")

    def done_stems(self, sub):
        """The names in done/<sub>/ without their extension (HTTP uploads: their upload ids)."""
        folder = os.path.join(self.done, sub)
        return {name.split(".", 1)[0] for name in os.listdir(folder)} if os.path.isdir(folder) else set()

    def job_statuses(self, upload_ids):
        rows = self.query("SELECT id, status FROM upload_jobs")
        wanted = set(upload_ids)
        return {i: s for i, s in rows if i in wanted}

    def cpu_seconds(self):
        return process_cpu_seconds(self.proc.pid)

    def rss_bytes(self):
        return process_rss_bytes(self.proc.pid)

    def cache_hits(self):
        return int(self.query("SELECT count(*) FROM upload_jobs WHERE status = 'complete' AND cache_hit")[0][0])

    def stop(self):
        """SIGTERM, as an operator would; returns its exit code (SIGKILL after 60 s)."""
        self.sampler.stop()
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise RuntimeError("imgspool run did not stop within 60 s of SIGTERM")
        return self.proc.returncode


def distinct_copy(path, tag):
    """The file's bytes with a marker added that changes its hash but not its pixels
    (a JPEG COM segment or a PNG tEXt chunk); None for other formats."""
    import struct
    import zlib
    with open(path, "rb") as f:
        data = f.read()
    text = f"imgspool-bench copy {tag}".encode()
    if data[:2] == b"\xff\xd8":
        return data[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + data[2:]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        body = b"Comment\0" + text
        chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
        return data[:33] + chunk + data[33:]  # after the signature and IHDR
    return None
