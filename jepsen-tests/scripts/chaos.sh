#!/usr/bin/env bash
# The chaos suite in one command, on a fresh Debian machine, as root: installs iproute2,
# nftables, fuse3 and libfaketime if missing, builds whereabouts-node (with the test-only
# `failpoints` feature), jepsen-tests and lazyfs into their own target directory, then runs
# `jepsen-tests run` with the arguments given (see `jepsen-tests run --help`).
#
#   jepsen-tests/scripts/chaos.sh [--profile debug|release] [run arguments...]
#   jepsen-tests/scripts/chaos.sh --nemesis power-loss --episodes 50 --time 3600   # 50 power cuts
#   (docs/chaos.md lists the documented runs: CI's short run, the long run, the power-loss run)
#
# CHAOS_TARGET_DIR overrides the target directory (default target/chaos). Exit code: that of
# `jepsen-tests run` (0 valid, 1 anomalies, 3 unknown, 5 harness failure).
set -euo pipefail
cd "$(dirname "$0")/../.."

profile=release
if [ "${1:-}" = "--profile" ]; then
  profile=$2
  shift 2
fi
target=${CHAOS_TARGET_DIR:-target/chaos}

# iproute2 and nftables: namespaces and partitions; fuse3: the lazyfs mounts (power-loss,
# slow-disk); libfaketime: the clock nemesis (the path is jepsen-tests' --faketime-lib default).
faketime_lib=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
if ! command -v ip >/dev/null 2>&1 || ! command -v nft >/dev/null 2>&1 || ! command -v fusermount3 >/dev/null 2>&1 ||
  [ ! -f "$faketime_lib" ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      iproute2 nftables fuse3 libfaketime faketime >/dev/null
  else
    echo "chaos.sh: needs iproute2, nftables, fuse3 and libfaketime (and root)" >&2
    exit 2
  fi
fi

flags=(--locked --target-dir "$target" -p cluster --bins --features cluster/failpoints -p jepsen-tests -p lazyfs)
if [ "$profile" = release ]; then
  flags+=(--release)
fi
cargo build "${flags[@]}"
exec "$target/$profile/jepsen-tests" run --node-bin "$target/$profile/whereabouts-node" "$@"
