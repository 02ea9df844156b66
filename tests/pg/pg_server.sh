#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: the `pg_server` CTest fixture and pg_test's outage
# helpers call this script.
#   pg_server.sh start STATE_FILE BINDIR   initdb + start in a new /tmp/imgspool-pg-XXXXXX, write
#                                          STATE_FILE (KEY=VALUE lines, mode 0600)
#   pg_server.sh stop STATE_FILE           stop the server and remove its folder and STATE_FILE
#   pg_server.sh stop-server|start-server|restart-server STATE_FILE   outages; the folder stays
#
# The server listens on a unix socket in its folder (trust: the folder is 0700, only the owner
# reaches it) and on 127.0.0.1 at a free port (scram-sha-256), with a superuser `postgres` and
# a role `imgspool` that has a random password and no special rights.
#
# PostgreSQL refuses to run as root, and the tests run as root in CI: then the folder belongs to
# `postgres` (or IMGSPOOL_TEST_PG_USER) and every server command runs through runuser.
#
# IMGSPOOL_PG_DURABLE=1 keeps PostgreSQL's durability defaults (fsync, synchronous_commit,
# full_page_writes on); without it they are off, which only tests can afford.
#
# Nothing may outlive the test run: `start` sweeps folders of earlier runs whose server is gone,
# stops the server of a leftover STATE_FILE, and leaves a watchdog that stops the server and
# removes the folder when the process that ran `start` (ctest) exits without the cleanup test
# having run, e.g. after Ctrl-C.
set -euo pipefail

command=${1:?usage: pg_server.sh start|stop|stop-server|start-server|restart-server STATE_FILE [BINDIR]}
state=${2:?STATE_FILE missing}

PG_DIR="" PG_RUN_AS="" PG_BINDIR=""

# Runs a server program as the folder's owner, from a folder that owner may enter, without fd 9
# (see start_failed): a server holding it would keep ctest waiting for the test's output.
run_pg() {
    if [[ -n $PG_RUN_AS ]]; then
        (cd "$PG_DIR" && runuser -u "$PG_RUN_AS" -- "$@") 9>&-
    else
        (cd "$PG_DIR" && "$@") 9>&-
    fi
}

