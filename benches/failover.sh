#!/usr/bin/env bash
# Leader killed under load: how long until writes resume. Repeats KILLS times (default 20) on one
# 3-node whereabouts-rs cluster on 127.0.0.1:
#   - `whereabouts-ctl bench --retry` runs CLIENTS clients (default 16, allocate/release 1:1) with a
#     per-operation timeline; clients retry as the CNI plugin does (same request id, next endpoint,
#     leader hint first, 10-100 ms backoff between rounds);
#   - after WARMUP seconds the leader gets SIGKILL (its time taken just before the kill);
#   - "writes resume" = the end of the outage, measured from the kill: the outage is the longest
#     stretch after the kill without an acknowledged write (also reported), and the operations
#     that failed (none should: every op is retried for up to 10 s);
#   - the killed node is restarted on its data and the cluster is given time to settle.
# Prints one line per kill and the distribution; writes failover.csv, the timelines and the nodes'
# logs to RESULTS.
#
#   benches/failover.sh [--kills N] [--clients N] [--results DIR]
# Environment: CARGO_TARGET_DIR (binaries from $CARGO_TARGET_DIR/release, built if missing) or
#   BENCH_BIN (a directory with whereabouts-node/-ctl),
#   WRS_PORTS, WRS_NODE_ARGS (see wrs-cluster.sh).
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"
enter_root
KILLS=20
CLIENTS=16
WARMUP=2
RUN=7
RESULTS=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --kills) KILLS=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    --results) RESULTS=$2; shift ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) log "unknown option $1"; exit 2 ;;
    esac
    shift
done
results_dir "benches/results/failover-$(date +%Y%m%d-%H%M%S)"
build_cluster_if_missing
wrs_endpoints
work_dir failover
stop_at_exit wrs "$DIR"
# The node logs go with the results (what an election did is only there); runs before the stop.
at_exit "cp $(printf %q "$DIR")/node-*.log $(printf %q "$RESULTS")/"

benches/wrs-cluster.sh start "$DIR" >/dev/null
echo "kill,leader,resume_ms,outage_ms,ops_ok,errors,retries" >"$RESULTS/failover.csv"
for k in $(seq 1 "$KILLS"); do
    tl=$RESULTS/timeline-$k.csv
    "$BIN/whereabouts-ctl" --endpoints "$EP" -o json bench --clients "$CLIENTS" --pool-size 65536 --mix 1:1 \
        --duration "$RUN" --grace 5 --op-timeout 10 --retry --network failover --timeline "$tl" --quiet \
        >"$RESULTS/bench-$k.json" 2>"$RESULTS/bench-$k.log" &
    bench=$!
    sleep "$WARMUP"
    leader=$(benches/wrs-cluster.sh leader "$DIR")
    [[ -n $leader ]] || { log "no leader before kill $k"; exit 1; }
    killed_ns=$(date +%s%N)
    benches/wrs-cluster.sh kill9 "$DIR" "$leader"
    wait "$bench" || { log "bench failed on kill $k (see $RESULTS/bench-$k.log)"; exit 1; }
    # The outage: the longest stretch without an acknowledged write after the kill (from the kill,
    # or from the last acknowledgement after it). The kill is timed just before `kill -9`, and the
    # old leader still answers for the few milliseconds that takes, so "the first write sent after
    # the kill" would measure those. resume = end of the outage - kill time.
    # Unix nanoseconds lose precision as doubles (±256 ns): irrelevant at the millisecond scale.
    read -r resume gap < <(awk -F, 'NR > 1 && $5 == 1 { print $3 }' "$tl" | sort -g | awk -v t="$killed_ns" '
        $1 > t {
            from = (prev != "" && prev > t) ? prev : t
            if ($1 - from > gap) { gap = $1 - from; end = $1 }
        }
        { prev = $1 }
        END { printf "%.1f %.1f\n", (end == "" ? -1 : (end - t) / 1e6), gap / 1e6 }')
    read -r ok errors retries < <(sed -e 's/.*"ops_ok":\([0-9]*\).*"errors":\([0-9]*\).*"retries":\([0-9]*\).*/\1 \2 \3/' "$RESULTS/bench-$k.json")
    echo "$k,$leader,$resume,$gap,$ok,$errors,$retries" >>"$RESULTS/failover.csv"
    log "kill $k: node $leader killed, writes resumed after $resume ms (outage $gap ms; ok $ok, errors $errors, retries $retries)"
    benches/wrs-cluster.sh restart "$DIR" "$leader"
    # Let the restarted node catch up and the cluster settle before the next kill.
    for _ in $(seq 1 100); do
        "$BIN/whereabouts-ctl" --endpoints "127.0.0.1:${P[$leader]}" --timeout 1 status --local >/dev/null 2>&1 && break
        sleep 0.1
    done
    sleep 2
done

sort -t, -k3 -g <(tail -n +2 "$RESULTS/failover.csv") | awk -F, '
    { v[NR] = $3; if ($6 > 0) e += $6; s += $3 }
    END {
        n = NR; if (n == 0) exit 1
        p90 = int(n * 0.9 + 0.5); if (p90 < 1) p90 = 1
        printf "writes resumed after a leader kill (%d kills): min %.0f ms, p50 %.0f ms, p90 %.0f ms, max %.0f ms, mean %.0f ms; failed ops %d\n",
            n, v[1], v[int((n + 1) / 2)], v[p90], v[n], s / n, e
    }' | tee "$RESULTS/summary.txt"
log "results in $RESULTS"
