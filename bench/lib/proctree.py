"""Resident memory of a process tree, polled from /proc (stdlib only).

A tree is every process in the session that the measured command was started in
(start_new_session=True), so children of children count even after their parent exited.
"""
import os
import threading
import time

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read().decode("ascii", "replace")
    return data[data.rindex(")") + 2:].split()  # fields from 3 (state) on


def session_members(sid):
    """Pids of the live processes in session `sid` (one pass over /proc)."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if int(stat_fields(name)[3]) == sid:  # field 6: session
                members.append(int(name))
        except (OSError, ValueError, IndexError):
            continue  # exited while we looked
    return members


def session_rss_bytes(sid):
    return sum(process_rss_bytes(pid) for pid in session_members(sid))


def process_rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except OSError:
        return 0


def process_cpu_seconds(pid):
    """user + system CPU of one live process (all its threads), from /proc/PID/stat."""
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15: utime, stime


class PeakSampler(threading.Thread):
    """Polls the session's summed RSS every `interval` seconds and keeps the peak. Walking all of
    /proc costs milliseconds, so new members are looked for every `discover` seconds and only the
    known ones are read in between (a child living less than that may be missed)."""

    def __init__(self, sid, interval=0.02, discover=0.25):
        super().__init__(daemon=True)
        self.sid = sid
        self.interval = interval
        self.discover = discover
        self.peak = 0
        self.last = 0
        self._halt = threading.Event()

    def run(self):
        members, next_discovery = [], 0.0
        while not self._halt.is_set():
            now = time.monotonic()
            if now >= next_discovery:
                members = session_members(self.sid)
                next_discovery = now + self.discover
            self.last = sum(process_rss_bytes(pid) for pid in members)
            self.peak = max(self.peak, self.last)
            self._halt.wait(self.interval)

    def reset_peak(self):
        self.peak = self.last

    def stop(self):
        self._halt.set()
        self.join()
        return self.peak


def monotonic():
    return time.monotonic()
