#!/usr/bin/env bash
# whereabouts-rs against two etcd reference schemes, same machine, same workload, same run:
# whereabouts' own (whole-pool object, compare-and-swap) and key-per-address (one etcd key per address,
# create-if-absent at random offsets: the strongest etcd baseline).
#
#   benches/compare.sh            # full matrix, 10 s per run (about 13 minutes after the build)
#   benches/compare.sh --quick    # 3 s per run, steady workload only (about 3 minutes after the build)
#
# What it does (as root on a fresh Debian machine with the Rust toolchain):
#   1. installs what is missing: etcd-server/etcd-client (through benches/etcd-cluster.sh), a
#      TrueType font for the plot (fonts-dejavu-core);
#   2. cargo build --release: whereabouts-node, whereabouts-ctl, etcd-scheme-bench, bench-report;
#   3. starts a 3-member etcd on 127.0.0.1 (data in a temporary directory);
#   4. for every workload × pools (1, 16) × clients (1, 16, 64, 256): runs etcd-scheme-bench against
#      etcd once per scheme (--scheme whole-pool → NAME-etcd.json, --scheme key-per-address →
#      NAME-etcdkey.json; etcd restarted with fresh data before each), then starts a fresh 3-node
#      whereabouts-rs cluster on 127.0.0.1 (benches/wrs-cluster.sh), runs `whereabouts-ctl bench`
#      with the same options (NAME-wrs.json), and stops it;
#        steady: pools of 4096 (/20), each prefilled to 2048 (unmeasured), allocate/release 1:1
#        fill:   pools of 65536 (/16), empty, allocations only (whereabouts-rs and key-per-address
#                are capped by --ops so that they never exhaust the pool)
#      and `floor-bench echo` with the same options (NAME-floor.json): a bare tonic unary echo at
#      the same concurrency, the floor no system here can beat; once per run, `floor-bench
#      fdatasync` on the disk of the nodes' data (fdatasync.txt);
#   5. writes every JSON report to the results directory, prints the table (every system, and
#      whereabouts-rs' ratio to each etcd scheme) and renders docs/benchmarks-compare.png
#      (throughput and p99 against clients).
#
# Options / environment:
#   --quick                 3 s runs, steady workload only
#   --duration S            seconds per run (default 10)
#   --results DIR           where the JSON reports go (default benches/results/<date>)
#   --plot FILE             the PNG (default docs/benchmarks-compare.png)
#   --clients "1 16 64 256" --pools "1 16" --workloads "steady fill"
#   --etcd-schemes "whole-pool key-per-address"   which etcd references to run
#   --seed N                the key-per-address clients' random seed (default 1)
#   --no-floors             skip the floors (floor-bench echo and fdatasync)
#   --wrs-args "ARGS"       extra options for `whereabouts-ctl bench`, e.g. "--no-follow-leader"
#                           (clients stay on their endpoint; followers forward every write)
#   --no-build              use the binaries already built (with BENCH_BIN: a directory holding
#                           whereabouts-node, whereabouts-ctl, etcd-scheme-bench, floor-bench and
#                           bench-report)
#   CARGO_TARGET_DIR        as usual (the binaries are taken from $CARGO_TARGET_DIR/release)
#   WRS_PORTS, ETCD_CLIENT_PORTS, ETCD_PEER_PORTS: see wrs-cluster.sh / etcd-cluster.sh
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"
enter_root

DURATION=10
GRACE=5
CLIENTS="1 16 64 256"
POOLS="1 16"
WORKLOADS="steady fill"
ETCD_SCHEMES="whole-pool key-per-address"
SEED=1
WRS_ARGS=()
FLOORS=1
RESULTS=""
PLOT=docs/benchmarks-compare.png
BUILD=1
while [[ $# -gt 0 ]]; do
    case $1 in
    --quick) DURATION=3 GRACE=2 WORKLOADS="steady" ;;
    --duration) DURATION=$2; shift ;;
    --results) RESULTS=$2; shift ;;
    --plot) PLOT=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    --pools) POOLS=$2; shift ;;
    --workloads) WORKLOADS=$2; shift ;;
    --no-build) BUILD=0 ;;
    --etcd-schemes) ETCD_SCHEMES=$2; shift ;;
    --seed) SEED=$2; shift ;;
    --wrs-args) read -ra WRS_ARGS <<<"$2"; shift ;;
    --no-floors) FLOORS=0 ;;
    -h | --help) sed -n '2,45p' "$0"; exit 0 ;;
    *) log "unknown option $1"; exit 2 ;;
    esac
    shift
done
results_dir "benches/results/$(date +%Y%m%d-%H%M%S)"

