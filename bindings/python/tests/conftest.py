"""Shared fixtures of the Python package's tests.

The references are the project's command-line tools (``fit-and-export``,
``lsgm-monitor``) run on the same rows: the package must equal them. They are
looked for in ``$LSGM_BIN_DIR`` or the workspace's ``target/release``; a test
that needs one skips with the reason when it is missing, except under
``LSGM_REQUIRE_TOOLS=1`` (CI), where that is a failure.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
MODELS = ROOT / "models"
SAMPLES = MODELS / "samples"


def tool(name: str) -> Path:
    """A built command-line tool, or skip (fail under LSGM_REQUIRE_TOOLS=1)."""
    d = Path(os.environ.get("LSGM_BIN_DIR", ROOT / "target" / "release"))
    p = d / name
    if not p.exists():
        msg = f"{p} is not built (cargo build --release; or set LSGM_BIN_DIR)"
        if os.environ.get("LSGM_REQUIRE_TOOLS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return p


def run(name: str, *args, **kw) -> subprocess.CompletedProcess:
    """Runs a tool; its stderr is shown when it fails."""
    r = subprocess.run([str(tool(name)), *map(str, args)], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{name} {' '.join(map(str, args))} failed:\n{r.stderr}"
    return r


def idx_images(path: Path, limit: int | None = None) -> np.ndarray:
    """An IDX image file (.gz) as (N, H, W) uint8, as the tools read it."""
    data = gzip.open(path).read()
    assert data[:4] == b"\x00\x00\x08\x03", path
    n, h, w = (int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(3))
    a = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, h, w)
    return a[:limit] if limit else a


def synthetic_taps(rows: int = 400, seed: int = 0) -> list[np.ndarray]:
    """Three taps of clustered float32 features (widths 6, 12, 3), rows aligned:
    the cluster of a row carries from tap to tap as in a network's trace."""
    centres_rng = np.random.default_rng(1234)  # one distribution whatever the seed
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 3, rows)
    taps = []
    for d in (6, 12, 3):
        centres = centres_rng.normal(0, 4, (3, d))
        taps.append((centres[cluster] + rng.normal(0, 1, (rows, d))).astype(np.float32))
    return taps


def write_features(directory: Path, taps: list[np.ndarray]) -> Path:
    """``fit-and-export``'s feature directory: 0.npy, 1.npy, … (no layers.txt)."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, t in enumerate(taps):
        np.save(directory / f"{i}.npy", t)
    return directory


def cli_scores(model: Path, features: Path) -> list[dict]:
    """``fit-and-export score --json``: one dict per row."""
    out = run("fit-and-export", "score", model, "--features", features, "--json").stdout
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture(scope="session")
def taps() -> list[np.ndarray]:
    return synthetic_taps()


@pytest.fixture(scope="session")
def fitted(tmp_path_factory, taps):
    """The CLI's model of ``taps`` (default options, seed 0) and its feature directory."""
    d = write_features(tmp_path_factory.mktemp("features") / "taps", taps)
    out = d.parent / "cli.lsgm"
    run("fit-and-export", "fit-features", "--features", d, "--out", out)
    return out, d
