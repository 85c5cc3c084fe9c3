#!/usr/bin/env python3
"""Make the small sample sets shipped in models/samples/ (so the README demo
and the tests run without the Debian package or ../shared).

    apt-get install dataset-fashion-mnist
    python3 tools/samples/make_samples.py [--mnist ../shared/datasets/mnist-5k-images-idx3-ubyte.gz]

Writes (IDX, gzip; PNG):
  fmnist-train-3000-{images-idx3,labels-idx1}-ubyte.gz  first 3,000 Fashion-MNIST training images
  fmnist-test-500-{images-idx3,labels-idx1}-ubyte.gz    first 500 Fashion-MNIST test images
  mnist-100-images-idx3-ubyte.gz                        first 100 MNIST digits (OOD; CC BY-SA 3.0)
  frames/                                               8 PNGs: 4 test images, 2 digits, 2 noise
"""
import argparse
import os
import struct
import zlib

import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "eval"))
from prepare_sets import FMNIST, read_idx, write_idx  # noqa: E402  (IDX reading/writing lives there)

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "models", "samples")


def write_png(path, img):
    h, w = img.shape
    rows = b"".join(b"\x00" + img[r].tobytes() for r in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnist", default=os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                                    "datasets", "mnist-5k-images-idx3-ubyte.gz"))
    a = ap.parse_args()
    os.makedirs(os.path.join(OUT, "frames"), exist_ok=True)
    xtr, ytr = read_idx(f"{FMNIST}/train-images-idx3-ubyte.gz"), read_idx(f"{FMNIST}/train-labels-idx1-ubyte.gz")
    xte, yte = read_idx(f"{FMNIST}/t10k-images-idx3-ubyte.gz"), read_idx(f"{FMNIST}/t10k-labels-idx1-ubyte.gz")
    mnist = read_idx(a.mnist)
    write_idx(f"{OUT}/fmnist-train-3000-images-idx3-ubyte.gz", xtr[:3000])
    write_idx(f"{OUT}/fmnist-train-3000-labels-idx1-ubyte.gz", ytr[:3000])
    write_idx(f"{OUT}/fmnist-test-500-images-idx3-ubyte.gz", xte[:500])
    write_idx(f"{OUT}/fmnist-test-500-labels-idx1-ubyte.gz", yte[:500])
    write_idx(f"{OUT}/mnist-100-images-idx3-ubyte.gz", mnist[:100])
    rng = np.random.default_rng(0)
    for i in range(4):
        write_png(f"{OUT}/frames/{i:02d}-fmnist-test-{i}.png", xte[i])
    for i in range(2):
        write_png(f"{OUT}/frames/{4 + i:02d}-mnist-{i}.png", mnist[i])
    write_png(f"{OUT}/frames/06-gaussian-noise.png",
              (np.clip(rng.normal(0.5, 0.25, (28, 28)), 0, 1) * 255).round().astype(np.uint8))
    write_png(f"{OUT}/frames/07-uniform-noise.png", rng.integers(0, 256, (28, 28)).astype(np.uint8))
    print(f"wrote samples to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
