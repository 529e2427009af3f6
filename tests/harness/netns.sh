#!/usr/bin/env bash
# netns.sh - run a test inside its own pair of network namespaces.
#
#   netns.sh run <cmd> [args...]   run cmd in a fresh namespace, exit with its code
#   netns.sh sweep [--all]         delete stale elt-* namespaces (owner process
#                                  gone); --all deletes every elt-* namespace
#                                  (scripts/sweep-netns.sh)
#
# "run" builds, for this one command:
#
#   elt-<pid>-<rand>                       elt-<pid>-<rand>-b
#   +--------------------------+  veth    +--------------------------+
#   | lo up                    |          | lo up                    |
#   | elt<n>a 10.77.<n>.1/24   |----------| elt<n>b 10.77.<n>.2/24   |
#   | default via 10.77.<n>.2  |          | default via 10.77.<n>.1  |
#   +--------------------------+          +--------------------------+
#
# and runs cmd in the first namespace with
#   EL_NETNS=<first ns>   EL_NETNS_ADDR=10.77.<n>.1   EL_NETNS_LINK=elt<n>a
#   EL_NETNS_PEER=<second ns>   EL_NETNS_PEER_ADDR=10.77.<n>.2   EL_NETNS_PEER_LINK=elt<n>b
# The peer namespace is where a second process (ip netns exec "$EL_NETNS_PEER" ...)
# or a socket created after setns() lives: reachable only through the veth,
# so "ip link set $EL_NETNS_LINK down" cuts it off.
#
# Isolation: nothing leaves the two namespaces (new namespaces have forwarding
# off; the default routes only exist so that Chromium gathers candidates).
# <n> (1..254) is chosen under a lock among subnets no namespace and no host
# interface uses, so parallel runs (ctest -j) never share a subnet. Both
# namespaces and every process left in them are removed on exit, INT and
# TERM; a run killed with SIGKILL leaves them to the next "sweep" (every "run"
# sweeps first), which recognises them by the dead owner pid in the name.
#
# Exit codes: the command's own; 77 (CTest SKIP_RETURN_CODE) when not root,
# without iproute2 or when namespaces cannot be created; 1 on a setup error;
# 128+signal when interrupted.
set -u

LOCK=/run/lock/echolink-netns.lock
SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

skip() {
    echo "netns.sh: skipped: needs root and ip netns ($*)" >&2
    exit 77
}

die() {
    echo "netns.sh: $*" >&2
    exit 1
}

# Deletes one namespace after killing whatever still runs in it.
ns_delete() {
    local ns=$1 pids
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
    fi
    ip netns del "$ns" 2>/dev/null || true
}

# Stale: an elt-<pid>-... namespace whose <pid> is gone, or an elt-* name
# without a pid. Namespaces of runs still alive are left alone.
sweep_stale() {
    local ns pid
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^elt-' || true); do
        pid=$(printf '%s\n' "$ns" | sed -n 's/^elt-\([0-9][0-9]*\)-.*/\1/p')
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            continue
        fi
        ns_delete "$ns"
        echo "netns.sh: removed stale $ns" >&2
    done
}

cmd_sweep() {
    command -v ip >/dev/null 2>&1 || exit 0
    if [ "${1:-}" = "--all" ]; then
        exec "$SELF_DIR/../../scripts/sweep-netns.sh"
    fi
    sweep_stale
    exit 0
}

# Prints the 10.77.<n> subnets in use (host interfaces and every namespace).
used_subnets() {
    local ns
    {
        ip -4 -o addr show 2>/dev/null
        for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
            ip -n "$ns" -4 -o addr show 2>/dev/null
        done
    } | grep -o 'inet 10\.77\.[0-9]*\.' | sed 's/inet 10\.77\.\([0-9]*\)\./\1/' | sort -un
}

NS_A=
NS_B=
CHILD=

# shellcheck disable=SC2317 # called through trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM "$CHILD" 2>/dev/null || true
        sleep 0.2
        kill -KILL "$CHILD" 2>/dev/null || true
    fi
    [ -n "$NS_A" ] && ns_delete "$NS_A"
    [ -n "$NS_B" ] && ns_delete "$NS_B"
    exit "$rc"
}

