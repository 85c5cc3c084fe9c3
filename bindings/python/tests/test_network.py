"""lsgm.Network: the features ``fit-and-export features`` extracts and the
scores ``lsgm-monitor`` gives, from uint8 frames in memory."""

import json
import os
import warnings

import numpy as np
import pytest

import lsgm
from conftest import MODELS, SAMPLES, idx_images, run

ONNX = MODELS / "fmnist-resnet.onnx"
MODEL = MODELS / "fmnist-resnet.lsgm"
TEST = SAMPLES / "fmnist-test-500-images-idx3-ubyte.gz"
# The demo network's preprocessing (what `fit-and-export inspect models/fmnist-resnet.lsgm` shows).
DEMO = {"input_range": "0-1", "mean": 0.286, "std": 0.353}
DEMO_FLAGS = ["--input-range", "0-1", "--mean", "0.286", "--std", "0.353"]


@pytest.fixture(scope="module")
def frames():
    return idx_images(TEST, limit=120)


@pytest.fixture(scope="module")
def cli_features(tmp_path_factory, frames):
    d = tmp_path_factory.mktemp("net")
    idx = d / "frames.npy"
    np.save(idx, frames)
    out = d / "features"
    run("fit-and-export", "features", "--onnx", ONNX, "--lsgm", MODEL, "--data", idx, "--out", out)
    taps = (out / "layers.txt").read_text().split()
    return [np.load(out / f"{i}.npy") for i in range(len(taps))], taps


def test_features_equal_the_cli_with_a_model(frames, cli_features):
    ref, taps = cli_features
    net = lsgm.Network(ONNX, lsgm.Model.load(MODEL), threads=2)
    assert net.taps == taps and net.engine == "tract"
    got = net.features(frames)
    assert [g.dtype for g in got] == [np.float32] * len(ref)
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g, r)
    # A list of frames, one thread, the model given by path: the same rows.
    one = lsgm.Network(ONNX, str(MODEL), threads=1).features(list(frames[:10]))
    for g, r in zip(one, ref):
        np.testing.assert_array_equal(g, r[:10])


def test_features_equal_the_cli_with_input_flags(tmp_path, frames):
    idx = tmp_path / "frames.npy"
    np.save(idx, frames[:20])
    out = tmp_path / "f"
    run("fit-and-export", "features", "--onnx", ONNX, "--data", idx, "--out", out, *DEMO_FLAGS)
    net = lsgm.Network(ONNX, **DEMO)
    assert net.taps == (out / "layers.txt").read_text().split()
    for i, g in enumerate(net.features(frames[:20])):
        np.testing.assert_array_equal(g, np.load(out / f"{i}.npy"))
    assert net.preprocess["range"] == "0-1"


def test_scores_equal_the_monitor(tmp_path, frames):
    idx = tmp_path / "frames.npy"
    np.save(idx, frames[:60])
    lines = run("lsgm-monitor", "--onnx", ONNX, "--lsgm", MODEL, "--threads", "1", idx).stdout.splitlines()
    ref = [json.loads(line) for line in lines]
    model = lsgm.Model.load(MODEL)
    x = lsgm.Network(ONNX, model).features(frames[:60])
    np.testing.assert_allclose(model.score_samples(x), [r["score"] for r in ref], rtol=1e-6)
    assert list(model.predict(x)) == [r["ood"] for r in ref]


def test_errors():
    model = lsgm.Model.load(MODEL)
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        lsgm.Network(MODELS / "nope.onnx", model)
    with pytest.raises(ValueError, match="drop input_range"):
        lsgm.Network(ONNX, model, input_range="0-1")
    with pytest.raises(ValueError, match="--mean and --std"):
        lsgm.Network(ONNX)  # the demo network's normalisation must be said, never guessed
    with pytest.raises(ValueError, match="engine|nonsense"):
        lsgm.Network(ONNX, model, engine="nonsense")
    net = lsgm.Network(ONNX, model)
    with pytest.raises(TypeError, match="uint8"):
        net.features(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match="shape"):
        net.features(np.zeros((2, 28, 28, 2), np.uint8))
    with pytest.raises(ValueError, match="no frames"):
        net.features(np.zeros((0, 28, 28), np.uint8))
    with pytest.raises(TypeError, match="frame 1"):
        net.features([np.zeros((28, 28), np.uint8), np.zeros((28, 28), np.int16)])
    with pytest.raises(ValueError, match="threads|256"):
        lsgm.Network(ONNX, model, threads=0)


