#!/usr/bin/env bash
# postgres.sh - run a test against its own private PostgreSQL server.
#
#   postgres.sh run <cmd> [args...]
#
# "run" creates, for this one command, a throw-away PostgreSQL cluster:
#   - initdb into a fresh /tmp/el-pg.XXXXXX/data (UTF8, locale C.UTF-8 unless
#     EL_PG_LOCALE says otherwise), owned by and run as the postgres user when
#     we are root (PostgreSQL refuses to run as root); as any other user it
#     runs as that user;
#   - trust authentication, for local test use only: it listens on 127.0.0.1
#     alone, on a random free port, with its unix socket inside the data dir
#     (the packaged service may hold 5432 and /var/run/postgresql);
#   - durability off (fsync, synchronous_commit, full_page_writes): the data
#     is deleted at the end anyway;
#   - a database echolink_test;
# and runs cmd with
#   EL_TEST_STORE_URL=postgres://postgres@127.0.0.1:<port>/echolink_test
#   EL_PG_ADMIN_URL=postgres://postgres@127.0.0.1:<port>/postgres (to create
#                    more databases)   EL_PG_PORT=<port>   EL_PG_BIN=<bin dir>
# PostgreSQL is stopped and the directory removed on exit, INT and TERM; the
# server and cmd also die with this script when it is SIGKILLed (setpriv
# --pdeathsig; a CTest timeout), and the directory is then left in /tmp.
#
# Environment: EL_PG_BIN (default /usr/lib/postgresql/15/bin), EL_PG_LOCALE.
# Exit codes: the command's own; 77 (CTest SKIP_RETURN_CODE) when the
# PostgreSQL binaries, the postgres user (as root) or setpriv are missing;
# 1 on a setup error; 128+signal when interrupted.
set -u

PG_BIN=${EL_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_LOCALE=${EL_PG_LOCALE:-C.UTF-8}
DB_NAME=echolink_test
START_TRIES=5        # ports tried (another process may take ours first)
READY_WAIT_S=30      # per start
STOP_WAIT_S=10

skip() {
    echo "postgres.sh: skipped: $*" >&2
    exit 77
}

die() {
    echo "postgres.sh: $*" >&2
    exit 1
}

DIR=
SERVER=  # pid of the process chain that runs postgres
CHILD=
AS=()    # runs a command as the cluster's owner

# shellcheck disable=SC2317 # called through trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM "$CHILD" 2>/dev/null || true
        sleep 0.2
        kill -KILL "$CHILD" 2>/dev/null || true
    fi
    stop_server
    [ -n "$DIR" ] && rm -rf "$DIR"
    exit "$rc"
}

# Immediate shutdown (SIGQUIT to the postmaster): nothing needs to survive.
stop_server() {
    [ -n "$SERVER" ] || return 0
    local pm
    pm=$(head -n1 "$DIR/data/postmaster.pid" 2>/dev/null || true)
    [ -n "$pm" ] && kill -QUIT "$pm" 2>/dev/null
    local i
    for ((i = 0; i < STOP_WAIT_S * 10; i++)); do
        kill -0 "$SERVER" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVER" 2>/dev/null || true
    [ -n "$pm" ] && kill -KILL "$pm" 2>/dev/null
    wait "$SERVER" 2>/dev/null || true
    SERVER=
}

free_port() {
    local port i
    for ((i = 0; i < 50; i++)); do
        port=$((20000 + RANDOM % 40000))
        # Nothing listens there on loopback (a refused connect).
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

init_cluster() {
    DIR=$(mktemp -d /tmp/el-pg.XXXXXX) || die "mktemp failed"
    chmod 755 "$DIR"
    mkdir "$DIR/data" || die "mkdir failed"
    [ "$(id -u)" = 0 ] && chown postgres: "$DIR/data"
    chmod 700 "$DIR/data"
    "${AS[@]}" "$PG_BIN/initdb" -D "$DIR/data" -U postgres --auth=trust \
        --encoding=UTF8 --locale="$PG_LOCALE" --no-sync >"$DIR/initdb.log" 2>&1 ||
        die "initdb failed: $(tail -n 5 "$DIR/initdb.log")"
}

# Starts postgres on `port`; returns 0 once it accepts connections, 1 when
# it exited (the port was taken) or never became ready.
start_server() {
    local port=$1 i
    # Outer setpriv: runuser dies with us; inner: postgres dies with runuser.
    setpriv --pdeathsig KILL "${AS[@]}" setpriv --pdeathsig KILL \
        "$PG_BIN/postgres" -D "$DIR/data" -p "$port" -c listen_addresses=127.0.0.1 \
        -c unix_socket_directories="$DIR/data" -c fsync=off -c synchronous_commit=off \
        -c full_page_writes=off -c max_connections=200 \
        >>"$DIR/postgres.log" 2>&1 </dev/null &
    SERVER=$!
    for ((i = 0; i < READY_WAIT_S * 10; i++)); do
        kill -0 "$SERVER" 2>/dev/null || break
        if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
            return 0
        fi
        sleep 0.1
    done
    stop_server
    return 1
}

cmd_run() {
    [ $# -ge 1 ] || die "usage: postgres.sh run <cmd> [args...]"
    local b
    for b in initdb postgres pg_isready createdb; do
        [ -x "$PG_BIN/$b" ] || skip "no $PG_BIN/$b (set EL_PG_BIN)"
    done
    command -v setpriv >/dev/null 2>&1 || skip "no setpriv (util-linux)"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || skip "running as root and there is no postgres user"
        command -v runuser >/dev/null 2>&1 || skip "no runuser (util-linux)"
        AS=(runuser -u postgres --)
    fi

    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    init_cluster
    local port='' try
    for ((try = 0; try < START_TRIES; try++)); do
        port=$(free_port) || die "no free port found"
        start_server "$port" && break
        port=
    done
    [ -n "$port" ] || die "postgres did not start: $(tail -n 5 "$DIR/postgres.log")"
    "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DB_NAME" ||
        die "createdb $DB_NAME failed"

    local rc=0
    # In the background so that INT/TERM reach the trap at once (a shell
    # runs traps only after a foreground child ends); stdin stays ours.
    EL_TEST_STORE_URL="postgres://postgres@127.0.0.1:$port/$DB_NAME" \
        EL_PG_ADMIN_URL="postgres://postgres@127.0.0.1:$port/postgres" \
        EL_PG_PORT="$port" EL_PG_BIN="$PG_BIN" setpriv --pdeathsig KILL "$@" <&0 &
    CHILD=$!
    wait "$CHILD" || rc=$?
    CHILD=
    exit "$rc"
}

case "${1:-}" in
run)
    shift
    cmd_run "$@"
    ;;
*)
    echo "usage: postgres.sh run <cmd> [args...]" >&2
    exit 2
    ;;
esac
