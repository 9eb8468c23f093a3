"""What a prediction computes from the E-step of a block of rows.

A prediction of a fitted mixture is a function of each block of rows, its
posteriors and its row log-likelihoods (a :class:`RowOutput`), or the
completed value of chosen entries (:func:`completed_entries`). A data source
applies them where its rows live, in memory or on Dask workers.
"""

from typing import Callable, NamedTuple

import numpy as np

from ._observed import entry_values, row_of_entry, row_subset
from ._pass import estep

__all__ = ["RowOutput", "POSTERIORS", "LABELS", "ROW_LOGLIK", "COMPLETED", "completed",
           "completed_entries", "entry_indices"]

# Rows of a dense result computed at a time: bounds the temporaries.
_BLOCK_ENTRIES = 1 << 20


class RowOutput(NamedTuple):
    """A per-row result of the E-step.

    Attributes
    ----------
    function : callable
        ``function(block, post, row_loglik, params)`` returns the result for
        the rows of ``block`` (an ObservedData), its first axis the rows.
        Module-level, so that it can be sent to other processes.
    columns : str
        The result's shape after the rows: '' (one value a row),
        'n_components' or 'n_features'.
    dtype : numpy.dtype or None
        Of the result; None: that of the observed values.
    """

    function: Callable
    columns: str
    dtype: object


def _posteriors(block, post, row_loglik, params):
    return post


def _labels(block, post, row_loglik, params):
    return post.argmax(axis=1)


def _row_loglik(block, post, row_loglik, params):
    return row_loglik


def _completed(block, post, row_loglik, params):
    return completed(block, post, params.means)


POSTERIORS = RowOutput(_posteriors, "n_components", np.dtype(np.float64))
LABELS = RowOutput(_labels, "", np.dtype(np.int64))
ROW_LOGLIK = RowOutput(_row_loglik, "", np.dtype(np.float64))
COMPLETED = RowOutput(_completed, "n_features", None)


def completed(data, post, means):
    """The completed matrix: observed entries kept, missing ones ``post @ means``.

    Parameters
    ----------
    data : ObservedData of shape (n_samples, n_features)
    post : ndarray of shape (n_samples, n_components)
        Posteriors of the rows of ``data``.
    means : ndarray of shape (n_components, n_features)

    Returns
    -------
    ndarray of shape (n_samples, n_features), of the dtype of the observed values
    """
    filled = np.empty(data.shape, dtype=data.data.dtype)
    step = max(1, _BLOCK_ENTRIES // data.n_features)
    for start in range(0, data.n_samples, step):
        filled[start:start + step] = post[start:start + step] @ means
    filled[row_of_entry(data), data.indices] = data.data
    return filled


def completed_entries(data, rows, cols, params, *, backend=None, n_threads=None):
    """Entries (rows[p], cols[p]) of the completed matrix of ``data``.

    Parameters
    ----------
    data : ObservedData of shape (n_samples, n_features)
    rows, cols : ndarray of shape (n_entries,), intp
        Checked to lie within the shape of ``data`` (:func:`entry_indices`).
    params : Params
    backend, n_threads
        Passed to the E-step, which runs on the listed rows only.

    Returns
    -------
    ndarray of shape (n_entries,), of the dtype of the observed values
    """
    values = np.empty(rows.shape[0])
    if rows.shape[0]:
        wanted, position = np.unique(rows, return_inverse=True)
        if wanted.shape[0] < data.n_samples:
            data = row_subset(data, wanted)
            rows = position.ravel()
        post, _ = estep(data, params, backend=backend, n_threads=n_threads)
        means_t = np.ascontiguousarray(params.means.T)
        step = max(1, _BLOCK_ENTRIES // params.means.shape[0])
        for start in range(0, rows.shape[0], step):
            block = slice(start, start + step)
            values[block] = np.einsum("pk,pk->p", post[rows[block]], means_t[cols[block]])
        observed, found = entry_values(data, rows, cols)
        values[found] = observed[found]
    return values.astype(data.data.dtype, copy=False)


def entry_indices(rows, cols, shape):
    """``rows`` and ``cols`` as flat intp arrays, checked against ``shape``."""
    rows, cols = np.asarray(rows), np.asarray(cols)
    if rows.shape != cols.shape:
        raise ValueError(f"rows and cols must have the same shape, got {rows.shape} "
                         f"and {cols.shape}")
    for name, index, size in (("rows", rows, shape[0]), ("cols", cols, shape[1])):
        if index.size and index.dtype.kind not in "iu":
            raise ValueError(f"{name} must hold integers, got dtype {index.dtype}")
        if index.size and (index.min() < 0 or index.max() >= size):
            raise ValueError(f"{name} must lie in [0, {size}); got values in "
                             f"[{index.min()}, {index.max()}]")
    return rows.astype(np.intp).ravel(), cols.astype(np.intp).ravel()
