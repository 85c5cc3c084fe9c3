"""Type stubs of the native module ``lsgm._lsgm`` (Rust, PyO3). The pure-Python
half (``fit``, ``metrics``, ``Network``) is annotated in ``__init__.py`` itself."""

import os
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

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
    """How the tapped tensor became features: ``GlobalAverageNchw``, ``GlobalAverageNhwc``,
    ``GridAverageNchw``, ``GridAverageNhwc``, ``Vector`` or ``Precomputed``."""
    grid: int
    """Cells per side of a grid pooling (``input_width`` is ``grid**2 * C``); 1 otherwise."""

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

# The native halves the wrappers in __init__.py call.
def fit(
    features: _Features,
    flags: List[str],
    names: Optional[List[str]] = None,
    source: Optional[str] = None,
    threads: Optional[int] = None,
    network: Optional["_Network"] = None,
) -> Tuple[Model, List[str]]: ...
def fit_defaults() -> Dict[str, Optional[str]]: ...
def metrics(scores_in: npt.NDArray[np.float64], scores_out: npt.NDArray[np.float64]) -> dict: ...

class _Network:
    @staticmethod
    def open(onnx_path: str, model: Optional[Model] = None, flags: List[str] = ...) -> Tuple["_Network", List[str]]: ...
    def features(self, frames: Any) -> Tuple[List[npt.NDArray[np.float32]], List[str]]: ...
    @property
    def taps(self) -> List[str]: ...
    @property
    def engine(self) -> str: ...
    @property
    def preprocess(self) -> dict: ...
