#!/usr/bin/env bash
# The aarch64 board monitor with its onnxruntime engine, under qemu-user
# (issue #24): it loads the aarch64 onnxruntime wheel's library from PyPI and
# judges the sample frames with the same verdicts as its tract engine.
#
#     bash tools/boards/build.sh aarch64-unknown-linux-gnu     # dist/aarch64-unknown-linux-gnu/lsgm-monitor
#     bash tools/boards/qemu_onnxruntime.sh [ONNXRUNTIME_VERSION]   # default 1.32.0
#
# Needs qemu-user, the aarch64 C libraries (Debian: qemu-user,
# libc6-dev-arm64-cross) and pip (the wheel is downloaded from PyPI into
# target/onnxruntime-aarch64/, once).
#
# Why a fake /proc and /sys: onnxruntime's CPU detection (pytorch/cpuinfo)
# reads /proc/cpuinfo and /sys/devices/system/cpu/*/{topology,cache}. Under
# qemu-user those are the x86-64 host's files, which name no ARM core, and
# onnxruntime crashes with SIGSEGV at a null address after reading them.
# qemu-user looks every absolute path up under its -L prefix first, so a
# prefix that holds a Raspberry Pi 4's cpuinfo (2 Cortex-A72 cores: the
# host's CPU count) and cache topology makes the detection see an ARM board.
# Nothing is timed here: emulated seconds say nothing about a board.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=${1:-1.32.0}
monitor=dist/aarch64-unknown-linux-gnu/lsgm-monitor
[ -x "$monitor" ] || { echo "$monitor is missing: bash tools/boards/build.sh aarch64-unknown-linux-gnu" >&2; exit 2; }

cache=target/onnxruntime-aarch64/$version
lib=$cache/libonnxruntime.so.$version
if [ ! -f "$lib" ]; then
  mkdir -p "$cache"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_28_aarch64 \
    --python-version 3.11 --dest "$cache" "onnxruntime==$version"
  python3 - "$cache" "$version" <<'EOF'
import glob, os, sys, zipfile
cache, version = sys.argv[1:]
wheel = glob.glob(os.path.join(cache, f"onnxruntime-{version}-*.whl"))[0]
name = f"onnxruntime/capi/libonnxruntime.so.{version}"
tmp = os.path.join(cache, f".libonnxruntime.so.{version}.tmp")
with zipfile.ZipFile(wheel) as z, open(tmp, "wb") as out:
    out.write(z.read(name))
os.rename(tmp, os.path.join(cache, f"libonnxruntime.so.{version}"))
EOF
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
ln -s /usr/aarch64-linux-gnu/lib "$root/lib"
mkdir -p "$root/proc"
cpu=$root/sys/devices/system/cpu
mkdir -p "$cpu"
echo 1 >"$cpu/kernel_max"
for f in possible present online; do echo 0-1 >"$cpu/$f"; done
# A Raspberry Pi 4: Cortex-A72 (implementer 0x41, part 0xd08), 32 KB L1d,
# 48 KB L1i per core, 1 MB L2 shared.
for c in 0 1; do
  printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$c" >>"$root/proc/cpuinfo"
  d=$cpu/cpu$c
  mkdir -p "$d/topology" "$d/cpufreq"
  echo 0 >"$d/topology/physical_package_id"
  echo "$c" >"$d/topology/core_id"
  echo "$c" >"$d/topology/thread_siblings_list"
  for f in cluster_cpus_list core_siblings_list package_cpus_list; do echo 0-1 >"$d/topology/$f"; done
  echo 1500000 >"$d/cpufreq/cpuinfo_max_freq"
  echo 600000 >"$d/cpufreq/cpuinfo_min_freq"
  i=0
  for spec in "1 Data 32K $c" "1 Instruction 48K $c" "2 Unified 1024K 0-1"; do
    read -r level type size shared <<<"$spec"
    mkdir -p "$d/cache/index$i"
    echo "$level" >"$d/cache/index$i/level"
    echo "$type" >"$d/cache/index$i/type"
    echo "$size" >"$d/cache/index$i/size"
    echo "$shared" >"$d/cache/index$i/shared_cpu_list"
    echo 64 >"$d/cache/index$i/coherency_line_size"
    i=$((i + 1))
  done
done

run() { qemu-aarch64 -L "$root" "$monitor" --threads 1 "$@" models/samples/frames; }
echo "== tract under qemu-aarch64"
run --engine tract >"$root/tract.jsonl"
echo "== onnxruntime $version (aarch64 wheel) under qemu-aarch64"
run --engine onnxruntime --onnxruntime-lib "$lib" >"$root/onnxruntime.jsonl"
python3 - "$root/tract.jsonl" "$root/onnxruntime.jsonl" <<'EOF'
import json, sys
tract, ort = ([json.loads(l) for l in open(p)] for p in sys.argv[1:])
assert len(tract) == len(ort) == 8, (len(tract), len(ort))
for t, o in zip(tract, ort):
    same = all(t[k] == o[k] for k in ("source", "ood", "class", "worst_layer"))
    rel = abs(t["score"] - o["score"]) / abs(t["score"])
    print(f"{t['source']}: ood {o['ood']}, class {o['class']}, score {o['score']:.4f} "
          f"(tract {t['score']:.4f}, relative difference {rel:.1e})")
    if not same or rel > 1e-3:
        sys.exit(f"{t['source']}: the engines disagree under qemu-aarch64")
print("the aarch64 monitor runs onnxruntime's aarch64 library: same verdicts as tract on the 8 sample frames")
EOF
