#!/usr/bin/env python3
"""Prototype of the one lead near_variants.py found: taps pooled over a 2×2
grid of means instead of the global mean, chained by the real LSGM.

The grid features are computed with onnxruntime and fitted with the release
`fit-and-export fit-features` (as precomputed features, so no format change
is needed to try them); the protocol is near_variants.py's: classes 0-5 of
the first 50,000 training images, less the tenth it holds aside, and the
validation split of validation_split.py. The test set is never read.

    python3 tools/eval/near_grid_lsgm.py WORKDIR    # ~25 min on 2 cores

Prints one markdown row per variant (AUROC, TNR@95 on the validation split).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from near_variants import ONNX, metrics, read_idx, run, scores, split_rows, write_dir  # noqa: E402

TAPS = ["/stage1/stage1.1/Relu_1", "/stage2/stage2.0/Relu_1", "/stage2/stage2.1/Relu_1", "/stage3/stage3.1/Relu_1"]
# (tap index, grid side): 1 = the global mean, 2 = a 2×2 grid of means.
VARIANTS = {
    "global means (the default taps)": [(0, 1), (2, 1), (3, 1)],
    "2×2 grid on stage1.1 and stage2.1, global mean on stage3.1": [(0, 2), (2, 2), (3, 1)],
    "2×2 grid on stage1.1, stage2.0 and stage2.1": [(0, 2), (1, 2), (2, 2)],
    "2×2 grid on stage1.1, global means on stage2.1 and stage3.1": [(0, 2), (2, 1), (3, 1)],
}


def features(images):
    """Per tap, the global means (N × C) and the 2×2 grid of means (N × 4C), and the logits."""
    from near_leads import features as pooled
    return pooled(images, TAPS, (1, 2))


def main():
    work = sys.argv[1]
    _, _, fit_idx = split_rows(work)  # near_variants.py's rows, less its held-aside tenth
    sets = {
        "fit": features(read_idx(f"{work}/split/fit-images-idx3-ubyte.gz")[:50000][fit_idx]),
        "in": features(read_idx(f"{work}/split/val-c0to5-images-idx3-ubyte.gz")),
        "out": features(read_idx(f"{work}/split/val-c6to9-images-idx3-ubyte.gz")),
    }
    print("| variant | AUROC | TNR@95 |\n|---|---|---|")
    for v, (name, spec) in enumerate(VARIANTS.items()):
        taps = [f"{TAPS[t]}#grid{g}" for t, g in spec]
        for part, (pooled, logits) in sets.items():
            write_dir(f"{work}/g{v}-{part}", [pooled[g][t] for t, g in spec], logits, taps)
        model = f"{work}/g{v}.lsgm"
        if not os.path.exists(model):
            run("fit-features", "--features", f"{work}/g{v}-fit", "--out", model)
        (s_in, _), (s_out, _) = scores(model, f"{work}/g{v}-in"), scores(model, f"{work}/g{v}-out")
        a, t = metrics(s_in, s_out)
        print(f"| LSGM, {name} | {a:.4f} | {t:.4f} |", flush=True)


if __name__ == "__main__":
    main()