# 1. What the script needs beyond the toolchain.
command -v cargo >/dev/null || { log "cargo not found: install Rust (rustup) first"; exit 1; }
if ! ls /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf >/dev/null 2>&1 && [[ -z ${BENCH_FONT:-} ]]; then
    if [[ $(id -u) -eq 0 ]]; then
        apt_install fonts-dejavu-core
    else
        log "no DejaVu font and not root: the plot will be skipped (apt-get install fonts-dejavu-core)"
    fi
fi

# 2. Build.
if [[ $BUILD == 1 ]]; then
    log "building (release)"
    build_cluster
    cargo build --release --locked -p bench-reference --bin etcd-scheme-bench --bin floor-bench --bin bench-report
fi

work_dir compare
ETCD_DIR=$DIR/etcd
WRS_DIR=$DIR/wrs
stop_at_exit etcd "$ETCD_DIR"
stop_at_exit wrs "$WRS_DIR"

# 3. etcd (installs etcd-server/etcd-client if missing). Started fresh for every run, as
# whereabouts-rs is: whole-object writes of /16 pools leave gigabytes of revisions behind (in one
# run the three members reached 8 GiB each and were killed for lack of memory).
etcd_start() { ETCD_EP=$(benches/etcd-cluster.sh start "$ETCD_DIR" | sed -n 's/^ENDPOINTS=//p'); }
etcd_stop() { benches/etcd-cluster.sh stop "$ETCD_DIR" >/dev/null; rm -rf "$ETCD_DIR"; }
etcd_start
wrs_endpoints
WRS_EP=$EP

{
    run_info_head
    echo "etcd: $(etcd --version 2>/dev/null | head -1)"
    echo "cpus: $(nproc); kernel: $(uname -r)"
    echo "duration: $DURATION s per run; grace $GRACE s; clients: $CLIENTS; pools: $POOLS; workloads: $WORKLOADS"
    echo "etcd schemes: $ETCD_SCHEMES; key-per-address seed: $SEED"
    echo "whereabouts-ctl bench extra options: ${WRS_ARGS[*]:-none}"
    echo "binaries: $BIN"
    echo "load average at start: $(cat /proc/loadavg)"
} >"$RESULTS/run-info.txt"

# The disk's floor: append + fdatasync on the disk the nodes' data directories are on.
if [[ $FLOORS == 1 ]]; then
    log "floor: fdatasync on the disk of $DIR"
    "$BIN/floor-bench" fdatasync --dir "$DIR" --count 2000 | tee "$RESULTS/fdatasync.txt"
fi

# 4. The matrix.
for workload in $WORKLOADS; do
    case $workload in
    steady) COMMON=(--pool-size 4096 --prefill 2048 --mix 1:1) CAP=() ;;
    fill) COMMON=(--pool-size 65536 --mix 1:0) CAP=(--ops 60000) ;;
    *) log "unknown workload $workload"; exit 2 ;;
    esac
    for pools in $POOLS; do
        for clients in $CLIENTS; do
            name="$workload-p$pools-c$clients"
            args=("${COMMON[@]}" --pools "$pools" --clients "$clients" --duration "$DURATION" --grace "$GRACE")
            for scheme in $ETCD_SCHEMES; do
                case $scheme in
                whole-pool) out=etcd extra=() ;;
                key-per-address) out=etcdkey extra=("${CAP[@]}" --seed "$SEED") ;;
                *) log "unknown etcd scheme $scheme"; exit 2 ;;
                esac
                etcd_stop
                etcd_start
                log "$name: etcd $scheme (load average $(cut -d' ' -f1-3 /proc/loadavg))"
                "$BIN/etcd-scheme-bench" --endpoints "$ETCD_EP" --scheme "$scheme" "${args[@]}" "${extra[@]}" \
                    --output json >"$RESULTS/$name-$out.json" 2>"$RESULTS/$name-$out.log"
            done
            if [[ $FLOORS == 1 ]]; then
                log "$name: floor (bare tonic echo)"
                "$BIN/floor-bench" echo "${args[@]}" "${CAP[@]}" --output json \
                    >"$RESULTS/$name-floor.json" 2>"$RESULTS/$name-floor.log"
            fi
            log "$name: whereabouts-rs"
            benches/wrs-cluster.sh start "$WRS_DIR" >/dev/null
            "$BIN/whereabouts-ctl" --endpoints "$WRS_EP" -o json bench "${args[@]}" "${CAP[@]}" "${WRS_ARGS[@]}" \
                >"$RESULTS/$name-wrs.json" 2>"$RESULTS/$name-wrs.log"
            benches/wrs-cluster.sh stop "$WRS_DIR"
        done
    done
done

echo "load average at the end: $(cat /proc/loadavg)" >>"$RESULTS/run-info.txt"

# 5. Table and plot.
echo
"$BIN/bench-report" --results "$RESULTS" --plot "$PLOT" | tee "$RESULTS/table.md"
log "reports in $RESULTS, plot in $PLOT"
