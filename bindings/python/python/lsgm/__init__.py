"""LSGM: out-of-distribution scoring of a CNN's hidden layers, fitted in Python,
run on the board.

The fit, the scorer and the metrics are those of the Rust crates the command-line
tools and ``lsgm-monitor`` are built from (this package is a thin layer over them),
so a model fitted here is byte for byte the one ``fit-and-export fit-features``
writes for the same rows and seed, and scores exactly as the monitor scores it.

scikit-learn's conventions: a higher score is more in-distribution;
``predict`` returns True for out-of-distribution rows.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Optional, Sequence

import numpy as np

from ._lsgm import (
    ConvergenceWarning,
    Layer,
    Model,
    ModelError,
    Note,
    __version__,
)
from . import _lsgm

__all__ = [
    "ConvergenceWarning",
    "Layer",
    "Model",
    "ModelError",
    "Network",
    "Note",
    "fit",
    "metrics",
    "__version__",
]


def _warn(lines: Sequence[str], stacklevel: int = 3) -> None:
    """The tools' stderr lines as Python warnings: ``warning:`` lines as
    ConvergenceWarning, the others (``note:``) as Note."""
    for line in lines:
        if line.startswith("warning: "):
            warnings.warn(line[len("warning: "):], ConvergenceWarning, stacklevel=stacklevel)
        else:
            warnings.warn(line.removeprefix("note: "), Note, stacklevel=stacklevel)


def _flag_value(name: str, value: Any) -> list[str]:
    """One keyword as command-line flags (``max_dim=8`` → ``--max-dim 8``)."""
    flag = "--" + name.replace("_", "-")
    if value is None:
        return []
    if isinstance(value, bool):
        raise TypeError(f"{name}={value!r}: expected a number or a name, not a bool")
    if name == "layer":  # repeatable: one tap name each
        return [f"{flag}={v}" for v in ([value] if isinstance(value, str) else value)]
    # `--flag=value`, one token: a value starting with "-" (seed=-1) stays the
    # flag's value, and the parser's error names the flag.
    if name == "input_size" and not isinstance(value, str):
        h, w = value
        return [f"{flag}={int(h)}x{int(w)}"]
    if isinstance(value, (list, tuple, np.ndarray)):
        return [f"{flag}=" + ",".join(repr(float(v)) if isinstance(v, float) else str(v) for v in value)]
    if isinstance(value, float):
        return [f"{flag}={value!r}"]
    return [f"{flag}={value}"]


def _features(features: Any) -> list:
    """The per-tap arrays as a list (the core converts and checks each)."""
    if isinstance(features, np.ndarray):
        raise TypeError("features: expected a list of (N, d) arrays, one per tap; got one array "
                        "(for a single tap pass [array])")
    return list(features)


def fit(
    features: Sequence[np.ndarray],
    *,
    dp: int = 40,
    components: Optional[int] = None,
    dp_prune: float = 1e-3,
    covariance: str = "full",
    max_dim: Any = "auto",
    chain: str = "paper",
    transitions: str = "hard",
    pseudo_count: float = 1.0,
    holdout: float = 0.1,
    max_iter: Optional[int] = None,
    tol: Optional[float] = None,
    reg_covar: float = 1e-6,
    storage: str = "f32",
    quantise: str = "u16",
    seed: int = 0,
    names: Optional[Sequence[str]] = None,
    source: Optional[str] = None,
    network: Optional["Network"] = None,
    threads: Optional[int] = None,
) -> Model:
    """Fits an LSGM to in-distribution features: ``fit-and-export fit-features``.

    Parameters
    ----------
    features : list of arrays
        One ``(N, d_i)`` float32 or float64 array per tap, in network order,
        rows aligned (row ``r`` of every array is frame ``r``); any memory order.
    dp, components, dp_prune, covariance, max_dim, chain, transitions,
    pseudo_count, holdout, max_iter, tol, reg_covar, storage, quantise, seed
        ``fit-features``' options of the same names (``--max-dim`` …), same
        defaults: a Dirichlet-process mixture of at most ``dp`` components per
        tap unless ``components`` asks for EM with exactly that many;
        ``max_iter``/``tol`` default to EM's or DP's own values.
    names : list of str, optional
        Tap names stored in the model (default ``"0"``, ``"1"``, …, as
        ``fit-features`` names files without a ``layers.txt``).
    source : str, optional
        What the model records as the features' origin (default
        ``"features:numpy"``; ``fit-features`` records ``"features:DIR"``).
    network : Network, optional
        The network the features come from (its taps, in order): the model
        then stores its tap names, poolings, input preprocessing and the ONNX
        file's identity, so ``lsgm-monitor`` runs it on that network, exactly
        as a model ``fit-and-export --onnx … --train …`` fits. The features may
        come from ``network.features`` or from your own pipeline (e.g.
        PyTorch forward hooks) if they pool the same tensors the same way.
    threads : int, optional
        Threads of the fit, 1 to 256 (default: every core).

    Returns
    -------
    Model
        With ``fit_report`` holding ``fit-features``' JSON report.

    Raises
    ------
    ValueError
        A NaN or infinite feature (tap and row named), arrays that are not
        2-D, empty, or whose rows differ between taps; an invalid option.

    Warns
    -----
    ConvergenceWarning
        A mixture that did not converge, or a weak fit of the held-out rows.
    Note
        What the fit did (projections), as the tool's ``note:`` lines.
    """
    options = dict(
        dp_prune=dp_prune, covariance=covariance, max_dim=max_dim, chain=chain,
        transitions=transitions, pseudo_count=pseudo_count, holdout=holdout,
        max_iter=max_iter, tol=tol, reg_covar=reg_covar, storage=storage,
        quantise=quantise, seed=seed,
    )
    if components is not None:
        options["components"] = components
        if dp != 40:
            options["dp"] = dp  # both given: refused by the command's own check
    else:
        options["dp"] = dp
    flags = [f for k, v in options.items() for f in _flag_value(k, v)]
    model, lines = _lsgm.fit(
        _features(features), flags,
        names=None if names is None else [str(n) for n in names],
        source=source, threads=threads,
        network=None if network is None else network._net,
    )
    _warn(lines)
    return model


def metrics(scores_in: Any, scores_out: Any) -> dict:
    """``fit-and-export eval``'s OOD metrics of in-distribution scores against
    out-of-distribution ones (higher = more in-distribution).

    Returns a dict: ``auroc``, ``tnr_at_95tpr``, ``fpr_at_95tpr``, ``aupr_in``,
    ``aupr_out``, ``detection_accuracy``, each in [0, 1]. ValueError for an
    empty array, a NaN, or an array that is not 1-D.
    """
    arrays = []
    for name, s in (("scores_in", scores_in), ("scores_out", scores_out)):
        a = np.asarray(s, dtype=np.float64)
        if a.ndim != 1:
            raise ValueError(f"{name}: expected a 1-D array of scores, got shape {a.shape}")
        arrays.append(np.ascontiguousarray(a))
    return _lsgm.metrics(*arrays)


class Network:
    """An ONNX classifier whose tapped layers give LSGM features, run by the
    monitor's engine code (tract, or onnxruntime with ``engine="onnxruntime"``).

    ``Network(onnx_path, model)`` takes the taps and the preprocessing from a
    fitted model (a Model or a model file's path) and checks the network
    against it as ``lsgm-monitor`` does; ``Network(onnx_path, **input_flags)``
    takes them from ``fit-and-export features``' flags as keywords:
    ``layers``, ``layer``, ``grid`` (a side, or one per tap: each map's means
    over a side × side grid of cells), ``mean``, ``std``, ``input_range``,
    ``channel_order``, ``input_size``, ``resize``, ``logits``, and the engine
    flags ``engine``, ``onnxruntime_lib``, ``ep``. ``threads``: worker
    threads running frames (default: every core).
    """

    def __init__(self, onnx_path: "os.PathLike[str] | str", model: "Model | os.PathLike[str] | str | None" = None,
                 *, threads: Optional[int] = None, **input_flags: Any) -> None:
        if model is not None and not isinstance(model, Model):
            model = Model.load(model)
        flags = [f for k, v in input_flags.items() for f in _flag_value(k, v)]
        flags += _flag_value("threads", threads)
        self._net, lines = _lsgm._Network.open(os.fspath(onnx_path), model, flags)
        _warn(lines, stacklevel=2)

    def features(self, frames: Any) -> list:
        """Pooled taps of uint8 frames: an ``(N, H, W)`` or ``(N, H, W, C)``
        array (C = 1 or 3, channels in the order the preprocessing says) or a
        sequence of ``(H, W[, C])`` arrays. Returns one ``(N, d_i)`` float32
        array per tap, in network order: ``lsgm.fit``'s and
        ``Model.score_samples``' input."""
        arrays, lines = self._net.features(frames)
        _warn(lines, stacklevel=2)
        return arrays

    @property
    def taps(self) -> list:
        """Tap names, in network order."""
        return self._net.taps

    @property
    def engine(self) -> str:
        """The engine running the network."""
        return self._net.engine

    @property
    def preprocess(self) -> dict:
        """How frames become the network's input (as ``Model.preprocess``)."""
        return self._net.preprocess

    def __repr__(self) -> str:
        if not hasattr(self, "_net"):  # __init__ failed
            return "lsgm.Network(not loaded)"
        return f"lsgm.Network(taps={self.taps!r}, engine={self.engine!r})"
