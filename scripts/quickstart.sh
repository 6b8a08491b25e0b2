#!/usr/bin/env bash
# Quick start: build, run a local 3-node whereabouts-rs cluster on loopback (data under
# .local/quickstart), allocate and release addresses through the real CNI plugin, print the
# cluster status, then stop everything.
# Usage: scripts/quickstart.sh         env: BASE_PORT (default 7000), KEEP_RUNNING=1 to leave it up
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_PORT=${BASE_PORT:-7000}
DIR=.local/quickstart
BIN=target/debug

echo "==> building whereabouts-node, whereabouts-ctl and the whereabouts CNI plugin"
cargo build --locked -p cluster -p plugin --bins

rm -rf "$DIR" && mkdir -p "$DIR"
CLUSTER="0=127.0.0.1:$BASE_PORT,1=127.0.0.1:$((BASE_PORT + 1)),2=127.0.0.1:$((BASE_PORT + 2))"
ENDPOINTS="127.0.0.1:$BASE_PORT,127.0.0.1:$((BASE_PORT + 1)),127.0.0.1:$((BASE_PORT + 2))"
PIDS=()
stop() {
  if [ "${KEEP_RUNNING:-0}" = 1 ]; then
    echo "==> left running (pids ${PIDS[*]}); stop with: kill ${PIDS[*]}"
    return
  fi
  echo "==> stopping the cluster"
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop EXIT

echo "==> starting 3 nodes (gRPC on $ENDPOINTS, metrics on 127.0.0.1:$((BASE_PORT + 2100))-$((BASE_PORT + 2102)))"
for id in 0 1 2; do
  "$BIN/whereabouts-node" --id "$id" --listen "127.0.0.1:$((BASE_PORT + id))" \
    --initial-cluster "$CLUSTER" --data-dir "$DIR/node-$id" \
    --metrics-listen "127.0.0.1:$((BASE_PORT + 2100 + id))" --insecure >"$DIR/node-$id.log" 2>&1 &
  PIDS+=($!)
done

CTL=("$BIN/whereabouts-ctl" --endpoints "$ENDPOINTS" --timeout 2 --insecure)
for _ in $(seq 1 150); do
  if "${CTL[@]}" status >/dev/null 2>&1; then break; fi
  sleep 0.2
done
"${CTL[@]}" status >/dev/null || { echo "the cluster did not come up; see $DIR/node-*.log" >&2; exit 1; }

CONF=$(cat <<JSON
{"cniVersion":"1.0.0","name":"quickstart","type":"bridge",
 "ipam":{"type":"whereabouts","range":"10.10.0.0/24","exclude":["10.10.0.1/32"],
         "endpoints":["127.0.0.1:$BASE_PORT","127.0.0.1:$((BASE_PORT + 1))","127.0.0.1:$((BASE_PORT + 2))"]}}
JSON
)
cni() { # cni COMMAND CONTAINER
  CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=/var/run/netns/quickstart CNI_IFNAME=eth0 CNI_PATH="$PWD/$BIN" \
    CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-$2" \
    "$BIN/whereabouts" <<<"$CONF"
}

for c in demo-a demo-b demo-c; do
  echo "==> CNI ADD $c"
  cni ADD "$c"
  echo
done
echo "==> CNI DEL demo-b (frees its address)"
cni DEL demo-b
echo "==> CNI ADD demo-d (gets the lowest free address again)"
cni ADD demo-d
echo
echo "==> whereabouts-ctl status"
"${CTL[@]}" status
echo
echo "==> whereabouts-ctl allocations"
"${CTL[@]}" allocations
