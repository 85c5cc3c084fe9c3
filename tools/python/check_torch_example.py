#!/usr/bin/env python3
"""Runs docs/python.md's PyTorch snippet and checks what it claims.

The snippet (the first ```python block of docs/python.md) is run as written
in a temporary folder, with random frames as `train_loader` and the
torchvision network's random weights (nothing is downloaded). Then:

1. the hooks' pooled features equal `lsgm.Network`'s features of the same
   uint8 frames (the ONNX export run by the monitor's engine code) within
   1e-4 relative: the snippet's taps and preprocessing are the network's;
2. the saved model loads, names the snippet's ONNX taps and stores the
   preprocessing, and `lsgm-monitor` (if built) runs it on those frames with
   the scores `Model.score_samples` gives.

    python3 tools/python/check_torch_example.py      # exit 0: checked; 77: torch missing

Needs the `lsgm` package installed (docs/python.md) and torch + torchvision.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SKIP = 77  # "skipped", as automake's test harness reads it


def snippet() -> str:
    text = (ROOT / "docs" / "python.md").read_text()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def main() -> int:
    try:
        import torch
        import torchvision  # noqa: F401
    except ImportError as e:
        print(f"skipped: {e.name} is not installed", file=sys.stderr)
        return SKIP
    import lsgm

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (256, 64, 64, 3), dtype=np.uint8)  # N, H, W, RGB
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x = ((frames / 255.0 - mean) / std).transpose(0, 3, 1, 2).astype(np.float32)
    train_loader = [(torch.from_numpy(x[i:i + 32]), None) for i in range(0, len(x), 32)]
    torch.manual_seed(0)
    os.chdir(tempfile.mkdtemp())
    scope = {"train_loader": train_loader}
    exec(compile(snippet(), "docs/python.md", "exec"), scope)

    net = lsgm.Network("net.onnx", lsgm.Model.load("net.lsgm"))
    extracted = net.features(frames)
    for name, hooked, ours in zip(scope["blocks"], scope["features"], extracted):
        np.testing.assert_allclose(ours, hooked, rtol=1e-4, atol=1e-5, err_msg=name)
    model = lsgm.Model.load("net.lsgm")
    assert [layer.name for layer in model.layers] == net.taps and model.preprocess["colour"] == "rgb"
    print(f"hooks and lsgm.Network agree on {len(frames)} frames × {len(extracted)} taps")

    monitor = Path(os.environ.get("LSGM_BIN_DIR", ROOT / "target" / "release")) / "lsgm-monitor"
    if monitor.exists():
        np.save("frames.npy", frames)
        out = subprocess.run([monitor, "--onnx", "net.onnx", "--lsgm", "net.lsgm", "frames.npy"],
                             capture_output=True, text=True, check=True).stdout
        ref = [json.loads(line)["score"] for line in out.splitlines()]
        np.testing.assert_allclose(model.score_samples(extracted), ref, rtol=1e-6)
        print("lsgm-monitor runs the saved model with the same scores")
    else:
        print(f"{monitor} not built: the monitor run was not checked", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
