#!/usr/bin/env bash
# The test command: formatting, lints, then every test of the workspace.
# Usage: scripts/test.sh            (from anywhere; needs cargo, cargo-nextest)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build the binaries the end-to-end tests run"
cargo build --workspace --bins --locked

step "cargo nextest run --workspace"
cargo nextest run --workspace --locked --no-fail-fast
