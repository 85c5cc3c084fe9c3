"""lsgm.fit equals ``fit-and-export fit-features`` byte for byte; its options are
the command's (names, defaults, checks); warnings are Python warnings."""

import inspect
import warnings

import numpy as np
import pytest

import lsgm
from conftest import run, write_features

OPTION_SETS = [
    {},
    {"components": 3, "covariance": "diag", "max_dim": 2, "storage": "f16", "quantise": "u8",
     "seed": 7, "holdout": 0.2, "chain": "markov", "transitions": "soft"},
    {"dp": 8, "pseudo_count": 0.5, "reg_covar": 1e-4, "tol": 1e-4, "max_iter": 50, "storage": "i8"},
]


def cli_flags(options):
    flags = []
    for k, v in options.items():
        flags += ["--" + k.replace("_", "-"), str(v)]
    return flags


@pytest.mark.parametrize("options", OPTION_SETS, ids=["defaults", "em-diag-f16", "dp8-i8"])
def test_model_bytes_equal_the_cli_fit(tmp_path, taps, options):
    d = write_features(tmp_path / "f", taps)
    out = tmp_path / "cli.lsgm"
    run("fit-and-export", "fit-features", "--features", d, "--out", out, *cli_flags(options))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lsgm.fit(taps, source=f"features:{d}", **options)
    assert model.to_bytes() == out.read_bytes()


def test_memory_order_and_float64_give_the_same_model(taps):
    a = lsgm.fit(taps, threads=1)
    fortran = lsgm.fit([np.asfortranarray(t) for t in taps])
    wide = lsgm.fit([t.astype(np.float64) for t in taps], threads=2)
    strided = lsgm.fit([np.repeat(t, 2, axis=1)[:, ::2] for t in taps])
    assert a.to_bytes() == fortran.to_bytes() == wide.to_bytes() == strided.to_bytes()


def test_signature_defaults_are_the_commands():
    defaults = lsgm._lsgm.fit_defaults()
    sig = inspect.signature(lsgm.fit).parameters
    checked = 0
    for name, cli_default in defaults.items():
        if name in ("help",):
            continue
        assert name in sig, f"fit-features' --{name.replace('_', '-')} has no keyword"
        default = sig[name].default
        if cli_default is None:
            assert default is None, name
        else:
            assert str(default) == cli_default or float(default) == float(cli_default), (name, default, cli_default)
        checked += 1
    assert checked >= 15


def test_invalid_options_are_value_errors(taps):
    with pytest.raises(ValueError, match="holdout"):
        lsgm.fit(taps, holdout=0.95)
    with pytest.raises(ValueError, match="covariance|spherical"):
        lsgm.fit(taps, covariance="spherical")
    with pytest.raises(ValueError, match="components|dp"):
        lsgm.fit(taps, components=3, dp=10)
    with pytest.raises(ValueError, match="threads=0"):
        lsgm.fit(taps, threads=0)
    with pytest.raises(ValueError, match="threads=1000000: give 1 to 256"):
        lsgm.fit(taps, threads=10**6)  # refused, never a million OS threads
    # Named, not PyO3's "can't convert negative int to unsigned"; True is not 1 thread.
    with pytest.raises(ValueError, match="threads=-1: give 1 to 256"):
        lsgm.fit(taps, threads=-1)
    with pytest.raises(ValueError, match="threads=10{30}: give 1 to 256"):
        lsgm.fit(taps, threads=10**30)
    with pytest.raises(TypeError, match="threads=True: .* not a bool"):
        lsgm.fit(taps, threads=True)
    with pytest.raises(TypeError, match="threads='2': expected an int"):
        lsgm.fit(taps, threads="2")
    with pytest.raises(ValueError, match="threads=10{40}: give 1 to 256"):
        lsgm.Model.from_bytes(lsgm.fit(taps).to_bytes()).score_samples(taps, threads=10**40)
    with pytest.raises(ValueError, match="names"):
        lsgm.fit(taps, names=["a"])


def test_report_and_names(taps):
    model = lsgm.fit(taps, names=["conv1", "conv2", "fc"])
    assert [layer.name for layer in model.layers] == ["conv1", "conv2", "fc"]
    assert [layer.input_width for layer in model.layers] == [6, 12, 3]
    r = model.fit_report
    assert r["threshold"] == pytest.approx(model.threshold, rel=1e-6)
    assert len(r["layers"]) == 3 and r["bytes"] == len(model.to_bytes())
    assert lsgm.Model.from_bytes(model.to_bytes()).fit_report is None


def test_non_convergence_is_a_convergence_warning(taps):
    with pytest.warns(lsgm.ConvergenceWarning, match="without converging"):
        lsgm.fit(taps, components=3, max_iter=1)
