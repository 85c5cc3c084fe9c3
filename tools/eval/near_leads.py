#!/usr/bin/env python3
"""Issue #27's LSGM variants on the near-OOD validation split, before any is
built into the model format: spatial taps, normalised features, and the
network's own decision (its logits' energy) as one more term.

Protocol as near_variants.py and near_grid_lsgm.py (whose feature code this
reuses): the classes-0-5 network, classes 0-5 of the first 50,000 training
images less the tenth near_variants.py holds aside, fitted with the release
`fit-and-export fit-features` (precomputed features: no format change is needed
to try a pooling or a normalisation), scored with `fit-and-export score`, and
judged on the validation split of validation_split.py (classes 0-5 of the last
10,000 training images in, 6-9 out). The test set is never read.

    python3 tools/eval/near_leads.py WORKDIR [TEXT]  # ~1.5 h on 2 cores; TEXT: only variants naming it

Variants (each a chain over three taps, the default flags):
- pooling: the global mean of each tap (the default), or a 2x2 grid of means;
- `l2`: each tap's row divided by its L2 norm before the mixture (what
  Mahalanobis++, Mueller & Hein 2025, found for Gaussian models of deep
  features); `l2+norm`: the same with log ||f|| kept as one more coordinate;
- `+ energy`: the LSGM score plus the logits' energy logsumexp(z) (Liu et al.
  2020), both log-densities up to a constant, added unweighted: the
  classifier's confidence as one more factor of the joint likelihood.
Also the energy alone, for reference. Prints one markdown row per variant.
"""
import os
import sys

import numpy as np
from scipy.special import logsumexp

sys.path.insert(0, os.path.dirname(__file__))
from near_variants import ONNX, metrics, read_idx, run, scores, split_rows, write_dir  # noqa: E402

TAPS = ["/stage1/stage1.0/Relu_1", "/stage1/stage1.1/Relu_1", "/stage2/stage2.0/Relu_1",
        "/stage2/stage2.1/Relu_1", "/stage3/stage3.1/Relu_1"]
SIDES = (1, 2, 3)

# (tap index into TAPS, grid side), normalisations, extra fit flags: the default taps, and the
# best grid chain of near_grid_lsgm.py; the last rows cap the mixture dimension (`--max-dim`)
# so that the grid fits the budget of 2x the default's multiply-adds.
CHAINS = {
    "global means": ([(1, 1), (3, 1), (4, 1)], ["raw", "l2", "l2+norm"]),
    "2×2 grid on stage1.1, stage2.0, stage2.1": ([(1, 2), (2, 2), (3, 2)], ["raw", "l2", "l2+norm"]),
    "2×2 grid on stage1.1, stage2.0": ([(1, 2), (2, 2)], ["raw"]),
    "3×3 grid on stage1.1, 2×2 grid on stage2.0, stage2.1": ([(1, 3), (2, 2), (3, 2)], ["raw"]),
    "2×2 grid on stage1.0, stage1.1, stage2.0, stage2.1": ([(0, 2), (1, 2), (2, 2), (3, 2)], ["raw"]),
    "2×2 grid on stage1.1, stage2.0, stage2.1, global mean on stage3.1": ([(1, 2), (2, 2), (3, 2), (4, 1)], ["raw"]),
    **{f"2×2 grid on stage1.1, stage2.0, at most {d} dimensions": ([(1, 2), (2, 2)], ["raw"], ["--max-dim", str(d)])
       for d in (32, 24, 20, 16)},
    **{f"2×2 grid on stage1.1, stage2.0, stage2.1, at most {d} dimensions":
       ([(1, 2), (2, 2), (3, 2)], ["raw"], ["--max-dim", str(d)]) for d in (24, 20, 16)},
    # `--layers auto`'s taps (one per resolution stage) with a grid, and without the last one.
    "2×2 grid on stage1.1, stage2.1, at most 16 dimensions": ([(1, 2), (3, 2)], ["raw"], ["--max-dim", "16"]),
    "2×2 grid on stage1.1, stage2.1, stage3.1, at most 16 dimensions":
        ([(1, 2), (3, 2), (4, 2)], ["raw"], ["--max-dim", "16"]),
    # Every residual block of the first two stages: a tap rule that needs no choice on OOD data.
    "2×2 grid on stage1.0, stage1.1, stage2.0, stage2.1, at most 16 dimensions":
        ([(0, 2), (1, 2), (2, 2), (3, 2)], ["raw"], ["--max-dim", "16"]),
    **{f"global means, at most {d} dimensions": ([(1, 1), (3, 1), (4, 1)], ["raw"], ["--max-dim", str(d)])
       for d in (16, 12)},
}


