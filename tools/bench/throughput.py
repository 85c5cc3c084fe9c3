#!/usr/bin/env python3
"""Throughput of lsgm-monitor against a Python stack (issues #13, #24):
frames/s with one thread, with every core on one stream, and with one
single-threaded instance per core each on its own stream, alternating the runs
and quoting medians and ratios from one invocation.

Ours, on each engine (`--engine tract`, `--engine onnxruntime`):
        lsgm-monitor --threads 1 | --threads C | C processes with --threads 1;
        onnxruntime also with one worker whose session has C intra-op threads
        (--threads 1 --intra-threads C).
Python: onnxruntime (CPUExecutionProvider) + numpy scoring of the same .lsgm
        (python_reference.Lsgm over `fit-and-export inspect --json`):
        intra_op_num_threads 1 | C on one stream | C Python threads, each
        with its own 1-thread session, on their own streams (onnxruntime
        releases the GIL while it runs; the numpy scoring does not).

Both run the same frames through the same network with the same taps and
logits, from the same uint8 frames: the monitor's figure includes reading and
preprocessing them, and so does Python's (the model's own resize and
normalisation, python_reference/edge_networks code, inside the clock). One more
column keeps the earlier variant, Python's C streams with the frames
preprocessed before the clock starts.

Networks: the demo network (28×28) with models/fmnist-resnet.lsgm, and the
torchvision exports of export_backbones.py (RANDOM weights, fine for
timing: the work does not depend on the weights' values), each with a model
fitted here with the defaults on --fit-frames Fashion-MNIST training frames
(stretched, grey copied to RGB, ImageNet mean/std).

    pip install onnx onnxruntime numpy torch torchvision
    cargo build --release -p lsgm -p fit-and-export
    python3 tools/bench/export_backbones.py --out /tmp/backbones \\
        --only resnet18-224,mobilenet_v2-224,resnet18-96,mobilenet_v2-96
    python3 tools/bench/throughput.py --nets /tmp/backbones --out /tmp/throughput.md

The monitor's onnxruntime engine uses the library of the installed
`onnxruntime` wheel (the same library Python runs), or --onnxruntime-lib.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from edge_networks import FIT_FLAGS, FULL_TRAIN, SAMPLE_TRAIN, Preprocess, last_json, pool, read_idx, tap_outputs, tool  # noqa: E402
from python_reference import Lsgm  # noqa: E402

DEMO = ("demo-28", os.path.join(ROOT, "models/fmnist-resnet.onnx"), os.path.join(ROOT, "models/fmnist-resnet.lsgm"))
BACKBONES = ["resnet18-224", "mobilenet_v2-224", "resnet18-96", "mobilenet_v2-96"]
TEST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
SAMPLE_TEST = os.path.join(ROOT, "models/samples/fmnist-test-500-images-idx3-ubyte.gz")


# --- ours ---------------------------------------------------------------------

def monitor_fps(run, frames_npy, frames, threads, streams, engine="tract", intra=1):
    """frames/s of `streams` lsgm-monitor processes (each --threads `threads`,
    --bench frames/streams) started together; wall time around all of them.
    `run` is (network, model, onnxruntime library)."""
    net, model, lib = run
    cmd = [tool("lsgm-monitor"), "--onnx", net, "--lsgm", model, "--threads", str(threads),
           "--intra-threads", str(intra), "--bench", str(max(1, frames // streams)), frames_npy]
    if engine != "tract":
        cmd[1:1] = ["--engine", engine, "--onnxruntime-lib", lib]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for _ in range(streams)]
    outs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - t0
    done = 0
    for p, out in zip(procs, outs):
        if p.returncode != 0:
            raise RuntimeError(f"{cmd} exited {p.returncode}")
        done += last_json(out)["frames"]
    if streams == 1:
        j = last_json(outs[0])
        return j["frames_per_second"], j
    return done / wall, None


def onnxruntime_library():
    """The shared library inside the installed onnxruntime wheel."""
    capi = os.path.join(os.path.dirname(ort.__file__), "capi")
    libs = sorted(f for f in os.listdir(capi) if f.startswith("libonnxruntime.so."))
    if not libs:
        sys.exit(f"no libonnxruntime.so.* in {capi}: pass --onnxruntime-lib")
    return os.path.join(capi, libs[-1])


# --- Python -------------------------------------------------------------------

class Reference:
    """onnxruntime sessions with the model's taps and logits as outputs, and
    the model's preprocessing, run per frame inside the clock (or once,
    before it, for the `preprocessed` variant)."""

    def __init__(self, net, model_json, frames):
        m = onnx.load(net)
        layers = model_json["layers"]
        names = tap_outputs(m, [model_json["preprocess"]["logits"]] + [l["name"] for l in layers])
        present = {o.name for o in m.graph.output}
        for t in names:
            if t not in present:
                m.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))
        self.bytes = m.SerializeToString()
        self.outputs = names
        self.poolings = layers
        self.model = Lsgm(model_json)
        self.pre = Preprocess(model_json["preprocess"], *frames.shape[1:])
        self.frames = frames
        self.inputs = [self.pre(f) for f in frames]

    def session(self, threads):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return ort.InferenceSession(self.bytes, opts, providers=["CPUExecutionProvider"])

    def stream(self, sess, count, start=0, preprocessed=False):
        name = sess.get_inputs()[0].name
        for k in range(count):
            i = (start + k) % len(self.frames)
            x = self.inputs[i] if preprocessed else self.pre(self.frames[i])
            res = sess.run(self.outputs, {name: x})
            logits = res[0].reshape(-1)
            int(np.argmax(logits))
            self.model.score([pool(r, p) for r, p in zip(res[1:], self.poolings)])

    def fps(self, frames, intra, streams, preprocessed=False):
        sessions = [self.session(intra) for _ in range(streams)]
        for s in sessions:
            self.stream(s, 3)  # warm-up
        per = max(1, frames // streams)
        t0 = time.perf_counter()
        if streams == 1:
            self.stream(sessions[0], per, 0, preprocessed)
        else:
            ts = [threading.Thread(target=self.stream, args=(s, per, i * 7, preprocessed))
                  for i, s in enumerate(sessions)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        return per * streams / (time.perf_counter() - t0)


# --- one network --------------------------------------------------------------

def fit(stem, net, fit_path, work):
    model = os.path.join(work, stem + ".lsgm")
    if not os.path.exists(model):
        cmd = [tool("fit-and-export"), "--onnx", net, "--train", fit_path, *FIT_FLAGS, "--out", model]
        print(f"[{stem}] {' '.join(cmd)}", file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, capture_output=True)
    return model


def modes(run, ref, frames_npy, count, c):
    """Every configuration timed, by column name."""
    ours = {}
    for engine in ("tract", "onnxruntime"):
        ours[f"{engine}, 1 thread"] = lambda e=engine: monitor_fps(run, frames_npy, count, 1, 1, e)[0]
        ours[f"{engine}, {c} threads"] = lambda e=engine: monitor_fps(run, frames_npy, count, c, 1, e)[0]
        ours[f"{engine}, {c} streams"] = lambda e=engine: monitor_fps(run, frames_npy, count, 1, c, e)[0]
    ours[f"onnxruntime, 1 × {c} intra"] = lambda: monitor_fps(run, frames_npy, count, 1, 1, "onnxruntime", c)[0]
    return ours | {
        "Python, 1 thread": lambda: ref.fps(count, 1, 1),
        f"Python, {c} threads": lambda: ref.fps(count, c, 1),
        f"Python, {c} streams": lambda: ref.fps(count, 1, c),
        f"Python, {c} streams, preprocessed": lambda: ref.fps(count, 1, c, preprocessed=True),
    }


def bench(stem, run, frames_npy, count, rounds, cores):
    out = subprocess.run([tool("fit-and-export"), "inspect", "--json", run[1]], check=True, capture_output=True)
    ref = Reference(run[0], json.loads(out.stdout), np.load(frames_npy))
    timed = modes(run, ref, frames_npy, count, cores)
    got = {m: [] for m in timed}
    for r in range(rounds):
        for m, f in timed.items():
            got[m].append(f())
            print(f"[{stem}] round {r + 1}: {m}: {got[m][-1]:,.0f} frames/s", file=sys.stderr, flush=True)
    detail = {e: monitor_fps(run, frames_npy, count, 1, 1, e)[1] for e in ("tract", "onnxruntime")}
    return {"network": stem, "frames_per_run": count, "rounds": rounds, "cores": cores,
            "median_fps": {m: statistics.median(v) for m, v in got.items()}, "runs": got,
            "monitor_1_thread": detail, "onnxruntime": ort.__version__}


def table(results, cores):
    c = cores
    tract = ["tract, 1 thread", f"tract, {c} threads", f"tract, {c} streams"]
    onnx_rt = ["onnxruntime, 1 thread", f"onnxruntime, {c} threads", f"onnxruntime, {c} streams",
               f"onnxruntime, 1 × {c} intra"]
    py = ["Python, 1 thread", f"Python, {c} threads", f"Python, {c} streams"]
    cols = tract + onnx_rt + py + [f"Python, {c} streams, preprocessed"]
    head = ["ours " + x if not x.startswith("Python") else x for x in cols]
    lines = ["| network | " + " | ".join(head) + " | tract / Python | onnxruntime / Python |",
             "|---" * (len(cols) + 3) + "|"]
    for r in results:
        f = r["median_fps"]
        best_py = max(f[x] for x in py)
        lines.append(f"| {r['network']} | " + " | ".join(f"{f[x]:,.0f}" for x in cols)
                     + f" | {max(f[x] for x in tract) / best_py:.2f}x"
                     + f" | {max(f[x] for x in onnx_rt) / best_py:.2f}x |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", required=True, help="directory of export_backbones.py's .onnx files")
    ap.add_argument("--work", default="/tmp/lsgm-throughput")
    ap.add_argument("--only", help="comma list of network stems (demo-28, resnet18-224, ...)")
    ap.add_argument("--fit-frames", type=int, default=500)
    ap.add_argument("--bench-frames", type=int, default=200, help="distinct frames, cycled")
    ap.add_argument("--seconds", type=float, default=4.0, help="about this long per run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cores", type=int, default=os.cpu_count())
    ap.add_argument("--out", default="/tmp/throughput.md")
    ap.add_argument("--onnxruntime-lib", help="for the monitor's onnxruntime engine (default: the wheel's)")
    a = ap.parse_args()
    lib = a.onnxruntime_lib or onnxruntime_library()
    os.makedirs(a.work, exist_ok=True)
    only = set(a.only.split(",")) if a.only else None
    train = read_idx(FULL_TRAIN if os.path.exists(FULL_TRAIN) else SAMPLE_TRAIN)
    test = read_idx(TEST if os.path.exists(TEST) else SAMPLE_TEST)
    fit_path, frames_npy = os.path.join(a.work, "fit.npy"), os.path.join(a.work, "bench.npy")
    np.save(fit_path, train[: a.fit_frames])
    np.save(frames_npy, test[: a.bench_frames])
    nets = [DEMO] + [(s, os.path.join(a.nets, s + ".onnx"), None) for s in BACKBONES]
    results = []
    for stem, net, model in nets:
        if only and stem not in only:
            continue
        if not os.path.exists(net):
            print(f"[{stem}] {net} missing: run export_backbones.py", file=sys.stderr)
            continue
        run = (net, model or fit(stem, net, fit_path, a.work), lib)
        # Size each run to about --seconds on one core of ours (tract, the slower engine).
        probe, _ = monitor_fps(run, frames_npy, 50, 1, 1)
        count = max(4 * a.cores, int(probe * a.seconds))
        results.append(bench(stem, run, frames_npy, count, a.rounds, a.cores))
    text = table(results, a.cores)
    print(text)
    with open(a.out, "w") as f:
        f.write(text + "\n")
    with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
