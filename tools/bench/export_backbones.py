#!/usr/bin/env python3
"""Export torchvision backbones to ONNX for the edge-network benchmarks.

The weights are RANDOM (seeded), not pretrained: these files exist to measure
inference time, scoring time, model size, fit time and memory, which do not
depend on the weights' values. Detection figures on real weights come from the
pretrained demo (tools/pretrained/). torch is used only here, never at run
time or in tests.

    python3 tools/bench/export_backbones.py --out /tmp/backbones

writes resnet18-224.onnx, mobilenet_v2-224.onnx, mobilenet_v3_small-224.onnx,
efficientnet_b0-224.onnx, resnet18-96.onnx and mobilenet_v2-96.onnx (legacy exporter, opset 17,
1×3×H×W float input named "input", 1000 logits named "logits").
"""

import argparse
import os

import torch
import torchvision

NETWORKS = [
    ("resnet18", 224),
    ("mobilenet_v2", 224),
    ("mobilenet_v3_small", 224),
    ("efficientnet_b0", 224),
    ("resnet18", 96),
    ("mobilenet_v2", 96),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--only", help="comma list of file stems, e.g. resnet18-224")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    only = set(args.only.split(",")) if args.only else None
    for name, size in NETWORKS:
        stem = f"{name}-{size}"
        if only and stem not in only:
            continue
        torch.manual_seed(0)
        net = getattr(torchvision.models, name)(weights=None).eval()
        path = os.path.join(args.out, stem + ".onnx")
        with torch.no_grad():
            torch.onnx.export(
                net,
                torch.randn(1, 3, size, size),
                path,
                dynamo=False,
                opset_version=17,
                input_names=["input"],
                output_names=["logits"],
            )
        print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
