#!/bin/bash
# The daemon under packaging/imgspool.service's restrictions, as far as they can be had without
# systemd as PID 1: as an unprivileged user with only the unit's AmbientCapabilities=
# (setpriv), under its SystemCallFilter=, RestrictAddressFamilies=, MemoryDenyWriteExecute= and
# NoNewPrivileges= (unit_sandbox.py). It must render JPEG, PNG and WebP with the web profile
# (libvips JITs code through orc: MemoryDenyWriteExecute must not break it), take read leases
# on files of another owner (CAP_LEASE), and stop cleanly on SIGTERM.
# Usage: check_sandbox.sh UNIT BINARY   (as root; exit 77 = skipped otherwise)
set -euo pipefail
unit=$1
binary=$2
here=$(dirname "$0")
user=nobody
group=nogroup

if [ "$(id -u)" != 0 ]; then
    echo "skipped: needs root to switch to $user"
    exit 77
fi
caps=$(sed -n 's/^AmbientCapabilities=//p' "$unit" | tr 'A-Z' 'a-z' | sed 's/cap_//g; s/ /,+/g')
[ -n "$caps" ] || { echo "no AmbientCapabilities= in $unit"; exit 1; }

dir=$(mktemp -d)
pid=""
cleanup() {
    [ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
chmod 755 "$dir"
mkdir -p "$dir/in" "$dir/spool/inbox" "$dir/state" "$dir/objects"
# A noisy 2000x1500 RGB picture in the three formats imgspool takes.
vips gaussnoise "$dir/noise.v" 2000 1500 --mean 128 --sigma 40
vips bandjoin "$dir/noise.v $dir/noise.v $dir/noise.v" "$dir/rgb.v"
vips cast "$dir/rgb.v" "$dir/rgbu.v" uchar
for f in a.jpg b.png c.webp; do vips copy "$dir/rgbu.v" "$dir/in/$f"; done
vips flip "$dir/rgbu.v" "$dir/in/d.jpg" horizontal  # other bytes: rendered, not a cache hit
chmod 644 "$dir"/in/*
cat >"$dir/imgspool.toml" <<TOML
[daemon]
state_dir = "$dir/state"
workers = 2
settle_ms = 300
rescan_s = 1
[[spool]]
name = "default"
root = "$dir/spool"
profile = "web"
[store]
kind = "local"
path = "$dir/objects"
public_base_url = "https://cdn.example.test"
TOML
chown -R "$user:$group" "$dir/spool" "$dir/state" "$dir/objects"

# Called in a subshell, which it becomes: so $! of a background call is the daemon's pid.
sandboxed() {
    exec setpriv --reuid="$user" --regid="$group" --clear-groups --inh-caps=-all,+"$caps" \
        --ambient-caps=-all,+"$caps" --bounding-set=-all,+"$caps" --no-new-privs \
        env HOME="$dir/state" /usr/bin/python3 "$here/unit_sandbox.py" "$unit" "$@"
}

# 1. One-shot renders of the three formats.
if ! (sandboxed "$binary" process -c "$dir/imgspool.toml" "$dir/in/a.jpg" "$dir/in/b.png" \
    "$dir/in/c.webp") >"$dir/process.out" 2>"$dir/process.err"; then
    echo "imgspool process failed under the sandbox:"
    tail -20 "$dir/process.err"
    exit 1
fi
done_count=$(grep -c '"status":"complete"' "$dir/process.out" || true)
[ "$done_count" = 3 ] || { echo "expected 3 complete renders:"; cat "$dir/process.out"; exit 1; }
echo "process: 3 renders complete"

# 2. The daemon renders a drop owned by root (not by the daemon's user) needs CAP_LEASE to be leased.
(sandboxed "$binary" run -c "$dir/imgspool.toml") 2>"$dir/run.err" &
pid=$!
for _ in $(seq 100); do grep -q '"watching inboxes"' "$dir/run.err" && break; sleep 0.1; done
cp "$dir/in/d.jpg" "$dir/spool/inbox/dropped.jpg"
for _ in $(seq 300); do [ -e "$dir/spool/done/dropped.jpg" ] && break; sleep 0.1; done
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[ -e "$dir/spool/done/dropped.jpg" ] || { echo "the drop was not processed:"; tail -20 "$dir/run.err"; exit 1; }
if grep -q 'no CAP_LEASE' "$dir/run.err"; then
    echo "the daemon could not take leases:"
    grep 'CAP_LEASE' "$dir/run.err"
    exit 1
fi
[ "$status" = 0 ] || { echo "imgspool run exited $status on SIGTERM"; tail -20 "$dir/run.err"; exit 1; }
if grep -q '"level":"error"' "$dir/process.err" "$dir/run.err"; then
    echo "errors logged under the sandbox:"
    grep -h '"level":"error"' "$dir/process.err" "$dir/run.err"
    exit 1
fi
echo "run: drop processed with a read lease, exit 0 on SIGTERM"
