"""fastem: fast, exact EM for Gaussian mixtures on partially observed data."""

from ._backend import backend_info

__version__ = "0.1.0"

__all__ = ["backend_info", "__version__"]
