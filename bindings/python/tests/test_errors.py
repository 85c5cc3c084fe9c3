"""Every bad input is a Python exception naming it; none reaches Rust as a panic."""

import re

import numpy as np
import pytest

import lsgm
from conftest import MODELS


@pytest.fixture(scope="module")
def model():
    return lsgm.Model.load(MODELS / "fmnist-resnet.lsgm")


def rows(model, n=4):
    return [np.zeros((n, layer.input_width), np.float32) for layer in model.layers]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features_name_tap_and_row(taps, model, bad):
    x = [t.copy() for t in taps]
    x[1][17, 3] = bad
    with pytest.raises(ValueError, match=r"tap 1 .*row 17, column 3"):
        lsgm.fit(x)
    y = rows(model)
    y[2][3, 0] = bad
    name = model.layers[2].name
    with pytest.raises(ValueError, match=re.escape(f'tap 2 ("{name}"): row 3, column 0')):
        model.score_samples(y)


def test_wrong_tap_count_and_widths_say_expected_and_got(model):
    y = rows(model)
    with pytest.raises(ValueError, match=rf"features has {len(y) - 1} taps but the model has {len(y)} taps"):
        model.score_samples(y[:-1])
    y[1] = np.zeros((4, model.layers[1].input_width + 1), np.float32)
    with pytest.raises(ValueError, match=rf"tap 1 .*{model.layers[1].input_width + 1} columns, the model expects {model.layers[1].input_width}"):
        model.predict(y)


def test_shapes_and_types(taps, model):
    with pytest.raises(ValueError, match="2-D"):
        lsgm.fit([taps[0][:, 0], taps[1]])
    with pytest.raises(ValueError, match="2-D"):
        model.contributions([r[None] for r in rows(model)])
    with pytest.raises(ValueError, match="empty"):
        lsgm.fit([t[:0] for t in taps])
    with pytest.raises(ValueError, match="rows must be aligned"):
        lsgm.fit([taps[0], taps[1][:-1], taps[2]])
    with pytest.raises(ValueError, match="empty list"):
        lsgm.fit([])
    with pytest.raises(TypeError, match="list of"):
        lsgm.fit(taps[0])
    with pytest.raises(TypeError, match="float32 or float64"):
        model.score_samples([r.astype(np.complex64) for r in rows(model)])


def test_integer_features_are_widened_exactly(model):
    y = [np.ones((2, layer.input_width), np.int64) for layer in model.layers]
    np.testing.assert_array_equal(model.score_samples(y), model.score_samples([a.astype(np.float32) for a in y]))


def test_files(tmp_path, model):
    with pytest.raises(FileNotFoundError, match="nope.lsgm"):
        lsgm.Model.load(tmp_path / "nope.lsgm")
    with pytest.raises(FileNotFoundError, match="missing"):
        model.save(tmp_path / "missing" / "m.lsgm")
    good = model.to_bytes()
    damaged = bytearray(good)
    damaged[len(good) // 2] ^= 0x40
    p = tmp_path / "damaged.lsgm"
    p.write_bytes(bytes(damaged))
    with pytest.raises(lsgm.ModelError, match="damaged.lsgm"):
        lsgm.Model.load(p)
    for bad in (bytes(damaged), good[: len(good) // 3], b"P5 28 28 255\n" + bytes(100), b""):
        with pytest.raises(lsgm.ModelError):
            lsgm.Model.from_bytes(bad)
    assert issubclass(lsgm.ModelError, ValueError)
    with pytest.raises(lsgm.ModelError, match="is it an .lsgm file"):
        lsgm.Model.from_bytes(b"not a model at all, just text")


def test_metrics_inputs():
    with pytest.raises(ValueError, match="scores_in: no scores"):
        lsgm.metrics([], [1.0])
    with pytest.raises(ValueError, match=r"scores_out\[1\] is NaN"):
        lsgm.metrics([1.0], [0.0, np.nan])
    with pytest.raises(ValueError, match="1-D"):
        lsgm.metrics(np.zeros((2, 2)), [1.0])


def test_trial_findings(taps, model):
    # Big-endian arrays are converted, not refused with a TypeError that names nothing.
    y = [np.random.default_rng(1).normal(size=(4, layer.input_width)).astype(np.float32) for layer in model.layers]
    np.testing.assert_array_equal(model.score_samples([a.astype(">f4") for a in y]), model.score_samples(y))
    np.testing.assert_array_equal(model.score_samples([a.astype(">f8") for a in y]), model.score_samples(y))
    # A finite float64 beyond float32 is named as such, with its tap, row and column.
    big = [a.astype(np.float64) for a in y]
    big[1][2, 5] = 1e300
    with pytest.raises(ValueError, match=r"tap 1 .*row 2, column 5 is 1e300, beyond float32"):
        model.score_samples(big)
    # A threshold that is not a finite float32 is refused, as the CLI refuses a non-finite one.
    with pytest.raises(ValueError, match="threshold=1e"):
        model.predict(y, threshold=1e40)
    # A negative option value reaches the option and its error names it.
    with pytest.raises(ValueError, match="seed"):
        lsgm.fit(taps, seed=-1)
    # A folder given as a model file names it.
    with pytest.raises(ValueError, match=re.escape(str(MODELS))):
        lsgm.Model.load(MODELS)
