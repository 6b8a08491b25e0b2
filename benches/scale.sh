#!/usr/bin/env bash
# Scale: one pool holding 1,000,000 allocations on a 3-node whereabouts-rs cluster on 127.0.0.1.
#   1. allocation latency in an empty pool (1 and 64 clients, allocate/release 1:1, 10 s each);
#   2. the same pool size filled with N allocations through the API (128 concurrent requests,
#      unmeasured but timed), then the same latency runs on it;
#   3. node memory (VmRSS and peak VmHWM from /proc/PID/status) and data sizes;
#   4. snapshot install to a new node: start node 3 empty, `whereabouts-ctl add-learner`, time until
#      its applied index reaches the leader's (its log says whether a snapshot was installed);
#   5. restart to serving: one follower (SIGTERM, start; time until it answers `status --local`
#      and until it has caught up), then the whole cluster (SIGTERM all, start all; time until the
#      first allocation succeeds).
#
#   benches/scale.sh [--allocations N] [--results DIR]
# Environment: CARGO_TARGET_DIR or BENCH_BIN (a directory with whereabouts-node/-ctl), WRS_PORTS (4 ports are used: the 3 of WRS_PORTS and the next one
#   after the last for the learner), WRS_NODE_ARGS.
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"
enter_root
N=1000000
RESULTS=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --allocations) N=$2; shift ;;
    --results) RESULTS=$2; shift ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) log "unknown option $1"; exit 2 ;;
    esac
    shift
