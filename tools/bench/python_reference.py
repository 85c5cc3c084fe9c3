#!/usr/bin/env python3
"""A Python reference monitor: onnxruntime + numpy scoring of the same .lsgm
(via `fit-and-export inspect --json`). Prints frames/s and per-frame medians,
and checks that its scores equal lsgm-monitor's.

    pip install onnx onnxruntime numpy
    cargo build --release
    python3 tools/bench/python_reference.py [--frames 2000]
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import time

import numpy as np
import onnx
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def images(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    n, h, w = struct.unpack(">III", raw[4:16])
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, h, w)


class Lsgm:
    """Forward algorithm in log space over the parameters of inspect --json."""

    def __init__(self, j):
        self.chain = j["chain"]
        self.layers = []
        for l in j["layers"]:
            comps = l["components"]
            proj = l["projection"]
            self.layers.append({
                "proj": None if proj is None else (np.array(proj["mean"]), np.array(proj["matrix"]),
                                                   proj["residual_variance"], proj["residual_dof"]),
                "full": l["covariance"] == "full",
                "logw": np.array([c["log_weight"] for c in comps]),
                "mean": np.array([c["mean"] for c in comps]),
                "U": np.array([c["precision_cholesky"] for c in comps]),
                "lognorm": np.array([c["log_norm"] for c in comps]),
            })
        self.logA = [np.log(np.maximum(np.array(t), 1e-300)) for t in j["transitions"]]
        self.threshold = j["threshold"]

    def score(self, feats):
        la = None
        for i, (l, x) in enumerate(zip(self.layers, feats)):
            residual = 0.0
            if l["proj"] is not None:
                m, w, var, dof = l["proj"]
                c = x - m
                x = w @ c
                # The dropped part's isotropic Gaussian (format version 4).
                r2 = max(float(c @ c - x @ x), 0.0)
                residual = -0.5 * dof * np.log(2 * np.pi * var) - r2 / (2 * var)
            diff = x[None, :] - l["mean"]
            y = np.einsum("kd,kde->ke", diff, l["U"]) if l["full"] else diff * l["U"]
            ld = l["lognorm"] - 0.5 * (y * y).sum(1) + residual
            if self.chain == "paper" or i == 0:
                ld = ld + l["logw"]
            if la is None:
                la = ld
            else:
                m = la.max()
                la = ld + m + np.log(np.exp(la - m) @ np.exp(self.logA[i - 1]))
        m = la.max()
        return m + np.log(np.exp(la - m).sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx", default=os.path.join(ROOT, "models/fmnist-resnet.onnx"))
    ap.add_argument("--lsgm", default=os.path.join(ROOT, "models/fmnist-resnet.lsgm"))
    ap.add_argument("--data", default=os.path.join(ROOT, "models/samples/fmnist-test-500-images-idx3-ubyte.gz"))
    ap.add_argument("--frames", type=int, default=2000)
    a = ap.parse_args()
    tool = os.path.join(ROOT, "target/release/fit-and-export")
    j = json.loads(subprocess.run([tool, "inspect", "--json", a.lsgm], check=True, capture_output=True).stdout)
    model = Lsgm(j)
    m = onnx.load(a.onnx)
    by_name = {n.name: n for n in m.graph.node}
    taps = [by_name[l["name"]].output[0] for l in j["layers"]]
    for t in taps:
        m.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    p = j["preprocess"]
    x = images(a.data)
    inp = sess.get_inputs()[0].name
    outs = [m.graph.output[0].name] + taps
    scores, t_inf, t_score = [], [], []
    start = time.perf_counter()
    for k in range(a.frames):
        img = x[k % len(x)]
        t0 = time.perf_counter()
        t = ((img.astype(np.float32) * p["scale"] - p["mean"][0]) / p["std"][0])[None, None]
        res = sess.run(outs, {inp: t})
        t1 = time.perf_counter()
        feats = [r[0].mean(axis=(1, 2)) for r in res[1:]]
        s = model.score(feats)
        t2 = time.perf_counter()
        scores.append(s)
        t_inf.append(t1 - t0)
        t_score.append(t2 - t1)
    wall = time.perf_counter() - start
    # Cross-check against the Rust monitor on the same frames.
    mon = subprocess.run([os.path.join(ROOT, "target/release/lsgm-monitor"), "--onnx", a.onnx, "--lsgm", a.lsgm, a.data],
                         check=True, capture_output=True, text=True).stdout.splitlines()
    rust = np.array([json.loads(l)["score"] for l in mon])
    n = min(len(rust), len(x), a.frames)
    diff = np.abs(rust[:n] - np.array(scores[:n])) / (1 + np.abs(rust[:n]))
    print(json.dumps({
        "frames": a.frames, "frames_per_second": a.frames / wall,
        "median_inference_us": 1e6 * float(np.median(t_inf)), "median_score_us": 1e6 * float(np.median(t_score)),
        "max_relative_score_difference_vs_rust": float(diff.max()),
    }))


if __name__ == "__main__":
    main()
