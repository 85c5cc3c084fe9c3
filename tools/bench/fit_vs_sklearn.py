#!/usr/bin/env python3
"""Fit time and log-likelihood: fit-and-export's EM against scikit-learn.

Same data (60,000 rows x layers of 16/32/64/128 features, a seeded mixture of
12 anisotropic clusters), same K, covariance type, tol, reg_covar, max_iter,
both from k-means initialisation. Prints a markdown table.

    cargo build --release -p fit-and-export
    pip install numpy scikit-learn
    python3 tools/bench/fit_vs_sklearn.py [--rows 60000] [--k 10]
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import numpy as np
from sklearn.mixture import GaussianMixture

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def data(rows, dims, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for d in dims:
        centres = rng.normal(0, 3, size=(12, d))
        mix = rng.normal(size=(12, d, d)) / np.sqrt(d) + np.eye(d) * 0.5
        z = rng.integers(0, 12, size=rows)
        x = centres[z] + np.einsum("nij,nj->ni", mix[z], rng.normal(size=(rows, d)))
        out.append(x.astype(np.float32))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=60000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--dims", default="16,32,64,128")
    ap.add_argument("--covariance", default="diag,full")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "fit-and-export"))
    a = ap.parse_args()
    dims = [int(d) for d in a.dims.split(",")]
    layers = data(a.rows, dims)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, x in enumerate(layers):
            np.save(os.path.join(tmp, f"{i}.npy"), x)
        for cov in a.covariance.split(","):
            out = subprocess.run(
                [a.bin, "fit-features", "--features", tmp, "--out", os.path.join(tmp, "m.lsgm"),
                 "--components", str(a.k), "--covariance", cov, "--holdout", "0",
                 "--tol", "1e-3", "--reg-covar", "1e-6", "--max-iter", "100"],
                check=True, capture_output=True, text=True,
            )
            report = json.loads(out.stdout.strip().splitlines()[-1])
            for i, x in enumerate(layers):
                gm = GaussianMixture(a.k, covariance_type=cov, tol=1e-3, reg_covar=1e-6, max_iter=100, random_state=0)
                t0 = time.perf_counter()
                gm.fit(x.astype(np.float64))
                t_sk = time.perf_counter() - t0
                ll_sk = gm.score(x.astype(np.float64))
                lr = report["layers"][i]
                rows.append((cov, dims[i], lr["seconds"], t_sk, t_sk / lr["seconds"], lr["mean_log_likelihood"], ll_sk,
                             lr["iterations"], gm.n_iter_))
    print(f"| covariance | d | fit-and-export s | scikit-learn s | speed-up | LL ours | LL sklearn | iters ours | iters sklearn |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.1f}x | {r[5]:.3f} | {r[6]:.3f} | {r[7]} | {r[8]} |")


if __name__ == "__main__":
    main()
