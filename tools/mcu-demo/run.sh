#!/usr/bin/env bash
# Builds the Cortex-M4F firmware with the demo model and the features of the
# shipped sample frames, runs it in QEMU (mps2-an386), decodes the defmt log
# and compares every score with the host's for the same features (1e-5
# relative). Exits non-zero on any mismatch. Needs: qemu-system-arm,
# defmt-print (cargo install defmt-print), the thumbv7em-none-eabihf target,
# and a release build of fit-and-export (cargo build --release).
#   bash tools/mcu-demo/run.sh [--c] [MODEL.lsgm]    (default: models/fmnist-resnet.lsgm)
# --c: the C firmware instead (c/main.c linked with the C API's static library
# liblsgm_c.a, built as the Rust firmware is: LTO, the core at opt-level 3, the
# rest for size); it also needs arm-none-eabi-gcc (Debian's gcc-arm-none-eabi).
# QEMU runs with -icount shift=0 (1 ns of virtual time per instruction), so the
# firmware's SysTick ticks are instruction counts: 40 per tick at 25 MHz.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
variant=rust
if [ "${1:-}" = "--c" ]; then variant=c; shift; fi
model=$(realpath "${1:-$root/models/fmnist-resnet.lsgm}")
tool="$root/target/release/fit-and-export"
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT

# 1. Features of the sample frames (tract, on the host) and the host's scores.
"$tool" features --onnx "$root/models/fmnist-resnet.onnx" --lsgm "$model" \
  --data "$root/models/samples/frames" --out "$data/features" 2>/dev/null
"$tool" score "$model" --features "$data/features" > "$data/host.txt"
cp "$model" "$data/model.lsgm"
# Interleave the per-layer .npy files into frame-major raw f32 (stdlib only).
python3 - "$data" <<'PY'
import struct, sys, os
d = sys.argv[1]
layers = []
i = 0
while os.path.exists(f"{d}/features/{i}.npy"):
    raw = open(f"{d}/features/{i}.npy", "rb").read()
    hlen = struct.unpack("<H", raw[8:10])[0]
    header = raw[10:10 + hlen].decode()
    assert "'<f4'" in header and "False" in header, header
    shape = tuple(int(x) for x in header.split("(")[1].split(")")[0].split(",") if x.strip())
    layers.append((shape, raw[10 + hlen:]))
    i += 1
n = layers[0][0][0]
with open(f"{d}/features.bin", "wb") as f:
    for r in range(n):
        for (rows, dim), data in layers:
            f.write(data[r * dim * 4:(r + 1) * dim * 4])
PY

# 2. Build and run the firmware.
if [ "$variant" = rust ]; then
  cd "$here"
  MCU_DATA="$data" cargo build --release --quiet
  elf="$here/target/thumbv7em-none-eabihf/release/mcu-demo"
else
  cd "$root"
  # `cargo rustc --crate-type staticlib`: the crate's cdylib type does not exist on this target.
  CARGO_TARGET_DIR="$root/target/mcu-c" cargo rustc --release --quiet -p lsgm-c --target thumbv7em-none-eabihf \
    --no-default-features --crate-type staticlib --config profile.release.lto=true --config profile.release.codegen-units=1 \
    --config 'profile.release.opt-level="s"' --config profile.release.package.lsgm.opt-level=3
  lib="$root/target/mcu-c/thumbv7em-none-eabihf/release/liblsgm_c.a"
  elf="$data/mcu-c.elf"
  arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -std=c11 -Wall -Wextra -Werror -Os \
    -ffreestanding -nostdlib -ffunction-sections -fdata-sections -Wl,--gc-sections -Wl,-z,noexecstack \
    -T "$here/c/link.ld" -I"$root/bindings/c/include" -DMODEL_PATH="$data/model.lsgm" \
    -DFEATURES_PATH="$data/features.bin" "$here/c/main.c" "$lib" -lgcc -o "$elf"
fi
set +e
timeout 120 qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -icount shift=0 -nographic -monitor none -serial none \
  -semihosting-config enable=on,target=native -kernel "$elf" > "$data/log.bin"
qemu=$?
set -e
if [ "$variant" = rust ]; then
  defmt-print -e "$elf" < "$data/log.bin" > "$data/mcu.txt" || true
else
  # The C firmware prints each score as its float's bits (no printf on the board): as decimals here.
  python3 -c '
import re, struct, sys
for line in sys.stdin:
    m = re.match(r"score (\d+) 0x([0-9a-f]+) (.*)", line)
    if m:
        v = struct.unpack("<f", struct.pack("<I", int(m.group(2), 16)))[0]
        line = "score %s %.9g %s\n" % (m.group(1), v, m.group(3))
    sys.stdout.write(line)' < "$data/log.bin" > "$data/mcu.txt"
fi
cat "$data/mcu.txt"
[ "$qemu" -eq 0 ] || { echo "mcu-demo: QEMU exited with $qemu"; exit 1; }

# 3. Compare.
grep -oE 'score [0-9]+ [-0-9.e+]+' "$data/mcu.txt" | awk '{print $3}' > "$data/mcu-scores.txt"
paste "$data/host.txt" "$data/mcu-scores.txt" | awk '
  NF != 2 { bad = 1; print "mcu-demo: missing score on line " NR; next }
  { d = $1 - $2; if (d < 0) d = -d; a = $1 < 0 ? -$1 : $1; rel = d / (a > 1 ? a : 1);
    if (rel > 1e-5) { bad = 1; printf "mcu-demo: frame %d host %s mcu %s (rel %.2e)\n", NR - 1, $1, $2, rel } }
  END { if (NR == 0) { print "mcu-demo: no scores"; exit 1 } exit bad }'
echo "mcu-demo: $(wc -l < "$data/host.txt") scores match the host within 1e-5 relative"
# Section sizes: .text is the code (the core's, and the firmware's own), .rodata mostly the model.
(arm-none-eabi-size -A "$elf" 2>/dev/null || size -A "$elf") | grep -E '^\.(text|rodata|data|bss) ' || true

# 4. Instruction counts: check the tick scale on the calibration loop, then report.
cal=$(grep -oE 'calibration [0-9]+ ticks' "$data/mcu.txt" | awk '{print $2}')
grep -oE 'ticks=[0-9]+' "$data/mcu.txt" | cut -d= -f2 | awk -v cal="$cal" '
  BEGIN { per = 2000002 / cal;
          if (per < 39.6 || per > 40.4) { printf "mcu-demo: calibration gives %.2f instructions per tick, expected 40 (is -icount on?)\n", per; exit 1 } }
  { n++; s += $1; if (min == "" || $1 < min) min = $1; if ($1 > max) max = $1 }
  END { if (n == 0) exit 1;
        printf "mcu-demo: instructions per score (QEMU icount, ±40): mean %d, min %d, max %d over %d frames\n", 40 * s / n, 40 * min, 40 * max, n }'
