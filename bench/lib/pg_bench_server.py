"""The PostgreSQL server of the PostgreSQL peers: one per bench run, started and stopped by the
tests' own tests/pg/pg_server.sh (initdb + pg_ctl in /tmp/imgspool-pg-XXXXXX, run as `postgres`
when bench runs as root, a unix socket and 127.0.0.1) with PostgreSQL's durability defaults
(IMGSPOOL_PG_DURABLE=1: fsync, synchronous_commit and full_page_writes on), and a fresh
database per peer run. Queries go through psql as the superuser over the socket."""
import glob
import os
import shutil
import subprocess

from proctree import process_cpu_seconds, stat_fields

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "tests", "pg", "pg_server.sh")
SEP = "\x1f"


def server_bindir():
    """Debian's PostgreSQL 15 first (what the tests use), else the newest installed; None if none."""
    candidates = ["/usr/lib/postgresql/15/bin"] + sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for d in candidates:
        if os.path.isfile(os.path.join(d, "initdb")) and os.path.isfile(os.path.join(d, "pg_ctl")):
            return d
    return None


def available():
    return server_bindir() is not None and shutil.which("psql") is not None


def children(parent):
    """Pids of the live processes whose parent is `parent` (the postmaster's backends)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if int(stat_fields(name)[1]) == parent:  # field 4: ppid
                    found.append(int(name))
            except (OSError, ValueError, IndexError):
                continue  # exited while we looked
    return found


class PgServer:
    def __init__(self, folder):
        bindir = server_bindir()
        if bindir is None:
            raise RuntimeError("no PostgreSQL server programs (apt-get install postgresql-15)")
        os.makedirs(folder, exist_ok=True)
        self.state = os.path.join(folder, "pg_server.env")
        env = {**os.environ, "IMGSPOOL_PG_DURABLE": "1", "IMGSPOOL_TEST_PG_WATCH_PID": str(os.getpid())}
        proc = subprocess.run(["bash", SCRIPT, "start", self.state, bindir], env=env, capture_output=True,
                              text=True, timeout=180)
        if proc.returncode:
            raise RuntimeError(f"pg_server.sh start failed: {proc.stderr.strip()[-800:]}")
        self.facts = {}
        with open(self.state) as f:
            for line in f:
                key, _, value = line.rstrip("\n").partition("=")
                self.facts[key] = value
        self.dbs = 0

    def query(self, sql, db="postgres"):
        """Rows of `sql` as tuples of strings (booleans come as "t"/"f")."""
        f = self.facts
        proc = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", SEP, "-v", "ON_ERROR_STOP=1",
                               "-h", f["PG_SOCKET_DIR"], "-p", f["PG_PORT"], "-U", f["PG_ADMIN_USER"], "-d", db,
                               "-c", sql], capture_output=True, text=True, timeout=120)
        if proc.returncode:
            raise RuntimeError(f"psql: {sql[:80]}: {proc.stderr.strip()}")
        return [tuple(line.split(SEP)) for line in proc.stdout.splitlines() if line]

    def fresh_database(self, hint):
        """A new, empty database owned by the server's `imgspool` role; returns (name, TCP URL)."""
        self.dbs += 1
        name = f"bench_{hint.replace('-', '_')}_{self.dbs}"
        self.query(f"DROP DATABASE IF EXISTS {name}")
        self.query(f"CREATE DATABASE {name} OWNER {self.facts['PG_USER']} TEMPLATE template0 ENCODING 'UTF8'")
        f = self.facts
        return name, f"postgresql://{f['PG_USER']}:{f['PG_PASSWORD']}@{f['PG_HOST']}:{f['PG_PORT']}/{name}"

    def drop_database(self, name):
        self.query(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def cpu_seconds(self):
        """user + system CPU of the server's live processes (postmaster and backends: the daemons'
        pooled connections live as long as the daemons, so a difference over a drop is theirs)."""
        pid_file = os.path.join(self.facts["PG_DATA"], "postmaster.pid")
        with open(pid_file) as f:
            postmaster = int(f.readline())
        total = 0.0
        for pid in [postmaster] + children(postmaster):
            try:
                total += process_cpu_seconds(pid)
            except OSError:
                pass  # a backend that exited meanwhile
        return total

    def stop(self):
        subprocess.run(["bash", SCRIPT, "stop", self.state], capture_output=True, timeout=120)