def features(images, taps=TAPS, sides=SIDES):
    """Per grid side, per tap: the means over a side × side grid of cells (N × side²·C,
    cell-major), and the logits (near_grid_lsgm.py's too)."""
    import onnx
    import onnxruntime as ort
    m = onnx.load(ONNX)
    names = [t + "_output_0" for t in taps]
    for n in names:
        m.graph.output.append(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    x = ((images.astype(np.float32) / 255 - 0.2860) / 0.3530)[:, None]
    pooled = {g: [[] for _ in names] for g in sides}
    logits = []
    for i in range(0, len(x), 500):
        out = sess.run(names + ["logits"], {"input": x[i:i + 500]})
        for j, a in enumerate(out[:-1]):
            for g in sides:
                hs, ws = np.array_split(np.arange(a.shape[2]), g), np.array_split(np.arange(a.shape[3]), g)
                pooled[g][j].append(np.concatenate([a[:, :, h][:, :, :, w].mean((2, 3)) for h in hs for w in ws], 1))
        logits.append(out[-1])
    return {g: [np.concatenate(v) for v in p] for g, p in pooled.items()}, np.concatenate(logits)


def normalise(x, how):
    if how == "raw":
        return x
    n = np.linalg.norm(x, axis=1, keepdims=True)
    y = x / np.maximum(n, 1e-12)
    return y if how == "l2" else np.concatenate([y, np.log(np.maximum(n, 1e-12))], 1)


def main():
    work = sys.argv[1]
    _, _, fit_idx = split_rows(work)
    cache = f"{work}/leads-features-v2.npz"
    if os.path.exists(cache):
        z = np.load(cache, allow_pickle=True)
        sets = z["sets"].item()
    else:
        sets = {
            "fit": features(read_idx(f"{work}/split/fit-images-idx3-ubyte.gz")[:50000][fit_idx]),
            "in": features(read_idx(f"{work}/split/val-c0to5-images-idx3-ubyte.gz")),
            "out": features(read_idx(f"{work}/split/val-c6to9-images-idx3-ubyte.gz")),
        }
        np.savez(cache, sets=np.array(sets, dtype=object))
    energy = {part: logsumexp(logits, axis=1) for part, (_, logits) in sets.items()}
    print("| variant | AUROC | TNR@95 |\n|---|---|---|")
    a, t = metrics(energy["in"], energy["out"])
    print(f"| energy of the logits alone | {a:.4f} | {t:.4f} |", flush=True)
    only = sys.argv[2] if len(sys.argv) > 2 else ""
    for chain, (spec, norms, *flags) in CHAINS.items():
        if only not in chain:
            continue
        flags = flags[0] if flags else []
        for how in norms:
            tag = f"{work}/leads-" + "-".join(f"{TAPS[i].split('/')[2]}g{g}" for i, g in spec) + f"-{how}"
            tag += "".join(f"-{f.strip('-')}" for f in flags)
            taps = [f"{TAPS[i]}#grid{g}#{how}" for i, g in spec]
            for part, (pooled, logits) in sets.items():
                write_dir(f"{tag}-{part}", [normalise(pooled[g][i], how) for i, g in spec], logits, taps)
            model = f"{tag}.lsgm"
            if not os.path.exists(model):
                run("fit-features", "--features", f"{tag}-fit", "--out", model, *flags)
            (s_in, _), (s_out, _) = scores(model, f"{tag}-in"), scores(model, f"{tag}-out")
            a, t = metrics(s_in, s_out)
            print(f"| LSGM, {chain}, {how} | {a:.4f} | {t:.4f} |", flush=True)
            a, t = metrics(s_in + energy["in"], s_out + energy["out"])
            print(f"| LSGM, {chain}, {how} + energy | {a:.4f} | {t:.4f} |", flush=True)


if __name__ == "__main__":
    main()