def test_onnxruntime_engine_matches_tract(frames):
    lib = os.environ.get("ORT_DYLIB_PATH")
    if not lib:
        pytest.skip("ORT_DYLIB_PATH is not set (onnxruntime's library: docs/engines.md)")
    model = lsgm.Model.load(MODEL)
    ort = lsgm.Network(ONNX, model, engine="onnxruntime").features(frames[:30])
    tract = lsgm.Network(ONNX, model).features(frames[:30])
    for a, b in zip(ort, tract):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_notes_from_extraction_threads_are_warnings_not_stderr(frames, capfd):
    # RGB frames into the grey demo network: extraction's worker threads say
    # that they were converted. That note must reach Python as lsgm.Note, once,
    # and nothing may be written to the process's stderr.
    rgb = np.repeat(frames[:16, :, :, None], 3, axis=3)
    net = lsgm.Network(ONNX, lsgm.Model.load(MODEL), threads=2)
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = net.features(rgb)
    notes = [str(w.message) for w in caught if issubclass(w.category, lsgm.Note)]
    assert len(notes) == 1 and "converted to grey" in notes[0], notes
    assert capfd.readouterr().err == ""
    # Grey copies of RGB frames convert back to the same grey frames exactly.
    for g, r in zip(got, net.features(frames[:16])):
        np.testing.assert_array_equal(g, r)


def test_grid_taps_fit_and_score_as_the_cli_and_the_monitor(tmp_path):
    """grid= pools each map over side × side cells: the CLI's features, a model
    that records the grid, and the monitor's scores of that model."""
    frames = idx_images(TEST, limit=240)  # enough rows to fit and calibrate
    idx = tmp_path / "frames.npy"
    np.save(idx, frames[:40])
    out = tmp_path / "f"
    run("fit-and-export", "features", "--onnx", ONNX, "--data", idx, "--out", out, "--grid", "2,2,1", *DEMO_FLAGS)
    net = lsgm.Network(ONNX, grid=[2, 2, 1], **DEMO)
    x = net.features(frames)
    assert [a.shape[1] for a in x] == [64, 128, 64]  # 2×2 cells of 16 and 32 channels, 64 means
    for i, g in enumerate(x):
        np.testing.assert_array_equal(g[:40], np.load(out / f"{i}.npy"))
    model = lsgm.fit(x, network=net, components=3, max_dim=8, seed=1)
    assert [(l.pooling, l.grid, l.input_width) for l in model.layers] == [
        ("GridAverageNchw", 2, 64), ("GridAverageNchw", 2, 128), ("GlobalAverageNchw", 1, 64)]
    path = tmp_path / "grid.lsgm"
    model.save(path)
    lines = run("lsgm-monitor", "--onnx", ONNX, "--lsgm", path, "--threads", "1", idx).stdout.splitlines()
    got = model.score_samples(lsgm.Network(ONNX, model).features(frames[:40]))
    np.testing.assert_allclose(got, [json.loads(line)["score"] for line in lines], rtol=1e-6)
    with pytest.raises(ValueError, match="--grid gives 2 sides for 3 taps"):
        lsgm.Network(ONNX, grid=[2, 2], **DEMO)


def test_flag_errors_name_the_keyword():
    with pytest.raises(ValueError, match=r"invalid value '0' for grid=: expected a grid side in 1\.\.=16"):
        lsgm.Network(ONNX, grid=0, **DEMO)
    with pytest.raises(ValueError, match="unexpected argument no_such_flag= found"):
        lsgm.Network(ONNX, no_such_flag=1, **DEMO)
