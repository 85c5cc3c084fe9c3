#!/usr/bin/env bash
# Issue #27: the grid pooling (`--grid`, model format 5) fitted by the real
# pipeline (tract taps, `fit-and-export --grid`), on the near-OOD validation
# split of variants.sh (training images only; the test set is never read).
# Prints, per variant, the chain's and each tap's own mixture's AUROC / TNR@95.
#   bash tools/eval/grid_variants.sh OUTDIR [NAME…]   # ~5 min per variant on 2 cores
set -euo pipefail
out=${1:?usage: grid_variants.sh OUTDIR [NAME…]}
shift
cd "$(dirname "$0")/../.."
bin=target/release/fit-and-export
[ -f "$out/fit-images-idx3-ubyte.gz" ] || python3 tools/eval/validation_split.py "$out" >/dev/null
onnx=models/fmnist-resnet-c0to5.onnx
s1=/stage1/stage1.1/Relu_1 s20=/stage2/stage2.0/Relu_1 s21=/stage2/stage2.1/Relu_1 s3=/stage3/stage3.1/Relu_1
declare -A flags=(
  [default]=""
  [grid2-d16]="--grid 2 --max-dim 16"
  [grid221-d16]="--grid 2,2,1 --max-dim 16"
  [grid2-s11-s21-d16]="--grid 2 --max-dim 16 --layers $s1,$s21"
  [grid2-s11-s20-d16]="--grid 2 --max-dim 16 --layers $s1,$s20"
  [grid2-s11-s20-d24]="--grid 2 --max-dim 24 --layers $s1,$s20"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(default grid2-d16 grid221-d16 grid2-s11-s20-d16)
echo "| variant | flags | method | AUROC | TNR@95 |"
echo "|---|---|---|---|---|"
for name in "${names[@]}"; do
  # shellcheck disable=SC2086 # the flags are words
  [ -f "$out/$name.lsgm" ] || "$bin" --onnx $onnx --train "$out/fit-images-idx3-ubyte.gz" --labels "$out/fit-labels-idx1-ubyte.gz" \
    --classes 0,1,2,3,4,5 --mean 0.2860 --std 0.3530 --out "$out/$name.lsgm" ${flags[$name]} \
    > "$out/$name.fit.json" 2>/dev/null
  # lsgm and each tap's own mixture (gmm-layer-I): the chain must beat its parts.
  taps=$("$bin" inspect --json "$out/$name.lsgm" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["layers"]))')
  methods=lsgm$(for ((i = 0; i < taps; i++)); do printf ',gmm-layer-%d' $i; done)
  "$bin" eval --onnx $onnx --lsgm "$out/$name.lsgm" --in "$out/val-c0to5-images-idx3-ubyte.gz" \
    --ood "near=$out/val-c6to9-images-idx3-ubyte.gz" --methods "$methods" \
    --out "$out/$name" 2>/dev/null \
    | awk -v n="$name" -v f="${flags[$name]//|/ }" -F'|' '/\| (lsgm|gmm-layer-[0-9]) \|/ {printf "| %s | %s |%s|%s|%s|\n", n, f, $4, $5, $6}'
done