cmd_run() {
    [ $# -ge 1 ] || die "usage: netns.sh run <cmd> [args...]"
    [ "$(id -u)" = 0 ] || skip "not root"
    command -v ip >/dev/null 2>&1 || skip "no ip command (iproute2)"
    command -v flock >/dev/null 2>&1 || skip "no flock (util-linux)"

    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    sweep_stale
    local base n used link_a link_b
    base="elt-$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"

    exec 9>"$LOCK" || die "cannot open $LOCK"
    flock -w 30 9 || die "timed out waiting for $LOCK"
    used=" $(used_subnets | tr '\n' ' ') "
    n=
    local start=$((RANDOM % 254)) i c
    for ((i = 0; i < 254; i++)); do
        c=$(((start + i) % 254 + 1))
        case "$used" in *" $c "*) continue ;; esac
        n=$c
        break
    done
    [ -n "$n" ] || die "no free 10.77.x.0/24 subnet"

    if ! ip netns add "$base" 2>/dev/null; then
        skip "ip netns add failed"
    fi
    NS_A=$base
    ip netns add "$base-b" || die "ip netns add $base-b failed"
    NS_B=$base-b
    link_a="elt${n}a"
    link_b="elt${n}b"
    # No IPv6 duplicate address detection on the veths: their link-local
    # addresses would stay "tentative" for the command's first 1-2 s and
    # then change, and Chromium answers that address change by failing
    # every request in flight with ERR_NETWORK_CHANGED (a web test's page
    # lost a module that way). Set before the links exist: a new device
    # takes the namespace's defaults.
    for ns in "$NS_A" "$NS_B"; do
        ip netns exec "$ns" sh -c 'echo 0 >/proc/sys/net/ipv6/conf/default/accept_dad' \
            2>/dev/null || true
    done
    ip link add "$link_a" netns "$NS_A" type veth peer name "$link_b" netns "$NS_B" ||
        die "cannot create veth pair"
    ip -n "$NS_A" addr add "10.77.$n.1/24" dev "$link_a" || die "addr A"
    ip -n "$NS_B" addr add "10.77.$n.2/24" dev "$link_b" || die "addr B"
    exec 9>&- # the subnet is now visible to the next run's used_subnets
    ip -n "$NS_A" link set lo up || die "lo up"
    ip -n "$NS_B" link set lo up || die "lo up"
    ip -n "$NS_A" link set "$link_a" up || die "veth up"
    ip -n "$NS_B" link set "$link_b" up || die "veth up"
    ip -n "$NS_A" route add default via "10.77.$n.2" dev "$link_a" || die "route A"
    ip -n "$NS_B" route add default via "10.77.$n.1" dev "$link_b" || die "route B"
    for ns in "$NS_A" "$NS_B"; do
        if ip -n "$ns" -6 addr show tentative 2>/dev/null | grep -q inet6; then
            die "IPv6 addresses still tentative in $ns (duplicate address detection on)"
        fi
    done

    # In the background so that INT/TERM reach the trap at once (a shell
    # runs traps only after a foreground child ends); stdin stays ours.
    ip netns exec "$NS_A" env EL_NETNS="$NS_A" EL_NETNS_ADDR="10.77.$n.1" \
        EL_NETNS_LINK="$link_a" EL_NETNS_PEER="$NS_B" EL_NETNS_PEER_ADDR="10.77.$n.2" \
        EL_NETNS_PEER_LINK="$link_b" "$@" <&0 &
    CHILD=$!
    local rc=0
    wait "$CHILD" || rc=$?
    CHILD=
    exit "$rc"
}

case "${1:-}" in
run)
    shift
    cmd_run "$@"
    ;;
sweep)
    shift
    cmd_sweep "$@"
    ;;
*)
    echo "usage: netns.sh run <cmd> [args...] | netns.sh sweep [--all]" >&2
    exit 2
    ;;
esac
