"""The documented workflow end to end (docs/python.md) on the demo network:
features of frames through lsgm.Network, lsgm.fit with the network, save,
and the same file run by ``lsgm-monitor`` on the board's path. The model
equals ``fit-and-export``'s fit from the same ONNX file and frames."""

import json

import numpy as np
import pytest

import lsgm
from conftest import MODELS, SAMPLES, idx_images, run

ONNX = MODELS / "fmnist-resnet.onnx"
# The demo network's preprocessing (what `fit-and-export inspect models/fmnist-resnet.lsgm` shows).
DEMO = {"input_range": "0-1", "mean": 0.286, "std": 0.353}


def test_fit_from_frames_equals_the_cli_and_runs_on_the_monitor(tmp_path):
    train = idx_images(SAMPLES / "fmnist-train-3000-images-idx3-ubyte.gz", limit=600)
    test = idx_images(SAMPLES / "fmnist-test-500-images-idx3-ubyte.gz", limit=80)
    net = lsgm.Network(ONNX, **DEMO)
    model = lsgm.fit(net.features(train), network=net, components=4, seed=1)
    path = tmp_path / "fmnist.lsgm"
    model.save(path)

    np.save(tmp_path / "train.npy", train)
    cli = tmp_path / "cli.lsgm"
    run("fit-and-export", "--onnx", ONNX, "--train", tmp_path / "train.npy", "--input-range", "0-1",
        "--mean", "0.286", "--std", "0.353", "--components", "4", "--seed", "1", "--out", cli)
    assert path.read_bytes() == cli.read_bytes()

    np.save(tmp_path / "test.npy", test)
    lines = run("lsgm-monitor", "--onnx", ONNX, "--lsgm", path, tmp_path / "test.npy").stdout.splitlines()
    ref = [json.loads(line) for line in lines]
    x = net.features(test)
    np.testing.assert_allclose(model.score_samples(x), [r["score"] for r in ref], rtol=1e-6)
    assert list(model.predict(x)) == [r["ood"] for r in ref]
    assert model.preprocess["range"] == "0-1" and [t.name for t in model.layers] == net.taps


def test_network_fit_checks_the_taps():
    net = lsgm.Network(ONNX, **DEMO)
    x = net.features(idx_images(SAMPLES / "fmnist-test-500-images-idx3-ubyte.gz", limit=8))
    with pytest.raises(ValueError, match=rf"got {len(x) - 1} arrays but the network has {len(x)} taps"):
        lsgm.fit(x[:-1], network=net)
    with pytest.raises(ValueError, match="tap 0 .*columns, the network's tap gives"):
        lsgm.fit([x[0][:, :-1]] + x[1:], network=net)
    with pytest.raises(ValueError, match="drop names= and source="):
        lsgm.fit(x, network=net, names=["a", "b", "c"])
