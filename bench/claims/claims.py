#!/usr/bin/env python3
"""claims.py CLAIM_RATE OUTDIR [SECONDS]: claim_rate on SQLite (in OUTDIR) and on a PostgreSQL
server of its own (tests/pg/pg_server.sh with PostgreSQL's durability defaults, as the bench
peers use), 1, 3 and 8 threads; writes OUTDIR/claims.json and prints a markdown table."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import pg_bench_server  # noqa: E402


def run(binary, backend, where, seconds):
    proc = subprocess.run([binary, backend, where, str(seconds), "1", "3", "8"], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"claim_rate {backend}: {proc.stderr.strip()}")
    return [json.loads(line) for line in proc.stdout.splitlines()]


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: claims.py CLAIM_RATE OUTDIR [SECONDS]")
    binary, out = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    seconds = sys.argv[3] if len(sys.argv) == 4 else "5"
    os.makedirs(out, exist_ok=True)
    rows = run(binary, "sqlite", out, seconds)
    pg = pg_bench_server.PgServer(os.path.join(out, "pg"))
    try:
        name, url = pg.fresh_database("claims")
        rows += run(binary, "postgresql", url, seconds)
    finally:
        pg.stop()
    meta = {"load_at_end": os.getloadavg(), "seconds": float(seconds)}
    with open(os.path.join(out, "claims.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print("| backend | threads | claims/s | jobs/s |\n|---|---:|---:|---:|")
    for backend in ("sqlite", "postgresql"):
        for threads in (1, 3, 8):
            got = {r["mode"]: r["per_s"] for r in rows if r["backend"] == backend and r["threads"] == threads}
            print(f"| {backend} | {threads} | {got['claim']:.0f} | {got['job']:.0f} |")
    print(f"\n(load average at the end: {', '.join(f'{x:.1f}' for x in meta['load_at_end'])})")


if __name__ == "__main__":
    main()
