#!/usr/bin/env python3
"""Train the demo CNNs on Fashion-MNIST and export them to ONNX.

Reproducible (seeded, single-threaded data order). Needs PyTorch (PyPI) and
the Debian package `dataset-fashion-mnist`; used only to make the files in
`models/`, never at run time or in tests.

    pip install torch onnx numpy
    python3 tools/train/train.py --out models/fmnist-resnet.onnx
    python3 tools/train/train.py --classes 0,1,2,3,4,5 --out models/fmnist-resnet-c0to5.onnx
    python3 tools/train/train.py --arch plain --epochs 1 --out tools/fit-and-export/tests/fixtures/plain-cnn.onnx

Input: N×1×28×28 float, pixels scaled to [0, 1] then normalised with
mean 0.2860 and std 0.3530. Output: logits (N × classes).
"""
import argparse
import gzip
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class Block(nn.Module):
    """A ResNet basic block: two 3×3 convs with BatchNorm and a shortcut."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.short is None else self.short(x)))


class ResNet(nn.Module):
    """Stem + 3 stages (16@28², 32@14², 64@7²) + global average pool + linear."""

    def __init__(self, classes):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.stage1 = nn.Sequential(Block(16, 16, 1), Block(16, 16, 1))
        self.stage2 = nn.Sequential(Block(16, 32, 2), Block(32, 32, 1))
        self.stage3 = nn.Sequential(Block(32, 64, 2), Block(64, 64, 1))
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.stage3(self.stage2(self.stage1(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Plain(nn.Module):
    """A differently built network: VGG-style, max-pooling, no residuals, no BN."""

    def __init__(self, classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 24, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Linear(24, classes)

    def forward(self, x):
        x = self.features(x)
        return self.head(x.mean(dim=(2, 3)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", choices=["resnet", "plain"], default="resnet")
    ap.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    classes = [int(c) for c in a.classes.split(",")]
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    torch.use_deterministic_algorithms(True)

    def load(split):
        x = idx(f"{DATA}/{split}-images-idx3-ubyte.gz")
        y = idx(f"{DATA}/{split}-labels-idx1-ubyte.gz").astype(np.int64)
        keep = np.isin(y, classes)
        remap = {c: i for i, c in enumerate(classes)}
        y = np.array([remap[v] for v in y[keep]], dtype=np.int64)
        x = (x[keep].astype(np.float32) / 255.0 - MEAN) / STD
        return torch.from_numpy(x[:, None]), torch.from_numpy(y)

    xtr, ytr = load("train")
    xte, yte = load("t10k")
    net = ResNet(len(classes)) if a.arch == "resnet" else Plain(len(classes))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    steps = a.epochs * ((len(xtr) + 127) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=steps)
    gen = torch.Generator().manual_seed(a.seed)
    for epoch in range(a.epochs):
        net.train()
        t0 = time.time()
        perm = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr), 128):
            b = perm[i: i + 128]
            x = xtr[b]
            # Augmentation: random horizontal flip and ±2 pixel shifts.
            flip = torch.rand(len(b), generator=gen) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            dx, dy = torch.randint(-2, 3, (2,), generator=gen).tolist()
            x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(net(x), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        acc = evaluate(net, xte, yte)
        print(f"epoch {epoch + 1}/{a.epochs} loss {loss.item():.3f} test accuracy {acc:.4f} ({time.time() - t0:.0f} s)", flush=True)
    net.eval()
    torch.onnx.export(
        net, torch.zeros(1, 1, 28, 28), a.out, input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13, dynamo=False,
    )
    print(f"wrote {a.out}; test accuracy {evaluate(net, xte, yte):.4f} on classes {classes}")


def evaluate(net, x, y):
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(x[i: i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return (pred == y).float().mean().item()


if __name__ == "__main__":
    main()
