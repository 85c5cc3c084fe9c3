#!/usr/bin/env python3
"""Edge-network benchmark: fit, size, speed and a Python reference for the
torchvision backbones of export_backbones.py (issue #12).

The networks have RANDOM (seeded) weights, not pretrained ones: the figures
measure time, size and memory, which do not depend on the weights' values;
they say nothing about detection quality.

For each network NET (resnet18-224, mobilenet_v2-224, mobilenet_v3_small-224,
efficientnet_b0-224, resnet18-96), on Fashion-MNIST training frames (28×28
grey, stretched to the input size, copied to 3 channels, ImageNet mean/std):

1. fit with the defaults, under `/usr/bin/time -v`:
       fit-and-export --onnx NET --train FIT --mean 0.485,0.456,0.406
           --std 0.229,0.224,0.225 --input-range 0-1 --channel-order rgb
           --resize stretch --out M.lsgm
   → wall seconds, extraction seconds, peak RSS, bytes, taps and their
   dimensions, the held-out check (from the JSON report line);
2. `fit-and-export requantise M.lsgm --storage i8 --out M-i8.lsgm` → bytes;
3. `lsgm-monitor --onnx NET --lsgm M.lsgm --bench B BENCH` → median tract
   inference and LSGM score µs (score includes pooling the taps);
4. the Python reference on the same BENCH frames: onnxruntime (one thread)
   with the taps as extra outputs, pooling and scoring in numpy with the Lsgm
   class of python_reference.py → median onnxruntime µs (the run only) and
   numpy score µs (pooling + score); the numpy scores are checked against
   the monitor's, and, to separate scoring from inference and resizing,
   numpy scores of tract's own features (`fit-and-export features --lsgm`)
   against the monitor's and onnxruntime's features against tract's.

The reference resizes frames as the monitor does (the `image` crate's
Triangle filter, reproduced to the bit in f32), so its inputs are the
monitor's and the scores differ only by float rounding (onnxruntime vs tract
arithmetic, f64 numpy vs f32 Rust).

FIT is the first --fit-frames training images (`apt-get install
dataset-fashion-mnist`, else the shipped 3,000-frame sample), BENCH the
--bench-frames images after them (never fitted on), both written as .npy
under --work.

    pip install onnx onnxruntime numpy            # torch/torchvision: export only
    cargo build --release -p lsgm -p fit-and-export
    python3 tools/bench/export_backbones.py --out /tmp/backbones
    python3 tools/bench/edge_networks.py --nets /tmp/backbones \\
        --fit-frames 1000 --out /tmp/edge-networks.md

Without --nets (or when files are missing there) it runs export_backbones.py
into WORK/backbones first. Prints the markdown table, writes it to --out and
the raw JSON to --json (default: --out with .json).
"""
import argparse
import gzip
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from python_reference import Lsgm  # noqa: E402

NETWORKS = ["resnet18-224", "mobilenet_v2-224", "mobilenet_v3_small-224", "efficientnet_b0-224", "resnet18-96"]
FULL_TRAIN = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
SAMPLE_TRAIN = os.path.join(ROOT, "models/samples/fmnist-train-3000-images-idx3-ubyte.gz")
FIT_FLAGS = ["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225", "--input-range", "0-1",
             "--channel-order", "rgb", "--resize", "stretch"]
SCORE_TARGET = 0.01      # LSGM score ≤ 1 % of inference
BYTES_TARGET = 2_000_000  # model ≤ 2 MB with the defaults


def tool(name):
    path = os.path.join(ROOT, "target/release", name)
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: cargo build --release -p lsgm -p fit-and-export")
    return path


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    n, h, w = struct.unpack(">III", raw[4:16])
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, h, w)


def run(cmd, **kw):
    """Runs cmd; returns (returncode, stdout, stderr) as text."""
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return p.returncode, p.stdout, p.stderr


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return None


def messages(stderr):
    """What a command said on stderr, without progress-bar redraws."""
    lines = [l.split("\r")[-1].strip() for l in stderr.splitlines()]
    return [l for l in lines if l]


def time_v(path):
    """Wall seconds and peak RSS (bytes) from a `/usr/bin/time -v -o` file."""
    text = open(path).read()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) * 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text).group(1)
    secs = 0.0
    for part in wall.split(":"):
        secs = 60 * secs + float(part)
    return secs, rss


# --- preprocessing as the model file states it (src/frames/convert.rs) -----

