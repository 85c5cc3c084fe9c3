#!/usr/bin/env bash
# Compare LSGM variants on the near-OOD validation split (training images
# only; see validation_split.py). Prints one markdown row per variant.
#   bash tools/eval/variants.sh OUTDIR
set -euo pipefail
out=${1:?usage: variants.sh OUTDIR}
cd "$(dirname "$0")/../.."
bin=target/release/fit-and-export
python3 tools/eval/validation_split.py "$out" >/dev/null
onnx=models/fmnist-resnet-c0to5.onnx
fit() { # name, flags…
  local name=$1; shift
  "$bin" --onnx $onnx --train "$out/fit-images-idx3-ubyte.gz" --labels "$out/fit-labels-idx1-ubyte.gz" \
    --classes 0,1,2,3,4,5 --mean 0.2860 --std 0.3530 --out "$out/$name.lsgm" "$@" > "$out/$name.fit.json" 2>/dev/null
  "$bin" eval --onnx $onnx --lsgm "$out/$name.lsgm" --in "$out/val-c0to5-images-idx3-ubyte.gz" \
    --ood "near=$out/val-c6to9-images-idx3-ubyte.gz" --methods lsgm --out "$out/$name" 2>/dev/null \
    | awk -v n="$name" -v f="$*" -F'|' '/\| lsgm \|/ {printf "| %s | %s |%s|%s|\n", n, f, $5, $6}'
}
echo "| variant | flags | AUROC | TNR@95 |"
echo "|---|---|---|---|"
fit dp-full-paper-hard
fit dp-diag --covariance diag
fit em20-full --components 20
fit dp-markov --chain markov
fit dp-soft --transitions soft
fit dp-pc001 --pseudo-count 0.01
fit dp40 --dp 40
fit dp80 --dp 80
fit dp40-taps6 --dp 40 --layers /stage1/stage1.0/Relu_1,/stage1/stage1.1/Relu_1,/stage2/stage2.0/Relu_1,/stage2/stage2.1/Relu_1,/stage3/stage3.0/Relu_1,/stage3/stage3.1/Relu_1
