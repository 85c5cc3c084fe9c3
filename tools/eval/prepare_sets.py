#!/usr/bin/env python3
"""Prepare the evaluation sets of docs/detection.md's benchmark as IDX files.

    apt-get install dataset-fashion-mnist
    python3 tools/eval/prepare_sets.py OUTDIR [--mnist ../shared/datasets/mnist-5k-images-idx3-ubyte.gz]

Writes OUTDIR/{test-c0to5,test-c6to9}-{images-idx3,labels-idx1}-ubyte.gz (the
near-OOD split of the Fashion-MNIST test set) and copies MNIST as
OUTDIR/mnist-images-idx3-ubyte.gz. The full test set is used straight from
/usr/share/datasets/fashion-mnist.
"""
import argparse
import gzip
import os
import shutil
import struct
import sys

import numpy as np

FMNIST = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4: 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path, arr):
    # mtime=0 keeps the gzip bytes reproducible.
    header = bytes([0, 0, 8, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--mnist", default=os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                                    "datasets", "mnist-5k-images-idx3-ubyte.gz"))
    a = ap.parse_args()
    if not os.path.isfile(a.mnist):
        sys.exit(f"prepare_sets.py: no MNIST digits at {os.path.normpath(a.mnist)}: give --mnist PATH "
                 "(run_benchmark.sh: MNIST=PATH), the 5,000 digits of ../shared/datasets/")
    os.makedirs(a.out, exist_ok=True)
    x = read_idx(f"{FMNIST}/t10k-images-idx3-ubyte.gz")
    y = read_idx(f"{FMNIST}/t10k-labels-idx1-ubyte.gz")
    for name, keep in [("test-c0to5", y <= 5), ("test-c6to9", y >= 6)]:
        write_idx(os.path.join(a.out, f"{name}-images-idx3-ubyte.gz"), x[keep])
        write_idx(os.path.join(a.out, f"{name}-labels-idx1-ubyte.gz"), y[keep])
    shutil.copy(a.mnist, os.path.join(a.out, "mnist-images-idx3-ubyte.gz"))
    print(f"wrote the evaluation sets to {a.out}")


if __name__ == "__main__":
    main()
