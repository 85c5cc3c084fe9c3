#!/usr/bin/env bash
# Reproduces the OOD benchmark tables of docs/detection.md (needs dataset-fashion-mnist,
# ../shared/datasets/mnist-5k-images-idx3-ubyte.gz beside the checkout or at $MNIST, numpy,
# a release build).
#   [MNIST=PATH] bash tools/eval/run_benchmark.sh [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-tools/eval/results}
sets=$(mktemp -d)
python3 tools/eval/prepare_sets.py "$sets" ${MNIST:+--mnist "$MNIST"}
D=/usr/share/datasets/fashion-mnist
bin=target/release/fit-and-export
"$bin" eval --onnx models/fmnist-resnet.onnx --lsgm models/fmnist-resnet.lsgm \
  --in $D/t10k-images-idx3-ubyte.gz --in-labels $D/t10k-labels-idx1-ubyte.gz \
  --ood gaussian --ood rademacher --ood blobs --ood "mnist=$sets/mnist-images-idx3-ubyte.gz" \
  --train $D/train-images-idx3-ubyte.gz --train-labels $D/train-labels-idx1-ubyte.gz --out "$sets/far"
"$bin" eval --onnx models/fmnist-resnet-c0to5.onnx --lsgm models/fmnist-resnet-c0to5.lsgm \
  --in "$sets/test-c0to5-images-idx3-ubyte.gz" --in-labels "$sets/test-c0to5-labels-idx1-ubyte.gz" \
  --ood "near=$sets/test-c6to9-images-idx3-ubyte.gz" \
  --train $D/train-images-idx3-ubyte.gz --train-labels $D/train-labels-idx1-ubyte.gz --classes 0,1,2,3,4,5 \
  --out "$sets/near"
mkdir -p "$out"
cp "$sets/far/report.md" "$out/far-ood.md"; cp "$sets/far/report.json" "$out/far-ood.json"
cp "$sets/near/report.md" "$out/near-ood.md"; cp "$sets/near/report.json" "$out/near-ood.json"
# ROC curves of every method, one plot per OOD set.
for f in "$sets"/far/roc-*.png; do cp "$f" "$out/far-$(basename "$f")"; done
cp "$sets/near/roc-near.png" "$out/near-roc-near.png"
cp "$sets/far/histogram-lsgm.png" "$out/"
echo "results in $out"
