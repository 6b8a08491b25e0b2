#!/usr/bin/env bash
# The mixed-version test (issue 16): a rolling upgrade from the previous release to this tree and
# a rollback, under load, checked by the chaos checker; then the same roll against a node with a
# planted incompatibility (the leader writes the newest log format whatever the cluster version),
# which the checker must catch. Needs root (network namespaces, nftables), like the chaos run.
#
#   scripts/upgrade-test.sh [run arguments for the roll run...]
#
# The previous release is built from a fixed commit (there is no tag yet): release 0.1.0, the last
# landed commit of version 0.1.0 (what users of 0.1.0 run), before versioned formats. Its tree is extracted with `git archive` and its
# whereabouts-node built (debug) in the chaos build's target directory (CHAOS_TARGET_DIR, default
# target/chaos), so that compiled dependencies are shared, and copied out to
# $target/upgrade/whereabouts-node-0.1.0 at once: the build of this tree that follows re-links
# $target/debug/whereabouts-node, which is checked. Run time: about 1.5 minutes (two runs).
set -euo pipefail
cd "$(dirname "$0")/.."

previous_release=0.1.0
previous_commit=bc3455cf27f951e36b70e699f95b730893317b41
target=${CHAOS_TARGET_DIR:-target/chaos}
mkdir -p "$target/upgrade"
target=$(cd "$target" && pwd)
upgrade=$target/upgrade
old_bin=$upgrade/whereabouts-node-$previous_release
results=${UPGRADE_RESULTS:-target/upgrade-results}

step() { printf '\n==> upgrade test: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "upgrade-test.sh needs root (network namespaces, nftables); CI runs it as root" >&2
  exit 2
fi
if ! git cat-file -e "$previous_commit^{commit}" 2>/dev/null; then
  echo "upgrade-test.sh: release $previous_release (commit $previous_commit) is not in this repository" >&2
  echo "  (a shallow clone? git fetch --unshallow, or fetch that commit)" >&2
  exit 2
fi

step "build release $previous_release's whereabouts-node (commit ${previous_commit:0:12})"
# A fixed directory with git archive's fixed mtimes: a second run finds the build fresh.
src=$upgrade/src-$previous_release
rm -rf "$src"
mkdir -p "$src"
git archive "$previous_commit" | tar -x -C "$src"
# Cargo names a workspace member's artifacts after its name, version and path relative to the
# workspace root: two trees of the same version (0.1.0 and this tree were, until 0.2.0) share
# (and overwrite) ipam, raft-store, proto, cluster… artifacts, and a tree whose sources are older
# than the other's artifacts is taken as built. A workspace wrapper (a pass-through) is part of
# the members' artifact names only: the old tree's members always get their own, the registry
# dependencies stay shared. jepsen-tests is named only so that features unify as in the chaos
# build below (0.1.0 has no lazyfs); `--bin whereabouts-node` builds the node alone.
wrapper=$upgrade/rustc-passthrough
if [ ! -x "$wrapper" ]; then
  printf '#!/bin/sh\nexec "$@"\n' >"$wrapper"
  chmod +x "$wrapper"
fi
(cd "$src" && RUSTC_WORKSPACE_WRAPPER="$wrapper" cargo build --locked --target-dir "$target" -p cluster \
  --bin whereabouts-node -p jepsen-tests)
cp "$target/debug/whereabouts-node" "$old_bin.tmp"
mv "$old_bin.tmp" "$old_bin"
rm -rf "$src"

step "build this tree (the chaos build: whereabouts-node with failpoints, jepsen-tests, lazyfs)"
flags=(--locked --target-dir "$target" -p cluster --bins --features cluster/failpoints -p jepsen-tests -p lazyfs)
cargo build "${flags[@]}"
new_bin=$target/debug/whereabouts-node
current_release=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
# Only this tree's node knows log formats beyond 1 (the message of ipam::format::UnsupportedFormat).
marker="this build of whereabouts-rs reads versions"
is_current() {
  [ "$("$new_bin" --version)" = "whereabouts-node $current_release" ] && grep -aqF "$marker" "$new_bin" &&
    ! cmp -s "$old_bin" "$new_bin"
}
if [ "$("$old_bin" --version)" != "whereabouts-node $previous_release" ] || grep -aqF "$marker" "$old_bin"; then
  echo "upgrade-test.sh: $old_bin is not release $previous_release's node" >&2
  exit 1
fi
if ! is_current; then
  echo "upgrade-test.sh: $new_bin is not this tree's node ($current_release)" >&2
  exit 1
fi
new_sum=$(sha256sum "$new_bin" | cut -d' ' -f1)
echo "old: $("$old_bin" --version) $(sha256sum "$old_bin" | cut -c1-16); new: $("$new_bin" --version) $(sha256sum "$new_bin" | cut -c1-16)"

step "roll: 3 nodes start on $previous_release, each rolled to this tree, then twice one rolled back and forward"
roll_rc=0
"$target/debug/jepsen-tests" run --node-bin "$new_bin" --old-node-bin "$old_bin" --nodes 3 --nemesis roll \
  --episodes 7 --time 120 --ops 40000 --think-ms 20 --networks 3 --results "$results" "$@" || roll_rc=$?

step "planted incompatibility (planted-bug-eager-format): the same roll must be caught"
planted_rc=0
PLANTED_TARGET_DIR="$target" bash jepsen-tests/scripts/planted.sh eager-format --old-node-bin "$old_bin" \
  --nodes 3 --results "$results" || planted_rc=$?

# The planted build re-linked $target/debug/whereabouts-node; put this tree's node back.
cargo build "${flags[@]}"
if ! is_current || [ "$(sha256sum "$new_bin" | cut -d' ' -f1)" != "$new_sum" ]; then
  echo "upgrade-test.sh: $new_bin was not restored" >&2
  exit 1
fi
if [ "$roll_rc" -ne 0 ] || [ "$planted_rc" -ne 0 ]; then
  echo "upgrade test failed: roll exit $roll_rc, planted run exit $planted_rc (results in $results)" >&2
  exit 1
fi
echo "upgrade test passed: the roll was valid, the planted incompatibility was caught"
