#!/usr/bin/env bash
# Profiles the two hot paths of issue 7 and writes the reports to RESULTS:
#   apply    the pure domain on the /8 with 1,000,000 allocated (ipam/benches/apply_profile.rs):
#            valgrind --tool=callgrind restricted to the apply loops (instruction counts: exact and
#            independent of machine load), and perf (cpu-clock samples) when perf can record.
#   cluster  a 3-node cluster under 64 clients on one pool (`whereabouts-ctl bench`):
#            perf record -e cpu-clock with DWARF call graphs on the three nodes for PERF_SECONDS
#            (wall-clock samples, kernel included), and valgrind --tool=callgrind on the leader
#            (node 0, started under valgrind; collection switched on only while the bench runs).
# Hardware counters (perf stat -e instructions) are not available on every VM; cpu-clock is a
# software event that works anywhere perf may record, and callgrind counts instructions itself.
#
#   benches/profile.sh [apply|cluster|all] [--results DIR]
# Needs: valgrind, linux-perf (apt-get install valgrind linux-perf; installed if missing and root).
# Environment: CARGO_TARGET_DIR; BENCH_BIN (a directory with whereabouts-node/-ctl: no build);
#   PERF_SECONDS (10); WRS_PORTS.
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"
enter_root
WHAT=all
RESULTS=""
while [[ $# -gt 0 ]]; do
    case $1 in
    apply | cluster | all) WHAT=$1 ;;
    --results) RESULTS=$2; shift ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) log "unknown option $1"; exit 2 ;;
    esac
    shift
done
results_dir "benches/results/profile-$(date +%Y%m%d-%H%M%S)"
PERF_SECONDS=${PERF_SECONDS:-10}

need() { # command package
    command -v "$1" >/dev/null && return
    [[ $(id -u) -eq 0 ]] || { log "$1 missing: apt-get install $2"; exit 1; }
    apt_install "$2"
}
need valgrind valgrind
need perf linux-perf
PERF_OK=0
perf record -q -e cpu-clock -o /dev/null -- true >/dev/null 2>&1 && PERF_OK=1
perf stat -e instructions -x, true 2>&1 | grep -q "not supported" && log "hardware counters not available here: perf samples cpu-clock"

annotate() { # callgrind.out -> text
    callgrind_annotate --inclusive=yes "$1" >"${1%.out}.inclusive.txt" 2>/dev/null || true
    callgrind_annotate "$1" >"${1%.out}.self.txt" 2>/dev/null || true
}
perf_reports() { # perf.data -> text
    perf report -i "$1" --no-children --stdio -g none --sort comm,dso,sym --percent-limit 0.5 >"${1%.data}.self.txt" 2>/dev/null || true
    perf report -i "$1" --children --stdio -g none --sort comm,sym --percent-limit 2 >"${1%.data}.children.txt" 2>/dev/null || true
}

if [[ $WHAT == apply || $WHAT == all ]]; then
    cargo bench --locked -p ipam --bench apply_profile --no-run
    exe=$(ls -t "$TARGET"/release/deps/apply_profile-* | grep -v '\.d$' | head -1)
    log "apply: callgrind (the 1M prefill runs uninstrumented but under valgrind: a few minutes)"
    valgrind --tool=callgrind --callgrind-out-file="$RESULTS/apply-8.callgrind.out" --collect-atstart=no \
        --toggle-collect='*apply_allocates*' --toggle-collect='*apply_releases*' "$exe" 8 300 \
        >"$RESULTS/apply-8.callgrind.log" 2>&1
    annotate "$RESULTS/apply-8.callgrind.out"
    grep -E "PROGRAM TOTALS|apply_allocates|apply_releases" "$RESULTS/apply-8.callgrind.inclusive.txt" | head -3 >&2 || true
    if [[ $PERF_OK == 1 ]]; then
        perf record -q -e cpu-clock -F 999 --call-graph dwarf,16384 -o "$RESULTS/apply-8.perf.data" -- "$exe" 8 20000 \
            >"$RESULTS/apply-8.perf.log" 2>&1
        perf_reports "$RESULTS/apply-8.perf.data"
    fi
fi