server_running() {  # $1: data folder
    local pid
    [[ -f $1/postmaster.pid ]] || return 1
    pid=$(head -n 1 "$1/postmaster.pid")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

stop_cluster() {  # stops the server in PG_DIR (fast, then immediate, then SIGKILL) if it runs
    local data=$PG_DIR/data
    server_running "$data" || return 0
    run_pg "$PG_BINDIR/pg_ctl" -D "$data" -m fast -w -t 20 stop >/dev/null 2>&1 ||
        run_pg "$PG_BINDIR/pg_ctl" -D "$data" -m immediate -w -t 10 stop >/dev/null 2>&1 ||
        kill -KILL "$(head -n 1 "$data/postmaster.pid")" 2>/dev/null || true
}

remove_cluster() {
    stop_cluster
    [[ $PG_DIR == /tmp/imgspool-pg-* ]] && rm -rf -- "$PG_DIR"
    return 0
}

load_state() {
    [[ -f $state ]] || return 1
    # shellcheck disable=SC1090  # our own KEY=VALUE file; values never hold spaces or quotes
    source "$state"
}

start_server() {  # pg_ctl start; the server's output goes to server.log in its folder
    run_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start \
        </dev/null >>"$PG_DIR/pg_ctl.log" 2>&1
}

# Folders of killed runs: no server and no watchdog runs for them (a live watchdog means a test
# run that may have stopped its server on purpose), and they are older than any setup in progress.
sweep_stale_folders() {
    local dir watchdog
    while IFS= read -r dir; do
        server_running "$dir/data" && continue
        watchdog=$(cat "$dir/watchdog.pid" 2>/dev/null || true)
        [[ -n $watchdog ]] && kill -0 "$watchdog" 2>/dev/null && continue
        rm -rf -- "$dir"
    done < <(find /tmp -maxdepth 1 -name 'imgspool-pg-*' -type d -mmin +5 2>/dev/null)
}

# fd 9 is the script's stderr: set -e may exit while a command's output goes to a log file.
start_failed() {
    {
        echo "pg_server: start failed; logs of $PG_DIR:"
        tail -n 20 "$PG_DIR"/*.log 2>/dev/null || true
    } >&9 2>&9
    remove_cluster >/dev/null 2>&1
}

start() {
    local bindir=${3:?BINDIR missing}
    if load_state; then remove_cluster; fi
    rm -f -- "$state"
    sweep_stale_folders

    PG_BINDIR=$bindir
    PG_DIR=$(mktemp -d /tmp/imgspool-pg-XXXXXX)
    chmod 700 "$PG_DIR"
    # Any failure from here on (set -e) leaves nothing behind but the logs on stderr.
    exec 9>&2
    trap start_failed EXIT
    if [[ $(id -u) -eq 0 ]]; then
        PG_RUN_AS=${IMGSPOOL_TEST_PG_USER:-postgres}
        chown "$PG_RUN_AS:" "$PG_DIR"
    fi

    # --no-sync: a test cluster is thrown away, so durability buys nothing and costs seconds.
    run_pg "$PG_BINDIR/initdb" -D "$PG_DIR/data" -U postgres -A trust --auth-host=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 --no-sync --no-instructions >"$PG_DIR/initdb.log" 2>&1
    cat >>"$PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_DIR'
max_connections = 300
logging_collector = off
log_min_messages = warning
CONF
    # fsync, synchronous_commit and full_page_writes off for the same reason: only speed matters
    # to the tests. The benchmark (bench/lib/pg_bench_server.py) sets IMGSPOOL_PG_DURABLE=1 and
    # keeps PostgreSQL's defaults, as a production server would run.
    if [[ ${IMGSPOOL_PG_DURABLE:-0} != 1 ]]; then
        printf '%s\n' "fsync = off" "synchronous_commit = off" "full_page_writes = off" \
            >>"$PG_DIR/data/postgresql.conf"
    fi

    # A port nothing listens on; another process may take it first, so a failed bind tries again.
    local port tries
    for tries in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 30000))
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
        echo "port = $port" >>"$PG_DIR/data/postgresql.conf"
        if start_server; then break; fi
        grep -q "could not bind\|could not create any TCP/IP sockets" "$PG_DIR/server.log" || false
        [[ $tries -lt 5 ]] || false
    done

    local password
    password=$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
    "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$port" -U postgres -d postgres \
        -c "CREATE ROLE imgspool LOGIN PASSWORD '$password'" >"$PG_DIR/psql.log" 2>&1

    # The watchdog belongs to no test: its own session, no inherited output (ctest would wait).
    setsid bash "$0" watch "$state" "$PG_DIR" "${IMGSPOOL_TEST_PG_WATCH_PID:-$PPID}" \
        "$PG_BINDIR" "$PG_RUN_AS" </dev/null >/dev/null 2>&1 9>&- &

    local tmp=$state.tmp
    (
        umask 077
        printf '%s=%s\n' PG_DIR "$PG_DIR" PG_DATA "$PG_DIR/data" PG_SOCKET_DIR "$PG_DIR" \
            PG_HOST 127.0.0.1 PG_PORT "$port" PG_USER imgspool PG_PASSWORD "$password" \
            PG_ADMIN_USER postgres PG_BINDIR "$PG_BINDIR" PG_RUN_AS "$PG_RUN_AS" >"$tmp"
    )
    mv -f -- "$tmp" "$state"
    trap - EXIT
    echo "pg_server: PostgreSQL in $PG_DIR, 127.0.0.1:$port and the socket in that folder"
}

# watch STATE DIR PID BINDIR RUN_AS: stops the server in DIR and removes DIR once PID has exited,
# unless the cleanup test removed DIR first.
watch() {
    local dir=${3:?} watch_pid=${4:?}
    [[ $watch_pid -gt 1 ]] || exit 0
    echo $$ >"$dir/watchdog.pid"
    while kill -0 "$watch_pid" 2>/dev/null && [[ -d $dir ]]; do sleep 1; done
    [[ -d $dir ]] || exit 0
    PG_DIR=$dir PG_BINDIR=${5:?} PG_RUN_AS=${6:-}
    remove_cluster
    # The state file may describe a newer server by now: only ours is removed.
    if grep -qx "PG_DIR=$dir" "$state" 2>/dev/null; then rm -f -- "$state"; fi
}

case $command in
    start) start "$@" ;;
    stop)
        # The folder holds a database per test (hundreds of MB): removing it can take minutes on
        # a busy disk, so the server is stopped here and the folder removed in the background,
        # detached (its own session, no inherited output: ctest would wait for it).
        if load_state; then
            stop_cluster
            if [[ $PG_DIR == /tmp/imgspool-pg-* ]]; then
                setsid rm -rf -- "$PG_DIR" </dev/null >/dev/null 2>&1 9>&- &
            fi
        fi
        rm -f -- "$state"
        ;;
    stop-server) load_state && stop_cluster ;;
    start-server) load_state && start_server ;;
    restart-server) load_state && stop_cluster && start_server ;;
    watch) watch "$@" ;;
    *)
        echo "pg_server.sh: unknown command $command" >&2
        exit 2
        ;;
esac
