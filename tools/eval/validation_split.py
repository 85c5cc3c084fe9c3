#!/usr/bin/env python3
"""Split the Fashion-MNIST *training* set into a fitting part and a validation
part for choosing LSGM defaults without touching the test set:

  fit-*        the first 50,000 training images (and labels)
  val-c0to5-*  classes 0-5 of the last 10,000 (in-distribution for the c0to5 model)
  val-c6to9-*  classes 6-9 of the last 10,000 (near-OOD for it)

    python3 tools/eval/validation_split.py OUTDIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from prepare_sets import FMNIST, read_idx, write_idx  # noqa: E402


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    x = read_idx(f"{FMNIST}/train-images-idx3-ubyte.gz")
    y = read_idx(f"{FMNIST}/train-labels-idx1-ubyte.gz")
    write_idx(f"{out}/fit-images-idx3-ubyte.gz", x[:50000])
    write_idx(f"{out}/fit-labels-idx1-ubyte.gz", y[:50000])
    xv, yv = x[50000:], y[50000:]
    for name, keep in [("val-c0to5", yv <= 5), ("val-c6to9", yv >= 6)]:
        write_idx(f"{out}/{name}-images-idx3-ubyte.gz", xv[keep])
    print(f"wrote the validation split to {out}")


if __name__ == "__main__":
    main()
