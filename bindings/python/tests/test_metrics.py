"""lsgm.metrics: scikit-learn's AUROC and average precision, numpy's rates at
95 % TPR, and ``fit-and-export eval``'s own report on the demo network."""

import json

import numpy as np
import pytest

import lsgm
from conftest import MODELS, SAMPLES, idx_images, run

sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is not installed")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_scikit_learn_and_numpy(seed):
    rng = np.random.default_rng(seed)
    s_in = rng.normal(1.0, 1.0, 300).round(1)  # rounded: ties between and within the sets
    s_out = rng.normal(0.0, 1.0, 200).round(1)
    m = lsgm.metrics(s_in, s_out)
    y = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
    s = np.r_[s_in, s_out]
    assert m["auroc"] == pytest.approx(sklearn_metrics.roc_auc_score(y, s), abs=1e-12)
    assert m["aupr_in"] == pytest.approx(sklearn_metrics.average_precision_score(y, s), abs=1e-12)
    assert m["aupr_out"] == pytest.approx(sklearn_metrics.average_precision_score(1 - y, -s), abs=1e-12)
    # The threshold keeping 95 % of ID scores at or above it: the ceil(0.95 n)-th largest.
    t = np.sort(s_in)[::-1][int(np.ceil(0.95 * len(s_in))) - 1]
    assert m["tnr_at_95tpr"] == pytest.approx(np.mean(s_out < t), abs=1e-12)
    assert m["fpr_at_95tpr"] == pytest.approx(np.mean(s_out >= t), abs=1e-12)
    cuts = np.r_[np.unique(s), np.inf]
    acc = max(0.5 * np.mean(s_in >= c) + 0.5 * np.mean(s_out < c) for c in cuts)
    assert m["detection_accuracy"] == pytest.approx(acc, abs=1e-12)


def test_equal_evals_report_on_the_demo_network(tmp_path):
    onnx, model_path = MODELS / "fmnist-resnet.onnx", MODELS / "fmnist-resnet.lsgm"
    fmnist = SAMPLES / "fmnist-test-500-images-idx3-ubyte.gz"
    mnist = SAMPLES / "mnist-100-images-idx3-ubyte.gz"
    out = tmp_path / "report"
    run("fit-and-export", "eval", "--onnx", onnx, "--lsgm", model_path, "--in", fmnist,
        "--ood", f"mnist={mnist}", "--methods", "lsgm", "--out", out)
    rows = json.loads((out / "report.json").read_text())["results"]
    ref = next(r for r in rows if r["method"] == "lsgm" and r["ood"] == "mnist")
    model = lsgm.Model.load(model_path)
    net = lsgm.Network(onnx, model)
    m = lsgm.metrics(model.score_samples(net.features(idx_images(fmnist))),
                     model.score_samples(net.features(idx_images(mnist))))
    for k in ("auroc", "tnr_at_95tpr", "fpr_at_95tpr", "aupr_in", "aupr_out", "detection_accuracy"):
        assert m[k] == pytest.approx(ref[k], abs=1e-12), k
