#!/usr/bin/env bash
# A chaos run against a node built with a deliberate bug, which the checker must catch. Planted
# bugs are test-only cargo features that refuse to compile in release builds, so the node is a
# debug build in its own target directory (target/planted).
#
#   jepsen-tests/scripts/planted.sh no-flush     # the log flusher acknowledges appends unflushed; kill -9 every node
#   jepsen-tests/scripts/planted.sh stale-read   # Check answers from a follower's local state; partitions and pauses
#   jepsen-tests/scripts/planted.sh no-fsync     # acknowledgments follow sled's flush only; power cuts of every node
#   jepsen-tests/scripts/planted.sh no-describe  # a wiped member rejoins under its old id without asking; lost volumes
#   jepsen-tests/scripts/planted.sh eager-format --old-node-bin PATH
#                                                # the leader writes format 2 whatever the cluster version; a rolling
#                                                # upgrade from PATH (release 0.1.0's node) and a rollback
#
# Extra arguments go to `jepsen-tests run`. Exit 0 when the checker found anomalies (the bug was
# caught), non-zero otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."

bug=${1:?usage: planted.sh no-flush|stale-read|no-fsync|no-describe|eager-format [run arguments...]}
shift
time=90
extra=()
case "$bug" in
  no-flush) feature=planted-bug-no-flush; nemesis=kill ;;
  stale-read) feature=planted-bug-stale-read; nemesis=partition,pause ;;
  no-fsync) feature=planted-bug-no-fsync; nemesis=power-loss ;;
  no-describe) feature=planted-bug-no-describe; nemesis=wipe ;;
  eager-format)
    feature=planted-bug-eager-format; nemesis=roll; time=150; extra=(--episodes 5)
    case " $* " in
      *" --old-node-bin "* | *" --old-node-bin="*) ;;
      *) echo "planted.sh eager-format needs --old-node-bin PATH (scripts/upgrade-test.sh builds release 0.1.0's node)" >&2
        exit 2 ;;
    esac ;;
  *) echo "planted.sh: unknown bug $bug (no-flush, stale-read, no-fsync, no-describe, eager-format)" >&2; exit 2 ;;
esac
target=${PLANTED_TARGET_DIR:-target/planted}
cargo build --locked --target-dir "$target" -p cluster --bins --features "cluster/$feature" -p jepsen-tests -p lazyfs
exec "$target/debug/jepsen-tests" run --node-bin "$target/debug/whereabouts-node" --nemesis "$nemesis" \
  --time "$time" --ops 20000 --think-ms 20 --interval-ms 2000 --expect-anomalies "${extra[@]}" "$@"
