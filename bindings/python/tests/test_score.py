"""Model: scores, contributions and verdicts equal ``fit-and-export score``;
the file round-trips; ``info`` is ``inspect --json``."""

import json
import pickle

import numpy as np
import pytest

import lsgm
from conftest import MODELS, cli_scores, run, synthetic_taps, write_features


def test_scores_contributions_and_verdicts_equal_the_cli(tmp_path, fitted):
    path, d = fitted
    model = lsgm.Model.load(path)
    # New rows, some far out (large overflow-free offsets) so both verdicts occur.
    rows = synthetic_taps(rows=300, seed=5)
    rows = [np.vstack([t, t[:30] + 9.0]) for t in rows]
    q = write_features(tmp_path / "q", rows)
    ref = cli_scores(path, q)
    scores = model.score_samples(rows)
    assert scores.dtype == np.float64 and scores.shape == (330,)
    np.testing.assert_allclose(scores, [r["score"] for r in ref], rtol=1e-6)
    contributions = model.contributions(rows)
    np.testing.assert_allclose(contributions, [r["layers"] for r in ref], rtol=1e-6, atol=1e-6)
    ood = model.predict(rows)
    assert ood.dtype == np.bool_
    assert list(ood) == [r["ood"] for r in ref]
    assert 0 < ood.sum() < len(ood)


def test_scores_equal_the_cli_text_output_exactly(fitted):
    path, d = fitted
    text = run("fit-and-export", "score", path, "--features", d).stdout.split()
    scores = lsgm.Model.load(path).score_samples([np.load(d / f"{i}.npy") for i in range(3)])
    assert [float(np.float32(s)) for s in scores] == [float(np.float32(t)) for t in text]


def test_predict_thresholds(fitted):
    path, d = fitted
    model = lsgm.Model.load(path)
    rows = [np.load(d / f"{i}.npy") for i in range(3)]
    s = model.score_samples(rows)
    t = float(np.median(s))
    assert list(model.predict(rows, threshold=t)) == list(s < np.float32(t))
    t5 = model.threshold_for_fpr(0.05)
    assert list(model.predict(rows, fpr=0.05)) == list(model.predict(rows, threshold=t5))
    assert list(model.predict(rows)) == list(s < np.float32(model.threshold))
    with pytest.raises(ValueError, match="not both"):
        model.predict(rows, threshold=t, fpr=0.05)
    with pytest.raises(ValueError, match="fpr=2"):
        model.predict(rows, fpr=2.0)


def test_round_trips(tmp_path, fitted):
    path, _ = fitted
    model = lsgm.Model.load(path)
    out = tmp_path / "copy.lsgm"
    model.save(out)
    assert out.read_bytes() == path.read_bytes()
    assert lsgm.Model.from_bytes(model.to_bytes()) == model
    assert pickle.loads(pickle.dumps(model)) == model
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.lsgm"]  # no temporary file left
    model.save(str(out))  # replaces atomically
    assert out.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("name", ["fmnist-resnet.lsgm", "fmnist-resnet-i8.lsgm"])
def test_info_layers_and_preprocess_equal_inspect(name):
    path = MODELS / name
    model = lsgm.Model.load(path)
    ref = json.loads(run("fit-and-export", "inspect", path, "--json").stdout)
    assert model.info() == ref
    assert model.preprocess == ref["preprocess"] and model.preprocess is not None
    assert [tuple(layer) for layer in model.layers] == [
        (x["name"], x["dim_in"], x["dim"], len(x["components"]), x["pooling"], x["grid"]) for x in ref["layers"]
    ]
    assert model.threshold == pytest.approx(ref["threshold"], rel=1e-7)
    assert "taps" in repr(model)
