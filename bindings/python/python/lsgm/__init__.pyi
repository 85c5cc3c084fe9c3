"""Type stubs of the Python package ``lsgm`` (see ``__init__.py`` and docs/python.md)."""

import os
from typing import Any, List, NamedTuple, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

__version__: str

_Path = Union[str, "os.PathLike[str]"]
_Features = Sequence[npt.ArrayLike]

class ModelError(ValueError):
    """A damaged, truncated or foreign model file."""

class ConvergenceWarning(UserWarning):
    """A mixture that did not converge, or a weak fit of the held-out rows."""

class Note(UserWarning):
    """What the tools say once about a fit or a network (projections, conversions)."""

class Layer(NamedTuple):
    """One tap of a model."""

    name: str
    input_width: int
    """Features the tap gives (the model's ``dim_in``)."""
    width: int
    """Width of its mixture after the projection (``dim``)."""
    components: int
    pooling: str

class Model:
    """A fitted LSGM model: the bytes of a model file (immutable, picklable)."""

    @staticmethod
    def load(path: _Path) -> "Model":
        """Reads a model file. FileNotFoundError, ModelError."""
    @staticmethod
    def from_bytes(data: bytes) -> "Model":
        """A model from a model file's bytes. ModelError."""
    def save(self, path: _Path) -> None:
        """Writes the model file atomically. FileNotFoundError for a missing folder."""
    def to_bytes(self) -> bytes: ...
    def score_samples(self, features: _Features, *, threads: Optional[int] = None) -> npt.NDArray[np.float64]:
        """(N,) scores, higher = more in-distribution (the monitor's score)."""
    def contributions(self, features: _Features, *, threads: Optional[int] = None) -> npt.NDArray[np.float64]:
        """(N, L) per-tap shares of each score."""
    def predict(
        self,
        features: _Features,
        *,
        threshold: Optional[float] = None,
        fpr: Optional[float] = None,
        threads: Optional[int] = None,
    ) -> npt.NDArray[np.bool_]:
        """(N,) True = out of distribution (calibrated threshold by default)."""
    def threshold_for_fpr(self, fpr: float) -> float:
        """The threshold whose expected false-positive rate is ``fpr``."""
    @property
    def threshold(self) -> float:
        """The calibrated threshold."""
    @property
    def layers(self) -> List[Layer]: ...
    @property
    def preprocess(self) -> Optional[dict]:
        """How frames become the network's input; None for a model fitted from features."""
    @property
    def fit_report(self) -> Optional[dict]:
        """``fit-features``' JSON report, for a model fitted in this process."""
    def info(self) -> dict:
        """What ``fit-and-export inspect --json`` prints."""

def fit(
    features: _Features,
    *,
    dp: int = 40,
    components: Optional[int] = None,
    dp_prune: float = 1e-3,
    covariance: str = "full",
    max_dim: Union[str, int] = "auto",
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
    """Fits an LSGM: ``fit-and-export fit-features`` on numpy arrays."""

def metrics(scores_in: npt.ArrayLike, scores_out: npt.ArrayLike) -> dict:
    """AUROC, TNR/FPR at 95 % TPR, AUPR-In/Out, detection accuracy (``eval``'s)."""

class Network:
    """An ONNX classifier's pooled taps, run by the monitor's engine code."""

    def __init__(
        self,
        onnx_path: _Path,
        model: Union[Model, _Path, None] = None,
        *,
        threads: Optional[int] = None,
        **input_flags: Any,
    ) -> None: ...
    def features(self, frames: npt.ArrayLike) -> List[npt.NDArray[np.float32]]:
        """One (N, d_i) float32 array per tap of uint8 frames (N, H, W[, C])."""
    @property
    def taps(self) -> List[str]: ...
    @property
    def engine(self) -> str: ...
    @property
    def preprocess(self) -> dict: ...
