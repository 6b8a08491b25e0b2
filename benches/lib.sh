# Sourced (not run) by every script in benches/: what they all start with, written once.
#
#   source "$(dirname "$0")/lib.sh"
#
# Sourcing it sets strict mode (set -euo pipefail), exports WHEREABOUTS_INSECURE=1 (the benchmark
# clusters are on loopback and speak plain TCP, asked for explicitly: nodes and whereabouts-ctl
# read it) and sets ROOT (the repository, absolute), HOST (127.0.0.1: everything binds and targets
# loopback only) and BENCH_NAME (the script's name, the prefix of its messages). It changes no
# directory: the cluster scripts take DIR relative to their caller's.
#
# Functions:
#   log MSG... / die MSG...   "NAME: MSG" on stderr (die then exits 1)
#   port_busy PORT            true when something listens on HOST:PORT
#   comma_list FORMAT ARG...  printf FORMAT per item (an item takes as many ARGs as FORMAT has %s), comma-joined
#   at_exit CMD               runs CMD (eval'd) on exit, before the commands registered earlier
# For the benchmark drivers (compare, failover, profile, scale):
#   enter_root                cd ROOT; TARGET=${CARGO_TARGET_DIR:-$ROOT/target}; BIN=${BENCH_BIN:-$TARGET/release};
#                             WRS_BIN=$BIN exported (for wrs-cluster.sh)
#   results_dir DIR           RESULTS=DIR unless RESULTS is set; created and made absolute
#   build_cluster             cargo build --release whereabouts-node and whereabouts-ctl
#   build_cluster_if_missing  the same unless both are in BIN already
#   wrs_endpoints             P=(the 3 ports of WRS_PORTS, default 7100 7101 7102), EP=host:port,host:port,host:port
#   work_dir NAME             DIR=$(mktemp -d /tmp/wrs-NAME.XXXXXX), removed on exit
#   stop_at_exit wrs|etcd DIR on exit, stop the benches/<wrs|etcd>-cluster.sh cluster in DIR
#   apt_install PKG           apt-get install PKG quietly (after apt-get update if the first try fails)
#   run_info_head             the date and git lines that start a run-info.txt
set -euo pipefail
export WHEREABOUTS_INSECURE=1

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOST=127.0.0.1
BENCH_NAME=$(basename "$0" .sh)

log() { echo "$BENCH_NAME: $*" >&2; }
die() {
    log "$@"
    exit 1
}

# bash's /dev/tcp: a successful connect means something listens there.
port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

comma_list() {
    local format=$1
    shift
    # shellcheck disable=SC2059 # the format is the caller's, on purpose
    printf "$format\n" "$@" | paste -sd, -
}

_EXIT_HOOKS=()
at_exit() { _EXIT_HOOKS=("$1" "${_EXIT_HOOKS[@]}"); }
_run_exit_hooks() {
    local hook
    for hook in "${_EXIT_HOOKS[@]}"; do eval "$hook" || true; done
}
trap _run_exit_hooks EXIT

enter_root() {
    cd "$ROOT"
    TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
    BIN=${BENCH_BIN:-$TARGET/release}
    export WRS_BIN=$BIN
}

results_dir() {
    RESULTS=${RESULTS:-$1}
    mkdir -p "$RESULTS"
    RESULTS=$(cd "$RESULTS" && pwd)
}

build_cluster() { cargo build --release --locked -p cluster --bin whereabouts-node --bin whereabouts-ctl; }
build_cluster_if_missing() {
    if [[ ! -x $BIN/whereabouts-node || ! -x $BIN/whereabouts-ctl ]]; then build_cluster; fi
}

wrs_endpoints() {
    read -r -a P <<<"${WRS_PORTS:-7100 7101 7102}"
    EP=$(comma_list "$HOST:%s" "${P[@]:0:3}")
}

work_dir() {
    DIR=$(mktemp -d "/tmp/wrs-$1.XXXXXX")
    at_exit "rm -rf $(printf %q "$DIR")"
}

stop_at_exit() { at_exit "$(printf %q "$ROOT/benches/$1-cluster.sh") stop $(printf %q "$2") >/dev/null 2>&1"; }

apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$1" >/dev/null ||
        { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$1" >/dev/null; }
}

run_info_head() {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo '?') $(git diff --quiet 2>/dev/null || echo '+ uncommitted changes')"
}
