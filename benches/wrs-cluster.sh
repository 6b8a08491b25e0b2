#!/usr/bin/env bash
# A 3-node whereabouts-rs cluster on 127.0.0.1 for the benchmarks (the counterpart of etcd-cluster.sh).
#
#   benches/wrs-cluster.sh start   DIR     start nodes 0,1,2 (fresh data in DIR/node-N), wait for a leader
#   benches/wrs-cluster.sh stop    DIR     stop every node of DIR (SIGTERM, then SIGKILL after 10 s), delete data
#   benches/wrs-cluster.sh status  DIR     whereabouts-ctl status
#   benches/wrs-cluster.sh kill9   DIR ID  SIGKILL node ID (data kept)
#   benches/wrs-cluster.sh term    DIR ID  SIGTERM node ID and wait until it exited (data kept)
#   benches/wrs-cluster.sh restart DIR ID  start node ID again on its data (after kill9)
#   benches/wrs-cluster.sh leader  DIR     print the leader's node id
#
# Environment (all optional):
#   WRS_BIN         directory with whereabouts-node and whereabouts-ctl   (default: target/release)
#   WRS_PORTS       "7100 7101 7102"   gRPC ports of nodes 0,1,2
#   WRS_NODE_ARGS   extra whereabouts-node flags (e.g. "--snapshot-threshold 1000")
#   WRS_LOG_LEVEL   the nodes' --log-level        (default: the node's own default, info,openraft=warn)
#   WRS_START_TIMEOUT 60               seconds to wait for a leader
#
# Everything binds and targets 127.0.0.1 only. Nodes log to DIR/node-N.log; their pids are in DIR/node-N.pid.
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"

BIN=${WRS_BIN:-$ROOT/target/release}
read -r -a PORTS <<<"${WRS_PORTS:-7100 7101 7102}"
START_TIMEOUT=${WRS_START_TIMEOUT:-60}
read -r -a NODE_ARGS <<<"${WRS_NODE_ARGS:-}"

[[ $# -ge 2 ]] || die "usage: $0 start|stop|status|kill9|restart|leader DIR [ID]"
CMD=$1
DIR=$2
[[ -n "$DIR" && "$DIR" != "/" ]] || die "refusing DIR '$DIR'"
[[ -x $BIN/whereabouts-node && -x $BIN/whereabouts-ctl ]] || die "no whereabouts-node/whereabouts-ctl in $BIN (cargo build --release -p cluster)"

endpoints() { comma_list "$HOST:%s" "${PORTS[@]}"; }
initial_cluster() { comma_list "%s=$HOST:%s" 0 "${PORTS[0]}" 1 "${PORTS[1]}" 2 "${PORTS[2]}"; }
ctl() { "$BIN/whereabouts-ctl" --endpoints "$(endpoints)" --timeout 2 "$@"; }
alive() { [[ -f $DIR/node-$1.pid ]] && kill -0 "$(cat "$DIR/node-$1.pid")" 2>/dev/null; }

spawn() {
    local id=$1
    local level=()
    [[ -n ${WRS_LOG_LEVEL:-} ]] && level=(--log-level "$WRS_LOG_LEVEL")
    setsid "$BIN/whereabouts-node" --id "$id" --listen "$HOST:${PORTS[$id]}" \
        --initial-cluster "$(initial_cluster)" --data-dir "$DIR/node-$id" \
        "${level[@]}" "${NODE_ARGS[@]}" </dev/null >>"$DIR/node-$id.log" 2>&1 &
    echo $! >"$DIR/node-$id.pid"
}

# True when every running node knows the leader (its own view, `status --local`).
all_know_leader() {
    local i p
    for i in 0 1 2; do
        alive "$i" || continue
        p=${PORTS[$i]}
        "$BIN/whereabouts-ctl" --endpoints "$HOST:$p" --timeout 2 -o json status --local 2>/dev/null |
            grep -q '"leader_id": *[0-9]' || return 1
    done
    ctl -o json status >/dev/null 2>&1
}

wait_leader() {
    local deadline=$((SECONDS + START_TIMEOUT)) i
    until all_know_leader; do
        for i in 0 1 2; do
            if [[ -f $DIR/node-$i.pid ]] && ! alive "$i"; then tail -n 20 "$DIR/node-$i.log" >&2; die "node $i exited"; fi
        done
        ((SECONDS < deadline)) || die "no leader after ${START_TIMEOUT}s (logs in $DIR)"
        sleep 0.1
    done
}

start() {
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    local i p
    for i in 0 1 2; do alive "$i" && die "node $i already running (pid $(cat "$DIR/node-$i.pid")); stop first"; done
    for p in "${PORTS[@]}"; do port_busy "$p" && die "port $HOST:$p is already in use (set WRS_PORTS)"; done
    for i in 0 1 2; do
        rm -rf "$DIR/node-$i"
        : >"$DIR/node-$i.log"
        spawn "$i"
    done
    wait_leader
    log "leader elected and known to every node; endpoints $(endpoints)"
    echo "ENDPOINTS=$(endpoints)"
}

stop() {
    local i n
    for i in 0 1 2; do alive "$i" && kill -TERM "$(cat "$DIR/node-$i.pid")" 2>/dev/null || true; done
    for i in 0 1 2; do
        n=0
        while alive "$i" && ((n < 100)); do sleep 0.1; n=$((n + 1)); done
        if alive "$i"; then kill -KILL "$(cat "$DIR/node-$i.pid")" 2>/dev/null || true; fi
        rm -f "$DIR/node-$i.pid"
        rm -rf "${DIR:?}/node-$i"
    done
}

case "$CMD" in
start) start ;;
stop) stop ;;
status) ctl status ;;
leader) ctl -o json status | sed -n 's/.*"leader_id": *\([0-9]*\).*/\1/p' | head -1 ;;
kill9)
    [[ $# -eq 3 ]] || die "kill9 needs a node id"
    alive "$3" || die "node $3 is not running"
    kill -KILL "$(cat "$DIR/node-$3.pid")"
    while alive "$3"; do sleep 0.01; done
    rm -f "$DIR/node-$3.pid"
    ;;
term)
    [[ $# -eq 3 ]] || die "term needs a node id"
    alive "$3" || die "node $3 is not running"
    kill -TERM "$(cat "$DIR/node-$3.pid")"
    n=0
    while alive "$3" && ((n < 300)); do sleep 0.05; n=$((n + 1)); done
    alive "$3" && die "node $3 did not exit within 15 s of SIGTERM"
    rm -f "$DIR/node-$3.pid"
    ;;
restart)
    [[ $# -eq 3 ]] || die "restart needs a node id"
    alive "$3" && die "node $3 is running"
    spawn "$3"
    ;;
*) die "unknown command $CMD" ;;
esac
