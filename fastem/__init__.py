"""fastem: fast, exact EM for Gaussian mixtures on partially observed data."""

from ._version import __version__
from ._backend import backend_info  # noqa: E402
from ._selection import select_n_components  # noqa: E402
from .mixture import ConvergenceWarning, GaussianMixture, NotFittedError, load  # noqa: E402

__all__ = [
    "GaussianMixture",
    "load",
    "select_n_components",
    "ConvergenceWarning",
    "NotFittedError",
    "backend_info",
    "__version__",
]
