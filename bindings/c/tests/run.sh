#!/usr/bin/env bash
# The C API's tests in C: builds liblsgm_c.a for each TARGET, compiles the
# C test programs against include/lsgm.h and that library with the
# target's C compiler (-std=c11 -Wall -Wextra -Werror -pedantic), and runs
# them (cross targets under qemu-user):
#   score_features  the sample frames' features (fit-and-export features on
#                   models/samples/frames), scored by the C API, must equal
#                   `fit-and-export score` to 1e-6 relative;
#   bad_inputs      every function with every bad input returns its status.
# Needs a host release build of fit-and-export (cargo build --release).
#   bash bindings/c/tests/run.sh [TARGET ...]   (default: the host)
# TARGET: x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
tool="$root/target/release/fit-and-export"
model="$root/models/fmnist-resnet.lsgm"
[ -x "$tool" ] || { echo "run.sh: $tool is missing: run cargo build --release first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The reference: the CLI's scores of the sample frames' features.
"$tool" features --onnx "$root/models/fmnist-resnet.onnx" --lsgm "$model" \
  --data "$root/models/samples/frames" --out "$work/features" 2>/dev/null
"$tool" score "$model" --features "$work/features" > "$work/cli.txt"

host=$(rustc -vV | sed -n 's/^host: //p')
for target in "${@:-$host}"; do
  case "$target" in
    "$host") cc=cc runner=() lib="$root/target/release" ;;
    aarch64-unknown-linux-gnu) cc=aarch64-linux-gnu-gcc runner=(qemu-aarch64 -L /usr/aarch64-linux-gnu) ;;
    armv7-unknown-linux-gnueabihf) cc=arm-linux-gnueabihf-gcc runner=(qemu-arm -L /usr/arm-linux-gnueabihf) ;;
    *) echo "run.sh: unknown target $target (see the list at the top)" >&2; exit 2 ;;
  esac
  if [ "$target" = "$host" ]; then
    cargo build --release --quiet -p lsgm-c
  else
    # The cross-compiled core tests' target directory (.ci/run), so the core is built once per target.
    CARGO_TARGET_DIR="$root/target/cross" cargo build --release --quiet -p lsgm-c --target "$target"
    lib="$root/target/cross/$target/release"
  fi
  for t in score_features bad_inputs; do
    "$cc" -std=c11 -Wall -Wextra -Werror -pedantic -O2 -I"$root/bindings/c/include" "$here/$t.c" \
      "$lib/liblsgm_c.a" -lpthread -ldl -lm -o "$work/$t-$target"
  done
  "${runner[@]}" "$work/bad_inputs-$target" "$model"
  "${runner[@]}" "$work/score_features-$target" "$model" "$work/features" > "$work/c.txt"
  paste "$work/cli.txt" "$work/c.txt" | awk -v t="$target" '
    NF != 2 { bad = 1; print t ": missing score on line " NR; next }
    { d = $1 - $2; if (d < 0) d = -d; a = $1 < 0 ? -$1 : $1;
      if (d > 1e-6 * a) { bad = 1; printf "%s: row %d: CLI %s, C API %s\n", t, NR - 1, $1, $2 } }
    END { if (NR == 0) { print t ": no scores"; exit 1 } exit bad }'
  echo "run.sh: $target: $(wc -l < "$work/c.txt") C API scores equal the CLI's within 1e-6 relative"
done
