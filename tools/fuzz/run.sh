#!/usr/bin/env bash
# Fuzz the model decoder, the raw frame reader and the .npy frame reader with libFuzzer.
#   cargo install cargo-fuzz
#   bash tools/fuzz/run.sh [RUNS] [SECONDS]
# Each target runs RUNS executions (default 2,000,000) or SECONDS of fuzzing
# (default: no limit), whichever ends first; CI runs a 30-second smoke. An input that
# runs for 10 s is a failure (a hang), not a wait of libFuzzer's default 20 minutes.
# cargo-fuzz wants nightly; RUSTC_BOOTSTRAP=1 lets the stable toolchain build
# it (no sanitizer: the targets are safe Rust, a panic is the failure).
# New inputs go to a temporary corpus; merge the interesting ones back with
#   cargo fuzz run --fuzz-dir tools/fuzz TARGET tools/fuzz/corpus/TARGET TMP -- -merge=1
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-2000000}
seconds=${2:-0}
for t in model_decoder raw_frames npy_frames; do
  tmp=$(mktemp -d)
  if ! RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir tools/fuzz -O --sanitizer none "$t" "$tmp" "tools/fuzz/corpus/$t" \
    -- -runs="$runs" -max_total_time="$seconds" -max_len=4096 -timeout=10 > "$tmp.log" 2>&1; then
    tail -40 "$tmp.log"
    echo "fuzz: $t FAILED (the crashing input is under tools/fuzz/artifacts/$t)"
    exit 1
  fi
  grep -E "^#[0-9]+ +DONE|^Done [0-9]+ runs" "$tmp.log"
  rm -rf "$tmp" "$tmp.log"
done
