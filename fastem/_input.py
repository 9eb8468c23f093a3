"""What an estimator's ``X`` becomes: a data source, in one place.

Every kind of input is told apart here and nowhere above: NumPy arrays,
scipy.sparse matrices and ObservedData become an :class:`InMemorySource`; a
Dask collection or a deferred input (``fastem.dask.Triples``) goes to its own
module, imported only then, so that importing fastem never imports Dask.
"""

import importlib

import numpy as np
import scipy.sparse as sp

from ._memory import InMemorySource
from ._observed import ObservedData, as_observed
from ._source import DataSource, DeferredInput

__all__ = ["as_source", "is_deferred"]

# Modules that read deferred inputs into sources.
_DASK_MODULE = "fastem.dask"


def is_deferred(X):
    """Whether ``X`` lives elsewhere (a Dask collection, Triples): read where it is."""
    return hasattr(X, "__dask_graph__") or isinstance(X, DeferredInput)


def as_source(X, *, missing_values=np.nan, backend=None, n_threads=None, for_fit=False,
              n_features=None):
    """The data source of ``X``.

    Parameters
    ----------
    X : {array-like, sparse matrix, ObservedData, DataSource, Dask collection, Triples}
        Of shape (n_samples, n_features); see ``fastem._observed.as_observed``
        for dense and sparse input and ``fastem.dask`` for Dask input.
    missing_values : float or None, default=np.nan
        Marker of missing entries in dense input (and NumPy blocks of Dask
        arrays).
    backend, n_threads
        How the source's kernels run.
    for_fit : bool, default=False
        Dask input: build and persist the blocks now, for a fit's passes.
    n_features : int, optional
        A fitted model's number of columns, for inputs that do not state theirs
        (triples).

    Returns
    -------
    DataSource
    """
    if isinstance(X, DataSource):
        return X
    if is_deferred(X):
        module_name = X.source_module if isinstance(X, DeferredInput) else _DASK_MODULE
        module = importlib.import_module(module_name)  # imports Dask
        return module.as_source(X, missing_values=missing_values, backend=backend,
                                n_threads=n_threads, for_fit=for_fit,
                                n_features=n_features)
    return InMemorySource(as_observed(_numeric(X), missing_values=missing_values),
                          backend=backend, n_threads=n_threads)


def _numeric(X):
    """An estimator's X as real numbers where it can be, with scikit-learn's messages.

    Lists become arrays, object arrays floats (None: NaN, missing by default);
    complex numbers and ragged lists are refused.
    """
    if not sp.issparse(X) and not isinstance(X, ObservedData):
        try:
            X = np.asarray(X)
        except ValueError as exc:  # ragged nested lists
            raise ValueError(f"X must be a 2-D array of numbers with rows of equal "
                             f"length ({exc})") from None
        if X.dtype == object:
            try:
                X = X.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"X must hold numbers; an entry of the object array is "
                                f"not one ({exc}); convert X with X.astype(float)") from None
    if getattr(X, "dtype", None) is not None and np.dtype(X.dtype).kind == "c":
        raise ValueError("Complex data not supported; X must hold real numbers")
    return X
