#!/usr/bin/env bash
# A 3-member etcd cluster on 127.0.0.1 for the reference benchmark (bench-reference/).
#
#   benches/etcd-cluster.sh start  DIR   install etcd if missing, start 3 members, wait until healthy
#   benches/etcd-cluster.sh status DIR   members, leader, db size, health
#   benches/etcd-cluster.sh stop   DIR   stop the members and delete their data (logs stay in DIR)
#
# Environment (all optional):
#   ETCD_CLIENT_PORTS  "2379 22379 32379"   client ports of members 0,1,2
#   ETCD_PEER_PORTS    "2380 22380 32380"   peer ports of members 0,1,2
#   ETCD_START_TIMEOUT 60                    seconds to wait for a healthy cluster
#   ETCD_QUOTA_BYTES   8589934592            backend quota (whole-pool writes make many revisions)
#
# Everything binds and targets 127.0.0.1 only. fsync stays at etcd's default (on): that is the fair
# comparison with a Raft store that fsyncs its log.
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"

read -r -a CLIENT_PORTS <<<"${ETCD_CLIENT_PORTS:-2379 22379 32379}"
read -r -a PEER_PORTS <<<"${ETCD_PEER_PORTS:-2380 22380 32380}"
START_TIMEOUT="${ETCD_START_TIMEOUT:-60}"
QUOTA="${ETCD_QUOTA_BYTES:-8589934592}"
export ETCDCTL_API=3

usage() { die "usage: $0 start|stop|status DIR"; }

[[ $# -eq 2 ]] || usage
CMD=$1
DIR=$2
[[ -n "$DIR" && "$DIR" != "/" ]] || die "refusing DIR '$DIR'"
[[ ${#CLIENT_PORTS[@]} -eq 3 && ${#PEER_PORTS[@]} -eq 3 ]] || die "need exactly 3 client and 3 peer ports"

endpoints() { comma_list "http://$HOST:%s" "${CLIENT_PORTS[@]}"; }
initial_cluster() { comma_list "m%s=http://$HOST:%s" 0 "${PEER_PORTS[0]}" 1 "${PEER_PORTS[1]}" 2 "${PEER_PORTS[2]}"; }

# Install Debian's etcd-server and etcd-client when etcd/etcdctl are missing. The distribution service
# must not start (it would take 2379/2380): a temporary policy-rc.d forbids it, and if systemd is
# running the unit we just installed is disabled and stopped.
install_etcd() {
    if command -v etcd >/dev/null && command -v etcdctl >/dev/null; then return; fi
    [[ $(id -u) -eq 0 ]] || die "etcd is not installed and we are not root: apt-get install etcd-server etcd-client"
    log "installing etcd-server etcd-client (Debian)"
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        own_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    local rc=0
    { apt-get update -q && apt-get install -y -q --no-install-recommends etcd-server etcd-client; } || rc=$?
    [[ $own_policy -eq 1 ]] && rm -f "$policy"
    [[ $rc -eq 0 ]] || die "apt-get failed ($rc)"
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
        systemctl disable --now etcd >/dev/null 2>&1 || true
    fi
    command -v etcd >/dev/null || die "etcd not found after install"
}

member_alive() {
    local pidf="$DIR/m$1.pid"
    [[ -f $pidf ]] && kill -0 "$(cat "$pidf")" 2>/dev/null
}

start() {
    install_etcd
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    local i p
    for i in 0 1 2; do member_alive "$i" && die "member m$i already running (pid $(cat "$DIR/m$i.pid")); stop first"; done
    for p in "${CLIENT_PORTS[@]}" "${PEER_PORTS[@]}"; do
        port_busy "$p" && die "port $HOST:$p is already in use (a system etcd? set ETCD_CLIENT_PORTS/ETCD_PEER_PORTS)"
    done
    local token cluster
    token="bench-$$-$(date +%s)"
    cluster=$(initial_cluster)
    log "etcd $(etcd --version 2>/dev/null | head -1 | awk '{print $3}'), data and logs in $DIR"
    for i in 0 1 2; do
        rm -rf "$DIR/m$i.data"
        local cu="http://$HOST:${CLIENT_PORTS[$i]}" pu="http://$HOST:${PEER_PORTS[$i]}"
        setsid etcd \
            --name "m$i" \
            --data-dir "$DIR/m$i.data" \
            --listen-client-urls "$cu" --advertise-client-urls "$cu" \
            --listen-peer-urls "$pu" --initial-advertise-peer-urls "$pu" \
            --initial-cluster "$cluster" --initial-cluster-token "$token" --initial-cluster-state new \
            --quota-backend-bytes "$QUOTA" \
            --auto-compaction-mode periodic --auto-compaction-retention 1m \
            --logger zap --log-outputs stderr \
            </dev/null >"$DIR/m$i.log" 2>&1 &
        echo $! >"$DIR/m$i.pid"
    done
    local deadline=$((SECONDS + START_TIMEOUT))
    until etcdctl --endpoints "$(endpoints)" --dial-timeout 2s --command-timeout 3s endpoint health >/dev/null 2>&1; do
        for i in 0 1 2; do
            member_alive "$i" || { tail -n 20 "$DIR/m$i.log" >&2; stop; die "member m$i exited during start"; }
        done
        if ((SECONDS >= deadline)); then
            for i in 0 1 2; do log "--- m$i.log"; tail -n 10 "$DIR/m$i.log" >&2; done
            stop
            die "cluster not healthy after ${START_TIMEOUT}s"
        fi
        sleep 0.5
    done
    log "healthy"
    local plain
    plain=$(endpoints)
    echo "ENDPOINTS=${plain//http:\/\//}"
}

status() {
    local i any=0
    for i in 0 1 2; do
        if member_alive "$i"; then
            echo "m$i: running pid $(cat "$DIR/m$i.pid") client $HOST:${CLIENT_PORTS[$i]}"
            any=1
        else
            echo "m$i: not running"
        fi
    done
    [[ $any -eq 1 ]] || return 1
    etcdctl --endpoints "$(endpoints)" --dial-timeout 2s -w table endpoint status || true
    etcdctl --endpoints "$(endpoints)" --dial-timeout 2s endpoint health
}

stop() {
    local i pid
    for i in 0 1 2; do
        member_alive "$i" || continue
        pid=$(cat "$DIR/m$i.pid")
        kill -TERM "$pid" 2>/dev/null || true
    done
    for i in 0 1 2; do
        local n=0
        while member_alive "$i" && ((n < 100)); do sleep 0.1; n=$((n + 1)); done
        if member_alive "$i"; then kill -KILL "$(cat "$DIR/m$i.pid")" 2>/dev/null || true; fi
    done
    for i in 0 1 2; do rm -rf "${DIR:?}/m$i.data" "${DIR:?}/m$i.pid"; done
    log "stopped; data removed, logs kept in $DIR"
}

case "$CMD" in
start) start ;;
status) status ;;
stop) stop ;;
*) usage ;;
esac
