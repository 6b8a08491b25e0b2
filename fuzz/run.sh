#!/usr/bin/env bash
# Runs every fuzz target for SECONDS_PER_TARGET seconds (default 15), one after another.
#
#   fuzz/run.sh [SECONDS_PER_TARGET]        from anywhere
#
# Installs cargo-fuzz if missing. The toolchain is stable: cargo-fuzz's nightly-only flags are
# allowed with RUSTC_BOOTSTRAP=1 (set here, for these builds only). New inputs go to a scratch
# corpus (fuzz/target/... or $CARGO_TARGET_DIR/fuzz), so the committed seed corpora under
# fuzz/corpus/ stay small; a crash stops the script with libFuzzer's report and the input under
# fuzz/artifacts/<target>/.
#
# Environment: FUZZ_TARGETS (space-separated subset), FUZZ_SANITIZER (none | address; default
# none: the code is safe Rust and a sanitizer halves the executions per second),
# FUZZ_KEEP_CORPUS=1 to keep the scratch corpus, FUZZ_SEED=N for libFuzzer's -seed (default:
# random), FUZZ_RUNS=N to stop each target after N inputs instead of after SECONDS_PER_TARGET
# (which then only stops a target that runs over ten times that long). With FUZZ_SEED and
# FUZZ_RUNS a run explores the same inputs on any machine, loaded or not: a time bound explores
# fewer inputs on a busy machine, so a finding could fail one run and pass the next. Each run's full libFuzzer log is kept in
# fuzz/artifacts/<target>.log (beside, not in, the directory of failing inputs).
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-15}
targets=${FUZZ_TARGETS:-"config_load plugin_run event_apply event_ops snapshot_decode"}
sanitizer=${FUZZ_SANITIZER:-none}
target_dir=${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/fuzz}
target_dir=${target_dir:-$PWD/target}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

build() {
  cargo fuzz build --sanitizer "$sanitizer" --target-dir "$target_dir" "$@"
}

echo "==> building the fuzz targets (sanitizer: $sanitizer, target dir: $target_dir)"
# By name: a plain `cargo fuzz build` would also build the gen-corpus tool with the fuzzer's
# instrumentation, which does not link without libFuzzer.
for t in $targets; do
  build "$t"
done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/wb-fuzz-corpus.XXXXXX")
if [ "${FUZZ_KEEP_CORPUS:-0}" != 1 ]; then
  trap 'rm -rf "$scratch"' EXIT
fi
for t in $targets; do
  echo "==> fuzzing $t for ${FUZZ_RUNS:+$FUZZ_RUNS inputs, at most }${seconds}s"
  mkdir -p "$scratch/$t" "artifacts/$t"
  # The first corpus directory receives new inputs; the committed seeds are only read.
  log="artifacts/$t.log"
  seed_flag=()
  [ -n "${FUZZ_SEED:-}" ] && seed_flag=(-seed="$FUZZ_SEED")
  bound=(-max_total_time="$seconds")
  [ -n "${FUZZ_RUNS:-}" ] && bound=(-runs="$FUZZ_RUNS" -max_total_time="$((seconds * 10))")
  if ! cargo fuzz run --sanitizer "$sanitizer" --target-dir "$target_dir" "$t" "$scratch/$t" "corpus/$t" -- \
    "${bound[@]}" -timeout=10 -rss_limit_mb=4096 -max_len=8192 -print_final_stats=1 \
    "${seed_flag[@]}" >"$log" 2>&1; then
    # libFuzzer's report is above cargo-fuzz's summary; the input is named in both.
    grep -E '^(==[0-9]+== ERROR|SUMMARY|thread .* panicked)|Test unit written to|^artifact_prefix' "$log" || true
    tail -n 60 "$log"
    echo "==> $t failed; failing inputs in fuzz/artifacts/$t/:" >&2
    ls -l "artifacts/$t" >&2
    for f in "artifacts/$t"/*; do
      [ -f "$f" ] && { echo "--- $f" >&2; head -c 2048 "$f" | od -c | head -n 40 >&2; }
    done
    exit 1
  fi
  tail -n 12 "$log"
done
echo "==> fuzzing finished: ${FUZZ_RUNS:+$FUZZ_RUNS inputs, at most }${seconds}s per target, no crash"