def triangle_taps(src, dst):
    """First source index and f32 weights of each output pixel, computed as
    the `image` crate's Triangle filter computes them (imageops::sample,
    f32 throughout): bilinear with half-pixel centres when enlarging,
    antialiased (support × ratio) when shrinking."""
    f = np.float32
    ratio = f(src) / f(dst)
    sratio = max(ratio, f(1))
    support = f(1) * sratio
    lefts, weights = [], []
    for o in range(dst):
        centre = (f(o) + f(0.5)) * ratio
        left = min(max(int(np.floor(centre - support)), 0), src - 1)
        right = min(max(int(np.ceil(centre + support)), left + 1), src)
        centre = centre - f(0.5)
        w = [max(f(1) - abs((f(i) - centre) / sratio), f(0)) for i in range(left, right)]
        total = f(0)
        for x in w:
            total = f(total + x)
        lefts.append(left)
        weights.append([f(x / total) for x in w])
    width = max(map(len, weights))
    idx = np.array([[min(l + k, src - 1) for k in range(width)] for l in lefts])
    wts = np.array([w + [0.0] * (width - len(w)) for w in weights], np.float32)
    return idx, wts


def crate_resize(img, vertical, horizontal):
    """`image::imageops::resize(.., Triangle)` of a u8 grey frame, to the
    bit: columns first into f32, then rows, each a sequential f32 sum, then
    rounded half away from zero to u8."""
    (vi, vw), (hi, hw) = vertical, horizontal
    src = img.astype(np.float32)
    tmp = np.zeros((vi.shape[0], src.shape[1]), np.float32)
    for k in range(vi.shape[1]):
        tmp += src[vi[:, k], :] * vw[:, k:k + 1]
    out = np.zeros((tmp.shape[0], hi.shape[0]), np.float32)
    for k in range(hi.shape[1]):
        out += tmp[:, hi[:, k]] * hw[None, :, k]
    out = np.clip(out, 0, 255).astype(np.float64)
    return np.floor(out + 0.5).astype(np.uint8)


class Preprocess:
    """The model's preprocessing (src/frames/convert.rs) for grey u8 frames:
    stretch (bilinear), grey → channels, × scale, − mean, ÷ std, NCHW."""

    def __init__(self, p, h, w):
        assert p["resize"] == "stretch" and p["layout"] == "nchw" and p["datum"] == "f32", p
        self.size = (p["height"], p["width"])
        self.vertical = triangle_taps(h, p["height"])
        self.horizontal = triangle_taps(w, p["width"])
        self.scale = np.float32(p["scale"])
        c = p["channels"]
        order = [2, 1, 0] if p["colour"] == "bgr" else list(range(c))
        self.mean = np.array(p["mean"], np.float32)[order][:, None, None]
        self.std = np.array(p["std"], np.float32)[order][:, None, None]
        self.c = c

    def __call__(self, img):
        if img.shape != self.size:
            img = crate_resize(img, self.vertical, self.horizontal)
        v = np.repeat((img.astype(np.float32) * self.scale)[None], self.c, 0)
        return ((v - self.mean) / self.std)[None].astype(np.float32)


def tap_outputs(m, names):
    """Tensor of each tap: a node name's first output, or a tensor name."""
    by_node = {n.name: n.output[0] for n in m.graph.node if n.name}
    tensors = {o for n in m.graph.node for o in n.output}
    out = []
    for name in names:
        if name in by_node:
            out.append(by_node[name])
        elif name in tensors:
            out.append(name)
        else:
            raise KeyError(f"tap {name!r} is neither a node nor a tensor of the ONNX graph")
    return out


def pool(x, layer):
    """A tap's features as the model file's layer (`inspect --json`) says: global means, grid means
    (numpy's array_split cells, cell-major) or the vector."""
    pooling, side = layer["pooling"], layer.get("grid", 1)
    if pooling in ("GridAverageNchw", "GridAverageNhwc"):
        m = x[0] if pooling == "GridAverageNchw" else np.moveaxis(x[0], 2, 0)
        rows, cols = np.array_split(np.arange(m.shape[1]), side), np.array_split(np.arange(m.shape[2]), side)
        return np.concatenate([m[:, ys][:, :, xs].mean(axis=(1, 2)) for ys in rows for xs in cols])
    if pooling == "GlobalAverageNchw":
        return x[0].mean(axis=(1, 2))
    if pooling == "GlobalAverageNhwc":
        return x[0].mean(axis=(0, 1))
    if pooling == "Vector":
        return x.reshape(-1)
    raise ValueError(f"pooling {pooling}")


