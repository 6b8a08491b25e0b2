#!/usr/bin/env bash
# A chaos run against a node built with a deliberate bug, which the checker must catch. Planted
# bugs are test-only cargo features that refuse to compile in release builds, so the node is a
# debug build in its own target directory (target/planted).
#
#   jepsen-tests/scripts/planted.sh no-flush     # the log flusher acknowledges appends unflushed; kill -9 every node
#   jepsen-tests/scripts/planted.sh stale-read   # Check answers from a follower's local state; partitions and pauses
#
# Extra arguments go to `jepsen-tests run`. Exit 0 when the checker found anomalies (the bug was
# caught), non-zero otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."

bug=${1:?usage: planted.sh no-flush|stale-read [run arguments...]}
shift
case "$bug" in
  no-flush) feature=planted-bug-no-flush; nemesis=kill ;;
  stale-read) feature=planted-bug-stale-read; nemesis=partition,pause ;;
  *) echo "planted.sh: unknown bug $bug (no-flush, stale-read)" >&2; exit 2 ;;
esac
target=${PLANTED_TARGET_DIR:-target/planted}
cargo build --locked --target-dir "$target" -p cluster --bins --features "cluster/$feature" -p jepsen-tests
exec "$target/debug/jepsen-tests" run --node-bin "$target/debug/whereabouts-node" --nemesis "$nemesis" \
  --time 90 --ops 20000 --think-ms 20 --interval-ms 2000 --expect-anomalies "$@"
