#!/bin/bash
# Checks packaging/imgspool.service with systemd's own tools, without systemd running:
#   verify   UNIT BINARY   systemd-analyze verify passes without a single warning. verify wants
#                          every Exec*= binary and the units it depends on, so it runs in a
#                          scratch root holding the unit as /etc/systemd/system/imgspool.service,
#                          the built binary as /usr/bin/imgspool, the host's /bin/kill and the
#                          host's unit files. Documentation= man pages are not looked up (they
#                          exist once the package is installed).
#   security UNIT MAX      systemd-analyze security --offline=true rates the unit's exposure at
#                          MAX or lower.
set -euo pipefail

mode=$1
unit=$2

verify() {
    local binary=$1
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root/usr/bin" "$root/usr/lib/systemd" "$root/etc/systemd/system"
    ln -s usr/bin "$root/bin"
    ln -s usr/lib "$root/lib"
    cp "$binary" "$root/usr/bin/imgspool"
    cp /bin/kill "$root/usr/bin/kill"  # ExecReload's
    cp -a /lib/systemd/system "$root/usr/lib/systemd/"
    cp "$unit" "$root/etc/systemd/system/imgspool.service"
    "$root/usr/bin/imgspool" --version >/dev/null  # the copy is a working binary
    local out
    if ! out=$(systemd-analyze verify --man=no --root="$root" \
        "$root/etc/systemd/system/imgspool.service" 2>&1); then
        printf 'systemd-analyze verify failed:\n%s\n' "$out"
        exit 1
    fi
    if [ -n "$out" ]; then
        printf 'systemd-analyze verify warned:\n%s\n' "$out"
        exit 1
    fi
    echo "systemd-analyze verify: clean"
}

security() {
    local max=$1 out level
    out=$(systemd-analyze security --no-pager --offline=true "$unit" 2>&1) || true
    level=$(sed -n 's/.*Overall exposure level for imgspool\.service: \([0-9.]*\).*/\1/p' <<<"$out")
    if [ -z "$level" ]; then
        printf 'no "Overall exposure level" in:\n%s\n' "$out"
        exit 1
    fi
    # The items still counted against the unit, for the log.
    grep '✗' <<<"$out" || true
    echo "exposure level: $level (at most $max)"
    awk -v l="$level" -v m="$max" 'BEGIN { exit !(l + 0 <= m + 0) }'
}

case $mode in
    verify) verify "$3" ;;
    security) security "$3" ;;
    *) echo "usage: $0 verify UNIT BINARY | security UNIT MAX" >&2; exit 2 ;;
esac