def relative(a, b):
    """max |a − b| / (1 + |b|) over finite pairs, and how many were not."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b) & (np.abs(b) < 1e37) & (np.abs(a) < 1e37)
    if not ok.any():
        return None, int((~ok).sum())
    return float((np.abs(a - b) / (1 + np.abs(b)))[ok].max()), int((~ok).sum())


def python_reference(net, model_json, frames, warmup=5):
    m = onnx.load(net)
    layers = model_json["layers"]
    taps = tap_outputs(m, [l["name"] for l in layers])
    present = {o.name for o in m.graph.output}
    for t in taps:
        if t not in present:
            m.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0].name
    pre = Preprocess(model_json["preprocess"], *frames.shape[1:])
    model = Lsgm(model_json)
    poolings = layers
    scores, feats, t_inf, t_score = [], [], [], []
    for k in range(-warmup, len(frames)):
        x = pre(frames[max(k, 0)])
        t0 = time.perf_counter()
        res = sess.run(taps, {inp: x})
        t1 = time.perf_counter()
        f = [pool(r, p) for r, p in zip(res, poolings)]
        s = model.score(f)
        t2 = time.perf_counter()
        if k >= 0:
            scores.append(float(s))
            feats.append(f)
            t_inf.append(t1 - t0)
            t_score.append(t2 - t1)
    return {
        "scores": scores,
        "features": [np.array([f[i] for f in feats]) for i in range(len(layers))],
        "median_inference_us": 1e6 * float(np.median(t_inf)),
        "median_score_us": 1e6 * float(np.median(t_score)),
        "onnxruntime": ort.__version__,
    }


# --- one network ------------------------------------------------------------

def bench_network(stem, net, fit_path, bench_path, bench_frames, work):
    fit_tool, monitor = tool("fit-and-export"), tool("lsgm-monitor")
    r = {"network": stem, "onnx": net, "load_average_at_start": os.getloadavg()}
    model = os.path.join(work, stem + ".lsgm")
    model_i8 = os.path.join(work, stem + "-i8.lsgm")
    timefile = os.path.join(work, stem + ".time")
    for p in (model, model_i8):
        if os.path.exists(p):
            os.remove(p)
    cmd = [fit_tool, "--onnx", net, "--train", fit_path, *FIT_FLAGS, "--out", model]
    r["fit_command"] = " ".join(cmd)
    print(f"[{stem}] fit: {r['fit_command']}", file=sys.stderr, flush=True)
    code, out, err = run(["/usr/bin/time", "-v", "-o", timefile] + cmd)
    r["fit_messages"] = messages(err)
    r["fit_wall_s"], r["fit_peak_rss_bytes"] = time_v(timefile)
    if code != 0:
        r["error"] = f"fit exited {code}: " + " | ".join(r["fit_messages"][-5:])
        return r
    report = last_json(out)
    r["fit_report"] = report
    r["bytes"] = report["bytes"]
    r["extract_s"] = report["seconds"]["extract"]

    code, _, err = run([fit_tool, "requantise", model, "--storage", "i8", "--out", model_i8])
    r["requantise_messages"] = messages(err)
    r["bytes_i8"] = os.path.getsize(model_i8) if code == 0 else None

    code, out, err = run([fit_tool, "inspect", "--json", model], check=True)
    model_json = json.loads(out)
    p = model_json["preprocess"]
    r["input"] = f"{p['channels']}×{p['height']}×{p['width']}"
    r["taps"] = [{"name": l["name"], "pooling": l["pooling"], "channels": l["dim_in"], "dim": l["dim"],
                  "components": len(l["components"])} for l in model_json["layers"]]

    print(f"[{stem}] lsgm-monitor --bench {bench_frames}", file=sys.stderr, flush=True)
    code, out, err = run([monitor, "--onnx", net, "--lsgm", model, "--bench", str(bench_frames), bench_path])
    if code != 0:
        r["error"] = f"lsgm-monitor --bench exited {code}: " + " | ".join(messages(err)[-5:])
        return r
    r["monitor_bench"] = last_json(out)
    r["monitor_messages"] = messages(err)
    code, out, err = run([monitor, "--onnx", net, "--lsgm", model, bench_path])
    lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    rust = np.array([l.get("score", np.nan) for l in lines], np.float64)  # error lines: NaN
    if len(rust) != bench_frames:
        r["error"] = f"lsgm-monitor printed {len(rust)} lines for {bench_frames} frames"
        return r

    # Tract's own pooled features of the same frames, to tell scoring apart
    # from inference and resizing.
    fdir = os.path.join(work, stem + "-features")
    os.makedirs(fdir, exist_ok=True)
    for f in os.listdir(fdir):
        os.remove(os.path.join(fdir, f))
    code, _, err = run([fit_tool, "features", "--onnx", net, "--lsgm", model, "--data", bench_path, "--out", fdir])
    tract_feats = [np.load(os.path.join(fdir, f"{i}.npy")).astype(np.float64)
                   for i in range(len(model_json["layers"]))] if code == 0 else None

    print(f"[{stem}] onnxruntime + numpy", file=sys.stderr, flush=True)
    frames = np.load(bench_path)
    ref = python_reference(net, model_json, frames)
    lsgm = Lsgm(model_json)
    check = {}
    check["numpy_vs_monitor_scores"], check["non_finite"] = relative(ref["scores"], rust)
    check["max_abs_score_difference"] = float(np.nanmax(np.abs(np.array(ref["scores"]) - rust)))
    if tract_feats is not None:
        on_tract = [float(lsgm.score([f[k] for f in tract_feats])) for k in range(len(frames))]
        check["numpy_on_tract_features_vs_monitor_scores"], _ = relative(on_tract, rust)
        check["onnxruntime_vs_tract_features"] = [
            float(np.abs(a - b).max() / (1e-12 + np.abs(b).max())) for a, b in zip(ref["features"], tract_feats)]
    else:
        check["features_error"] = " | ".join(messages(err)[-3:])
    r["agreement"] = check
    r["reference"] = {k: v for k, v in ref.items() if k not in ("scores", "features")}
    return r


# --- report -----------------------------------------------------------------

def fmt(v, spec="{:,.0f}"):
    return "—" if v is None else spec.format(v)


def table(results):
    head = ["network", "input", "taps (channels→dims)", "tract µs", "score µs", "score/inference %",
            "onnxruntime µs", "numpy score µs", "model bytes default / i8", "fit s", "extraction s",
            "peak RSS MB"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        b = r.get("monitor_bench") or {}
        ref = r.get("reference") or {}
        taps = ", ".join(f"{t['channels']}→{t['dim']}" for t in r.get("taps", [])) or "—"
        inf, sc = b.get("median_inference_us"), b.get("median_score_us")
        rows.append("| " + " | ".join([
            r["network"], r.get("input", "—"), taps, fmt(inf), fmt(sc),
            fmt(None if not inf else 100 * sc / inf, "{:.3f}"),
            fmt(ref.get("median_inference_us")), fmt(ref.get("median_score_us")),
            f"{fmt(r.get('bytes'))} / {fmt(r.get('bytes_i8'))}",
            fmt(r.get("fit_wall_s"), "{:.1f}"), fmt(r.get("extract_s"), "{:.1f}"),
            fmt(None if r.get("fit_peak_rss_bytes") is None else r["fit_peak_rss_bytes"] / 1e6, "{:.0f}"),
        ]) + " |")
    return "\n".join(rows)


def notes(results):
    out = []
    for r in results:
        n = r["network"]
        if "error" in r:
            out.append(f"- **{n}: error** — {r['error']}")
            continue
        rep = r["fit_report"]
        s = rep["scores"]
        out.append(
            f"- **{n}**: rows fitted/held out {rep['rows'][0]}/{rep['rows'][1]}; held-out TPR "
            f"{rep['holdout_tpr']:.3f}; held-out scores below the training 5th percentile: "
            f"{100 * (s['held_out_below_train_p5'] or 0):.1f} % (expected ≈ 5 %; median held-out "
            f"{s['held_out_median']:.1f} vs training {s['train_median']:.1f}).")
        out.append("  taps: " + "; ".join(
            f"`{t['name']}` {t['channels']}→{t['dim']} ({t['components']} comp.)" for t in r["taps"]))
        a = r["agreement"]
        line = f"  numpy vs monitor scores: max relative difference {fmt(a['numpy_vs_monitor_scores'], '{:.2e}')}"
        if a.get("non_finite"):
            line += f" ({a['non_finite']} overflowed/non-finite frames left out)"
        if "numpy_on_tract_features_vs_monitor_scores" in a:
            line += (f"; numpy on tract's features vs monitor: "
                     f"{fmt(a['numpy_on_tract_features_vs_monitor_scores'], '{:.2e}')}; onnxruntime vs tract "
                     f"features (max abs diff / max abs): "
                     + ", ".join(f"{v:.1e}" for v in a["onnxruntime_vs_tract_features"]))
        out.append(line)
        b = r["monitor_bench"]
        ratio = b["median_score_us"] / max(b["median_inference_us"], 1)
        flags = []
        if ratio > SCORE_TARGET:
            flags.append(f"score/inference {100 * ratio:.2f} % > 1 % target")
        if r["bytes"] > BYTES_TARGET:
            flags.append(f"model {r['bytes']:,} bytes > 2 MB target")
        if flags:
            out.append("  **misses target**: " + "; ".join(flags))
        # Per-layer lines (dimension, components, held-out likelihood) are in the JSON.
        said = [m for m in r["fit_messages"] if not m.startswith(("layer ", "note: grey frames", "note: frames of"))]
        if said:
            out.append("  fit said: " + " / ".join(f"“{m}”" for m in said))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--nets", help="directory of export_backbones.py's .onnx files [default: export into WORK]")
    ap.add_argument("--only", help="comma list of networks, e.g. resnet18-96,mobilenet_v3_small-224")
    ap.add_argument("--train", help=f"IDX (.gz) training images [default: {FULL_TRAIN}, else the shipped "
                    "3,000-frame sample]")
    ap.add_argument("--fit-frames", type=int, default=3000, help="frames to fit on (default 3000)")
    ap.add_argument("--bench-frames", type=int, default=200, help="frames to benchmark on (default 200)")
    ap.add_argument("--work", help="working directory (models, frames) [default: a new temporary one]")
    ap.add_argument("--out", default="edge-networks.md", help="markdown report (default edge-networks.md)")
    ap.add_argument("--json", help="raw JSON results [default: --out with .json]")
    a = ap.parse_args()

    work = a.work or tempfile.mkdtemp(prefix="edge-networks-")
    os.makedirs(work, exist_ok=True)
    stems = a.only.split(",") if a.only else NETWORKS
    nets = a.nets or os.path.join(work, "backbones")
    missing = [s for s in stems if not os.path.exists(os.path.join(nets, s + ".onnx"))]
    if missing:
        print(f"exporting {', '.join(missing)} to {nets}", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, os.path.join(HERE, "export_backbones.py"), "--out", nets,
                        "--only", ",".join(missing)], check=True)

    train = a.train or (FULL_TRAIN if os.path.exists(FULL_TRAIN) else SAMPLE_TRAIN)
    images = read_idx(train)
    n_fit = min(a.fit_frames, len(images))
    fit_path = os.path.join(work, f"fit-{n_fit}.npy")
    bench_path = os.path.join(work, f"bench-{a.bench_frames}.npy")
    np.save(fit_path, images[:n_fit])
    # Frames after the fitted ones (wrapping round if the file is short).
    bench_idx = (n_fit + np.arange(a.bench_frames)) % len(images)
    np.save(bench_path, images[bench_idx])
    overlap = bool((bench_idx < n_fit).any())

    results = []
    for s in stems:
        try:
            results.append(bench_network(s, os.path.join(nets, s + ".onnx"), fit_path, bench_path,
                                         a.bench_frames, work))
        except Exception as e:  # keep going with the other networks
            results.append({"network": s, "error": f"{type(e).__name__}: {e}"})
        print(table(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True)

    header = (
        f"Edge networks: torchvision backbones with RANDOM (seeded) weights (timing, size and memory only; "
        f"no detection figures). Fit on the first {n_fit} frames of `{train}`, benchmark on "
        f"{a.bench_frames} {'(overlapping the fitted ones) ' if overlap else 'other '}frames; "
        f"28×28 grey frames stretched (bilinear) to the input, copied to RGB, ImageNet mean/std. "
        f"tract and LSGM score: `lsgm-monitor --bench` medians (score includes pooling); onnxruntime "
        f"{ort.__version__} with 1 thread and numpy (pooling + score): medians per frame. "
        f"{os.cpu_count()} cores, load average at the start {os.getloadavg()[0]:.1f}.")
    md = header + "\n\n" + table(results) + "\n\n" + notes(results) + "\n"
    print(md)
    with open(a.out, "w") as f:
        f.write(md)
    json_path = a.json or os.path.splitext(a.out)[0] + ".json"
    with open(json_path, "w") as f:
        json.dump({"train": train, "fit_frames": n_fit, "bench_frames": a.bench_frames,
                   "weights": "random (seeded)", "results": results}, f, indent=1)
    print(f"wrote {a.out} and {json_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
