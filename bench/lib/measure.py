#!/usr/bin/env python3
"""measure.py --json OUT [--stdout FILE] [--stderr FILE] -- CMD ARG...

Runs CMD in a session of its own and writes to OUT, as JSON: wall_s, cpu_s (user + system of
the whole process tree, from wait4), user_s, sys_s, peak_rss_bytes (the tree's summed RSS,
polled every 20 ms), max_single_rss_bytes (ru_maxrss of the largest process) and rc.
Exits with CMD's exit code.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proctree import PeakSampler  # noqa: E402


def measure(cmd, stdout=None, stderr=None, env=None):
    out = open(stdout, "wb") if stdout else subprocess.DEVNULL
    err = open(stderr, "wb") if stderr else None
    try:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, start_new_session=True, env=env)
        sampler = PeakSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        peak = sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if stdout:
            out.close()
        if err:
            err.close()
    return {
        "wall_s": round(wall, 3),
        "user_s": round(usage.ru_utime, 3),
        "sys_s": round(usage.ru_stime, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_bytes": peak,
        "max_single_rss_bytes": usage.ru_maxrss * 1024,
        "rc": proc.returncode,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", required=True)
    ap.add_argument("--stdout")
    ap.add_argument("--stderr")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        ap.error("no command")
    result = measure(cmd, args.stdout, args.stderr)
    result["cmd"] = cmd
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
    sys.exit(result["rc"] if result["rc"] >= 0 else 128 - result["rc"])


if __name__ == "__main__":
    main()
