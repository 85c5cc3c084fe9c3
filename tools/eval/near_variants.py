#!/usr/bin/env python3
"""Near-OOD variant research on the validation split (training images only).

Extracts pooled features of every residual block of the classes-0-5 model,
fits LSGM variants with the release `fit-and-export` on the first 50,000
training images (classes 0-5; a tenth held aside to standardise per-layer
contributions), and scores the validation split of tools/eval/validation_split.py
(classes 0-5 of the last 10,000 training images in, 6-9 out). The test set is
never read. Prints one markdown row per variant.

    python3 tools/eval/near_variants.py WORKDIR     # ~10 min on 2 cores

Needs numpy, scikit-learn, onnx, onnxruntime and a release build.
"""
import gzip
import json
import os
import subprocess
import sys
import warnings

import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "../.."))
FAE = os.path.join(ROOT, "target/release/fit-and-export")
ONNX = os.path.join(ROOT, "models/fmnist-resnet-c0to5.onnx")
TAPS = ["/stem/stem.2/Relu"] + [f"/stage{s}/stage{s}.{b}/Relu_1" for s in (1, 2, 3) for b in (0, 1)]
AUTO = [2, 4, 6]  # the taps `--layers auto` picks (one per resolution stage)
warnings.filterwarnings("ignore")


