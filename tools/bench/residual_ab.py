#!/usr/bin/env python3
"""A/B of the projection residual term (format version 4) on one fitted model.

Scores the same mixtures with and without every projected layer's residual
term, in f64 numpy with the Lsgm scorer of python_reference.py, and prints
AUROC and TNR@95TPR (in-distribution positive) for each. Features come from
`fit-and-export features --lsgm MODEL` (directories with layers.txt and
0.npy, 1.npy, ...).

    fit-and-export features --onnx NET --lsgm M.lsgm --data IN.npy --out f-in
    fit-and-export features --onnx NET --lsgm M.lsgm --data OOD.npy --out f-out
    python3 tools/bench/residual_ab.py M.lsgm f-in f-out

Needs numpy and scikit-learn; `target/release/fit-and-export` (for inspect --json).
"""
import json
import os
import subprocess
import sys

import numpy as np
from sklearn.metrics import roc_auc_score

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from python_reference import Lsgm  # noqa: E402

TOOL = os.path.join(HERE, "../../target/release/fit-and-export")


def load(d):
    names = [n for n in open(os.path.join(d, "layers.txt")).read().split("\n") if n.strip()]
    return [np.load(os.path.join(d, f"{i}.npy")).astype(np.float64) for i in range(len(names))]


def scores(m, feats, residual):
    saved = [l["proj"] for l in m.layers]
    if not residual:
        # σ² → 1e300, ν → 0: the term is 0 to double precision.
        for l in m.layers:
            if l["proj"] is not None:
                l["proj"] = (l["proj"][0], l["proj"][1], 1e300, 0.0)
    out = np.array([m.score([f[r] for f in feats]) for r in range(feats[0].shape[0])])
    for l, p in zip(m.layers, saved):
        l["proj"] = p
    return out


def main():
    model, din, dout = sys.argv[1:4]
    j = json.loads(subprocess.run([TOOL, "inspect", "--json", model], check=True, capture_output=True).stdout)
    m = Lsgm(j)
    fi, fo = load(din), load(dout)
    for residual in (True, False):
        si, so = scores(m, fi, residual), scores(m, fo, residual)
        y = np.r_[np.ones(len(si)), np.zeros(len(so))]
        auroc = roc_auc_score(y, np.r_[si, so])
        tnr = float((so < np.quantile(si, 0.05)).mean())
        print(f"residual term {'on ' if residual else 'off'}: AUROC {auroc:.4f}  TNR@95TPR {tnr:.4f}")


if __name__ == "__main__":
    main()
