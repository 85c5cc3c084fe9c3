#!/usr/bin/env python3
"""Issue #27's last untried variant: the network's own decision as the last
state of the chain (the paper's trace ends at the output).

The chain gains one more transition, from the last tap's components to the
predicted class c = argmax(logits), counted from the fit rows' traces like the
others (argmax responsibility of the last tap against the predicted class,
pseudo-count 1, rows normalised):

    score'(x) = log Σ_k α_L(k) · T[k, c(x)]

where α_L is the forward algorithm's joint at the last tap. Only a research
prototype: it reads the fitted model from `fit-and-export inspect --json`
(means, precision Cholesky factors, projections, weights, transitions), runs
the forward recursion in numpy (float64, log space), and first checks that it
reproduces `fit-and-export score` on every row before adding the new state.

    python3 tools/eval/near_last_state.py WORKDIR    # after near_leads.py

It reuses near_leads.py's fitted models and feature directories (WORKDIR/
leads-*-{fit,in,out}); the test set is never read. Prints one markdown row per
chain and variant, and each tap's mixture alone (the harness's `gmm-layer-I`:
log Σ_k w_k N(x | μ_k, Σ_k)), since issue #27 asks the chain to beat its parts.
"""
import json
import os
import sys

import numpy as np
from scipy.special import logsumexp

sys.path.insert(0, os.path.dirname(__file__))
from near_variants import metrics, run, scores  # noqa: E402

CHAINS = {
    "global means": "leads-stage1.1g1-stage2.1g1-stage3.1g1-raw",
    "2×2 grid on stage1.1, stage2.0": "leads-stage1.1g2-stage2.0g2-raw",
    "2×2 grid on stage1.1, stage2.0, stage2.1": "leads-stage1.1g2-stage2.0g2-stage2.1g2-raw",
    **{f"2×2 grid on stage1.1, stage2.0, at most {d} dimensions": f"leads-stage1.1g2-stage2.0g2-raw-max-dim-{d}"
       for d in (24, 16)},
    "2×2 grid on stage1.1, stage2.1, at most 16 dimensions": "leads-stage1.1g2-stage2.1g2-raw-max-dim-16",
    "2×2 grid on stage1.1, stage2.1, stage3.1, at most 16 dimensions":
        "leads-stage1.1g2-stage2.1g2-stage3.1g2-raw-max-dim-16",
}


def multiply_adds(model):
    """Per frame, counted from the shapes: K·d(d+1)/2 per layer (the triangular precision
    Cholesky products) plus d_in·d for a projected layer (docs/detection.md's count)."""
    total = 0
    for layer in model["layers"]:
        d = layer["dim"]
        total += len(layer["components"]) * d * (d + 1) // 2
        if layer["projection"]:
            total += layer["dim_in"] * d
    return total


def log_densities(layer, x):
    """N × K log N(z | μ_k, Σ_k) (+ the projection's residual density), as src/reference.rs."""
    x = x.astype(np.float64)
    residual = 0.0
    p = layer["projection"]
    if p:
        w = np.array(p["matrix"], np.float64)
        centred = x - np.array(p["mean"], np.float64)
        x = centred @ w.T
        r2 = ((centred - x @ w) ** 2).sum(1)
        var, dof = p["residual_variance"], p["residual_dof"]
        residual = -0.5 * dof * np.log(2 * np.pi * var) - r2 / (2 * var)
    d = x.shape[1]
    out = []
    for c in layer["components"]:
        u = np.array(c["precision_cholesky"], np.float64)  # upper triangular, P = U Uᵀ
        y = (x - np.array(c["mean"], np.float64)) @ u
        out.append(np.log(np.diag(u)).sum() - 0.5 * d * np.log(2 * np.pi) - 0.5 * (y * y).sum(1))
    return np.stack(out, 1) + np.asarray(residual).reshape(-1, 1)


def weighted(layer, x):
    """N × K log w_k N(x | μ_k, Σ_k)."""
    return log_densities(layer, x) + np.array([c["log_weight"] for c in layer["components"]])


def forward(model, feats):
    """Log α of the last tap (N × K), the paper's chain (weights at every layer)."""
    assert model["chain"] == "paper"
    log_alpha = None
    for i, layer in enumerate(model["layers"]):
        ld = weighted(layer, feats[i])
        if log_alpha is None:
            log_alpha = ld
        else:
            t = np.log(np.array(model["transitions"][i - 1], np.float64))
            log_alpha = ld + logsumexp(log_alpha[:, :, None] + t[None], axis=1)
    return log_alpha


def load(d, n):
    return [np.load(f"{d}/{i}.npy") for i in range(n)], np.load(f"{d}/logits.npy")


def main():
    work = sys.argv[1]
    print("| variant | AUROC | TNR@95 |\n|---|---|---|")
    costs = []
    for chain, tag in CHAINS.items():
        model_path = f"{work}/{tag}.lsgm"
        if not os.path.exists(model_path):
            print(f"(skipped {chain}: {model_path} not fitted; run near_leads.py first)", file=sys.stderr)
            continue
        model = json.loads(run("inspect", model_path, "--json"))
        n = len(model["layers"])
        alpha, classes, taps = {}, {}, {}
        for part in ("fit", "in", "out"):
            feats, logits = load(f"{work}/{tag}-{part}", n)
            alpha[part] = forward(model, feats)
            classes[part] = logits.argmax(1)
            taps[part] = [logsumexp(weighted(layer, x), axis=1) for layer, x in zip(model["layers"], feats)]
        for part in ("in", "out"):
            ours, theirs = logsumexp(alpha[part], axis=1), scores(model_path, f"{work}/{tag}-{part}")[0]
            worst = np.abs(ours - theirs).max()
            if worst > 1e-3 * max(1.0, np.abs(theirs).max()):
                sys.exit(f"{tag}-{part}: numpy forward differs from fit-and-export score by {worst}")
        # The last transition, counted like the chain's own (hard, pseudo-count 1): the last tap's
        # argmax responsibility (weights included, as the fit counts) against the predicted class.
        last = model["layers"][-1]
        resp = weighted(last, load(f"{work}/{tag}-fit", n)[0][-1])
        k_fit = resp.argmax(1)
        n_classes = int(max(c.max() for c in classes.values())) + 1
        counts = np.ones((resp.shape[1], n_classes))
        np.add.at(counts, (k_fit, classes["fit"]), 1)
        log_t = np.log(counts / counts.sum(1, keepdims=True))
        s = {p: logsumexp(alpha[p], axis=1) for p in ("in", "out")}
        dims = ", ".join(str(layer["dim"]) for layer in model["layers"])
        costs.append(f"| {chain} | {dims} | {multiply_adds(model):,} |")
        a, t = metrics(s["in"], s["out"])
        print(f"| LSGM, {chain} (numpy forward = fit-and-export score) | {a:.4f} | {t:.4f} |", flush=True)
        s2 = {p: logsumexp(alpha[p] + log_t[:, classes[p]].T, axis=1) for p in ("in", "out")}
        a, t = metrics(s2["in"], s2["out"])
        print(f"| LSGM, {chain}, + predicted class as last state | {a:.4f} | {t:.4f} |", flush=True)
        for i, layer in enumerate(model["layers"]):
            a, t = metrics(taps["in"][i], taps["out"][i])
            name = layer["name"].split("#")[0].split("/")[2]
            print(f"| {chain}: the mixture of {name} alone | {a:.4f} | {t:.4f} |", flush=True)
    print("\n| chain | mixture dimensions | multiply-adds per frame |")
    print("|---|---|---|\n" + "\n".join(costs))


if __name__ == "__main__":
    main()