def read_idx(path):
    with gzip.open(path) as f:
        d = f.read()
    nd = d[3]
    dims = [int.from_bytes(d[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(d, np.uint8, offset=4 + 4 * nd).reshape(dims)


def run(*args):
    r = subprocess.run([FAE, *args], capture_output=True, text=True)
    if r.returncode:
        sys.exit(r.stderr)
    return r.stdout


def extract(work, name):
    out = f"{work}/feat-{name}"
    if not os.path.exists(f"{out}/layers.txt"):
        run("features", "--onnx", ONNX, "--layers", ",".join(TAPS), "--mean", "0.2860", "--std", "0.3530",
            "--data", f"{work}/split/{name}-images-idx3-ubyte.gz", "--out", out)
    return [np.load(f"{out}/{i}.npy") for i in range(len(TAPS))], np.load(f"{out}/logits.npy")


def write_dir(d, xs, logits, taps):
    os.makedirs(d, exist_ok=True)
    for i, x in enumerate(xs):
        np.save(f"{d}/{i}.npy", x.astype(np.float32))
    np.save(f"{d}/logits.npy", logits.astype(np.float32))
    with open(f"{d}/layers.txt", "w") as f:
        f.write("\n".join(taps) + "\n")


def scores(model, d):
    rows = [json.loads(line) for line in run("score", model, "--features", d, "--json").splitlines()]
    return np.array([r["score"] for r in rows]), np.array([r["layers"] for r in rows])


def metrics(s_in, s_out):
    y = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
    return roc_auc_score(y, np.r_[s_in, s_out]), float((s_out < np.percentile(s_in, 5)).mean())


def row(name, s_in, s_out):
    a, t = metrics(s_in, s_out)
    print(f"| {name} | {a:.4f} | {t:.4f} |", flush=True)


def lsgm(work, tag, taps, fit, cal, val):
    """Fits LSGM on `taps` with the default flags; returns contributions of cal, in, out."""
    names = [TAPS[i] for i in taps]
    sub = lambda xs, idx: [xs[i][idx] for i in taps]  # noqa: E731
    write_dir(f"{work}/{tag}-fit", sub(fit[0], fit[2]), fit[1][fit[2]], names)
    write_dir(f"{work}/{tag}-cal", sub(fit[0], cal), fit[1][cal], names)
    model = f"{work}/{tag}.lsgm"
    if not os.path.exists(model):
        run("fit-features", "--features", f"{work}/{tag}-fit", "--out", model)
    out = [scores(model, f"{work}/{tag}-cal")[1]]
    for part, (xs, logits) in val.items():
        d = f"{work}/{tag}-{part}"
        write_dir(d, [xs[i] for i in taps], logits, names)
        out.append(scores(model, d)[1])
    return out


def contribution_variants(cc, ci, co):
    mu, sd = cc.mean(0), cc.std(0)
    med = np.median(cc, 0)
    mad = np.median(np.abs(cc - med), 0) * 1.4826
    row("sum of contributions (the LSGM score)", ci.sum(1), co.sum(1))
    row("contributions standardised by held-aside mean / sd, summed", ((ci - mu) / sd).sum(1), ((co - mu) / sd).sum(1))
    row("same with median / MAD", ((ci - med) / mad).sum(1), ((co - med) / mad).sum(1))
    row("smallest standardised contribution", ((ci - mu) / sd).min(1), ((co - mu) / sd).min(1))
    prec = np.linalg.inv(np.cov(cc.T))
    one = lambda c: -np.einsum("ij,jk,ik->i", np.minimum(c - mu, 0), prec, np.minimum(c - mu, 0))  # noqa: E731
    two = lambda c: -np.einsum("ij,jk,ik->i", c - mu, prec, c - mu)  # noqa: E731
    row("Gaussian over the contribution vector, one-sided", one(ci), one(co))
    row("Gaussian over the contribution vector, two-sided", two(ci), two(co))

    def fisher(c):
        total = 0
        for i in range(c.shape[1]):
            s = np.sort(cc[:, i])
            total = total + np.log((np.searchsorted(s, c[:, i]) + 1) / (len(s) + 1))
        return total
    row("Fisher sum of per-layer empirical log p-values", fisher(ci), fisher(co))
    for w in (0.5, 0.25, 0.0):
        wv = np.array([1.0, 1.0, w])
        row(f"standardised, classifier-level tap weighted {w}", (((ci - mu) / sd) * wv).sum(1), (((co - mu) / sd) * wv).sum(1))


def single_tap_variants(work, fit, val, labels):
    """scikit-learn GaussianMixture on one tap: transforms, class-conditional, spatial grid."""
    rng = np.random.default_rng(1)
    sub = rng.choice(fit[2], 12000, replace=False)
    (xi, li), (xo, lo) = val["val-c0to5"], val["val-c6to9"]
    tf = {"raw": lambda x: x, "sqrt": np.sqrt, "log": lambda x: np.log(x + 1e-2)}
    for t in [2, 3, 4, 6]:
        for name, f in tf.items():
            g = GaussianMixture(20, covariance_type="full", reg_covar=1e-4, random_state=0, max_iter=200)
            g.fit(f(fit[0][t][sub]))
            row(f"{TAPS[t]} alone, {name} features, K = 20", g.score_samples(f(xi[t])), g.score_samples(f(xo[t])))
        x, y = fit[0][t][fit[2]], labels[fit[2]]
        gs = [GaussianMixture(5, covariance_type="full", reg_covar=1e-4, random_state=0).fit(x[y == c][:3000])
              for c in range(6)]
        pick = lambda xs, lg: np.stack([g.score_samples(xs) for g in gs], 1)[np.arange(len(xs)), lg.argmax(1)]  # noqa
        row(f"{TAPS[t]} alone, class-conditional on the predicted class, K = 5 per class",
            pick(xi[t], li), pick(xo[t], lo))


def grid_variants(work, fit_idx):
    """2×2 average pooling instead of the global mean, on raw tap maps (onnxruntime)."""
    import onnx
    import onnxruntime as ort
    m = onnx.load(ONNX)
    names = [TAPS[t] + "_output_0" for t in (2, 3, 4, 6)]
    for n in names:
        m.graph.output.append(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(m.SerializeToString())

    def feats(imgs):
        x = ((imgs.astype(np.float32) / 255 - 0.2860) / 0.3530)[:, None]
        out = {n: [] for n in names}
        for i in range(0, len(x), 500):
            for n, a in zip(names, sess.run(names, {"input": x[i:i + 500]})):
                hs, ws = np.array_split(np.arange(a.shape[2]), 2), np.array_split(np.arange(a.shape[3]), 2)
                out[n].append(np.concatenate([a[:, :, h][:, :, :, w].mean((2, 3)) for h in hs for w in ws], 1))
        return {n: np.concatenate(v) for n, v in out.items()}
    imgs = read_idx(f"{work}/split/fit-images-idx3-ubyte.gz")
    sub = np.random.default_rng(1).choice(fit_idx, 12000, replace=False)
    f, fi, fo = (feats(imgs[sub]), feats(read_idx(f"{work}/split/val-c0to5-images-idx3-ubyte.gz")),
                 feats(read_idx(f"{work}/split/val-c6to9-images-idx3-ubyte.gz")))
    for n in names:
        p = PCA(min(64, f[n].shape[1]), random_state=0).fit(f[n])
        g = GaussianMixture(20, covariance_type="full", reg_covar=1e-4, random_state=0, max_iter=200)
        g.fit(p.transform(f[n]))
        row(f"{n[:-9]} alone, 2×2 grid of means ({f[n].shape[1]} → PCA 64), K = 20",
            g.score_samples(p.transform(fi[n])), g.score_samples(p.transform(fo[n])))


def split_rows(work):
    """Writes the validation split into WORKDIR/split and returns the fit
    labels, the held-aside tenth of the classes-0-5 fit rows and the rest."""
    os.makedirs(work, exist_ok=True)
    subprocess.run([sys.executable, os.path.join(ROOT, "tools/eval/validation_split.py"), f"{work}/split"],
                   check=True, capture_output=True)
    labels = read_idx(f"{work}/split/fit-labels-idx1-ubyte.gz")[:50000]
    keep = np.where(labels <= 5)[0]
    np.random.default_rng(0).shuffle(keep)
    return labels, np.sort(keep[:len(keep) // 10]), np.sort(keep[len(keep) // 10:])


def main():
    work = sys.argv[1]
    labels, cal, fit_idx = split_rows(work)
    xs, logits = extract(work, "fit")
    fit = (xs, logits, fit_idx)
    val = {n: extract(work, n) for n in ("val-c0to5", "val-c6to9")}
    print("| variant | AUROC | TNR@95 |\n|---|---|---|")
    cc, ci, co = lsgm(work, "auto", AUTO, fit, cal, val)
    contribution_variants(cc, ci, co)
    for tag, taps in [("t234", [2, 3, 4]), ("t1234", [1, 2, 3, 4]), ("t24", [2, 4])]:
        _, ci, co = lsgm(work, tag, taps, fit, cal, val)
        row("LSGM on taps " + ", ".join(TAPS[t] for t in taps), ci.sum(1), co.sum(1))
    single_tap_variants(work, fit, val, labels)
    grid_variants(work, fit_idx)


if __name__ == "__main__":
    main()