done
results_dir "benches/results/scale-$(date +%Y%m%d-%H%M%S)"
build_cluster_if_missing
wrs_endpoints
P3=$((P[2] + 1))
work_dir scale
stop_at_exit wrs "$DIR"
# The node logs go with the results (startup phases are only there); runs before the stop.
at_exit "cp $(printf %q "$DIR")/node-*.log $(printf %q "$RESULTS")/ 2>/dev/null"
LEARNER_PID=""
at_exit '[[ -z $LEARNER_PID ]] || kill "$LEARNER_PID" 2>/dev/null'
now_ms() { echo $(($(date +%s%N) / 1000000)); }
ctl() { "$BIN/whereabouts-ctl" --timeout 2 "$@"; }
# A pool of 2^21 addresses (10.0.0.0/11): room for 1M allocations and more.
POOL=(--pool-size 2097152)
field() { sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" | head -1; }
rss() { # node id -> "VmRSS_kB VmHWM_kB"
    local pid
    pid=$(cat "$DIR/node-$1.pid")
    awk '/^VmRSS/ {r = $2} /^VmHWM/ {h = $2} END {print r, h}' "/proc/$pid/status"
}
bench() { # name, args...
    local name=$1
    shift
    ctl --endpoints "$EP" -o json bench "${POOL[@]}" --mix 1:1 --duration 10 "$@" >"$RESULTS/$name.json" 2>"$RESULTS/$name.log"
    log "$name: $(sed -e 's/.*"throughput":\([0-9.]*\).*"latency_ms":{"p50":\([0-9.]*\),"p99":\([0-9.]*\).*/\1 ops\/s, p50 \2 ms, p99 \3 ms/' "$RESULTS/$name.json")"
}

WRS_LOG_LEVEL=info benches/wrs-cluster.sh start "$DIR" >/dev/null
{
    run_info_head
    echo "allocations: $N"
} >"$RESULTS/run-info.txt"

# 1. Empty pool.
for c in 1 64; do bench "empty-c$c" --network scale-empty --clients "$c"; done
read -r rss0 _ < <(rss 0)

# 2. Fill, then the same runs on the full pool.
log "filling a pool with $N allocations (this takes a while)"
t0=$(now_ms)
ctl --endpoints "$EP" -o json bench "${POOL[@]}" --network scale-big --prefill "$N" --prefill-timeout 1800 \
    --ops 1 --clients 1 >"$RESULTS/fill.json" 2>"$RESULTS/fill.log"
fill_ms=$(($(now_ms) - t0))
log "filled in $((fill_ms / 1000)) s ($((N * 1000 / (fill_ms > 0 ? fill_ms : 1))) allocations/s)"
for c in 1 64; do bench "full-c$c" --network scale-big --clients "$c"; done

# 3. Memory and disk.
leader=$(benches/wrs-cluster.sh leader "$DIR")
{
    echo "node,role,vmrss_kb,vmhwm_kb,data_kb,snapshot_bytes"
    for i in 0 1 2; do
        read -r r h < <(rss "$i")
        role=follower
        [[ $i == "$leader" ]] && role=leader
        snap=$(stat -c %s "$DIR/node-$i/snapshots/snapshot.bin" 2>/dev/null || echo 0)
        echo "$i,$role,$r,$h,$(du -sk "$DIR/node-$i" | cut -f1),$snap"
    done
} >"$RESULTS/memory.csv"
log "memory (before the fill, node 0: ${rss0} kB):"
column -s, -t <"$RESULTS/memory.csv" >&2 || cat "$RESULTS/memory.csv" >&2

# 4. Snapshot install to a new node.
applied=$(ctl --endpoints "$EP" -o json status | field applied_index)
mkdir -p "$DIR/node-3"
setsid "$BIN/whereabouts-node" --id 3 --listen "127.0.0.1:$P3" --initial-cluster-state existing \
    --initial-cluster "$(comma_list "%s=$HOST:%s" 0 "${P[0]}" 1 "${P[1]}" 2 "${P[2]}")" \
    --data-dir "$DIR/node-3" --log-level info </dev/null >"$DIR/node-3.log" 2>&1 &
LEARNER_PID=$!
for _ in $(seq 1 100); do ctl --endpoints "127.0.0.1:$P3" status --local >/dev/null 2>&1 && break; sleep 0.05; done
t0=$(now_ms)
ctl --endpoints "$EP" add-learner --id 3 --addr "127.0.0.1:$P3" >/dev/null
added_ms=$(($(now_ms) - t0))
caught=""
while (($(now_ms) - t0 < 120000)); do
    a=$(ctl --endpoints "127.0.0.1:$P3" -o json status --local 2>/dev/null | field applied_index || true)
    if [[ -n $a && $a -ge $applied ]]; then caught=$(($(now_ms) - t0)); break; fi
    sleep 0.05
done
installed=$(grep -c "installed a snapshot" "$DIR/node-3.log" || true)
read -r r3 h3 < <(awk '/^VmRSS/ {r = $2} /^VmHWM/ {h = $2} END {print r, h}' "/proc/$LEARNER_PID/status")
echo "add_learner_ms,caught_up_ms,snapshots_installed,learner_vmrss_kb,learner_vmhwm_kb" >"$RESULTS/learner.csv"
echo "$added_ms,${caught:-timeout},$installed,$r3,$h3" >>"$RESULTS/learner.csv"
log "new node: add-learner answered in $added_ms ms, caught up (applied ≥ $applied) after ${caught:-more than 120000} ms, snapshots installed: $installed"
cp "$DIR/node-3.log" "$RESULTS/learner-node.log"
ctl --endpoints "$EP" remove --id 3 >/dev/null || log "removing the learner failed"
kill "$LEARNER_PID"
wait "$LEARNER_PID" 2>/dev/null || true
LEARNER_PID=""

# 5. Restart to serving.
leader=$(benches/wrs-cluster.sh leader "$DIR")
f=$(((leader + 1) % 3))
applied=$(ctl --endpoints "$EP" -o json status | field applied_index)
benches/wrs-cluster.sh term "$DIR" "$f"
t0=$(now_ms)
benches/wrs-cluster.sh restart "$DIR" "$f"
answer="" caught=""
while (($(now_ms) - t0 < 120000)); do
    a=$(ctl --endpoints "127.0.0.1:${P[$f]}" -o json status --local 2>/dev/null | field applied_index || true)
    [[ -n $a && -z $answer ]] && answer=$(($(now_ms) - t0))
    if [[ -n $a && $a -ge $applied ]]; then caught=$(($(now_ms) - t0)); break; fi
    sleep 0.05
done
log "follower $f restarted: answers after ${answer:-?} ms, caught up after ${caught:-?} ms"

for i in 0 1 2; do benches/wrs-cluster.sh term "$DIR" "$i"; done
t0=$(now_ms)
for i in 0 1 2; do benches/wrs-cluster.sh restart "$DIR" "$i"; done
first=""
while (($(now_ms) - t0 < 120000)); do
    if ctl --endpoints "$EP" -o json bench "${POOL[@]}" --network scale-big --ops 1 --clients 1 --duration 1 \
        --grace 1 --op-timeout 1 --quiet 2>/dev/null | grep -q '"ops_ok":1,'; then
        first=$(($(now_ms) - t0))
        break
    fi
    sleep 0.05
done
read -r rss_after _ < <(rss 0)
log "whole cluster restarted: first allocation after ${first:-more than 120000} ms (node 0 VmRSS after restart ${rss_after} kB)"
echo "follower_answers_ms,follower_caught_up_ms,cluster_first_allocation_ms,node0_vmrss_after_restart_kb" >"$RESULTS/restart.csv"
echo "${answer:-timeout},${caught:-timeout},${first:-timeout},$rss_after" >>"$RESULTS/restart.csv"
for i in 0 1 2; do cp "$DIR/node-$i.log" "$RESULTS/node-$i.log"; done
log "results in $RESULTS"