if [[ $WHAT == cluster || $WHAT == all ]]; then
    [[ -n ${BENCH_BIN:-} ]] || build_cluster
    wrs_endpoints
    work_dir profile
    VG=""
    at_exit '[[ -z $VG ]] || kill "$VG" 2>/dev/null'
    stop_at_exit wrs "$DIR"
    ctl() { "$BIN/whereabouts-ctl" --endpoints "$EP" "$@"; }
    if [[ $PERF_OK == 1 ]]; then
        log "cluster: perf on the 3 nodes, 64 clients on one pool, ${PERF_SECONDS} s"
        benches/wrs-cluster.sh start "$DIR" >/dev/null
        pids=$(cat "$DIR"/node-*.pid | paste -sd,)
        ctl -o json bench --clients 64 --pools 1 --pool-size 65536 --mix 1:1 --duration $((PERF_SECONDS + 4)) --quiet \
            >"$RESULTS/cluster-perf.bench.json" 2>/dev/null &
        bench=$!
        sleep 2
        perf record -q -e cpu-clock -F 999 --call-graph dwarf,16384 -p "$pids" -o "$RESULTS/cluster.perf.data" \
            -- sleep "$PERF_SECONDS" >/dev/null 2>&1 || true
        wait "$bench" || true
        echo "leader: $(benches/wrs-cluster.sh leader "$DIR"); pids (node 0,1,2): $pids" >"$RESULTS/cluster.perf.info"
        benches/wrs-cluster.sh stop "$DIR"
        perf_reports "$RESULTS/cluster.perf.data"
        perf report -i "$RESULTS/cluster.perf.data" --no-children --stdio -g none --sort pid --percent-limit 0.1 \
            >"$RESULTS/cluster.perf.by-pid.txt" 2>/dev/null || true
    fi

    log "cluster: callgrind on the leader (node 0 under valgrind; heartbeat 250 ms, election timeout 3 s so that it keeps leading)"
    mkdir -p "$DIR"
    NODE=(--initial-cluster "0=127.0.0.1:${P[0]},1=127.0.0.1:${P[1]},2=127.0.0.1:${P[2]}" --heartbeat-ms 250 --election-timeout-ms 3000)
    valgrind --tool=callgrind --callgrind-out-file="$RESULTS/cluster-leader.callgrind.out" --collect-atstart=no \
        "$BIN/whereabouts-node" --id 0 --listen "127.0.0.1:${P[0]}" --data-dir "$DIR/node-0" "${NODE[@]}" \
        >"$DIR/node-0.log" 2>&1 &
    VG=$!
    for i in 1 2; do
        setsid "$BIN/whereabouts-node" --id "$i" --listen "127.0.0.1:${P[$i]}" --data-dir "$DIR/node-$i" "${NODE[@]}" \
            </dev/null >"$DIR/node-$i.log" 2>&1 &
        echo $! >"$DIR/node-$i.pid"
    done
    for _ in $(seq 1 600); do
        [[ $(ctl -o json status 2>/dev/null | sed -n 's/.*"leader_id": *\([0-9]*\).*/\1/p') == 0 ]] && break
        sleep 0.1
    done
    [[ $(ctl -o json status 2>/dev/null | sed -n 's/.*"leader_id": *\([0-9]*\).*/\1/p') == 0 ]] ||
        { log "node 0 did not become the leader"; exit 1; }
    ctl --timeout 30 -o json bench --clients 64 --pools 1 --pool-size 65536 --mix 1:1 --duration 3 --op-timeout 30 --quiet >/dev/null 2>&1 || true
    callgrind_control -i on "$VG" >/dev/null
    ctl -o json bench --clients 64 --pools 1 --pool-size 65536 --mix 1:1 --duration 20 --op-timeout 30 --quiet \
        >"$RESULTS/cluster-leader.callgrind.bench.json" 2>/dev/null || true
    callgrind_control -i off "$VG" >/dev/null
    echo "leader after the run: $(ctl -o json status 2>/dev/null | sed -n 's/.*"leader_id": *\([0-9]*\).*/\1/p')" \
        >"$RESULTS/cluster-leader.callgrind.info"
    kill -TERM "$VG"
    wait "$VG" 2>/dev/null || true
    VG=""
    annotate "$RESULTS/cluster-leader.callgrind.out"
fi
log "reports in $RESULTS"
