"""Read sparse matrix files: Matrix Market (``.mtx``) and scipy's ``.npz``."""

import numpy as np
import scipy.io
import scipy.sparse as sp

from .._observed import repeated_pairs, sparse_as_csr
from ._files import check_not_empty, existing_file
from ._ratings import (RatingData, build_csr, check_duplicates_option, csr_of_entries,
                       rating_dtype)

__all__ = ["load_matrix_market", "load_npz"]


def load_matrix_market(path, *, dtype=np.float64, duplicates="error"):
    """Read a Matrix Market file with :func:`scipy.io.mmread`.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.mtx`` file. In the coordinate format the stored entries are the
        observed ratings (explicit zeros included); in the array format every
        entry is observed. A pattern matrix stores ones.
    dtype : {float64, float32}, default=float64
        Dtype of the stored ratings.
    duplicates : {'error', 'last'}, default='error'
        An entry stored twice or more: 'error' refuses the file, 'last' keeps
        the last one with a warning (as :func:`load_triples`); never a sum.

    Returns
    -------
    RatingData
        Labels are the row numbers ``0..n-1`` and column numbers ``0..d-1``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is empty or not Matrix Market, holds complex numbers, or
        stores a value that is not finite.
    """
    path = existing_file(path)
    dtype = rating_dtype(dtype)
    check_duplicates_option(duplicates)
    check_not_empty(path)
    try:
        matrix = scipy.io.mmread(str(path))
    except (ValueError, OSError, IndexError) as exc:
        raise ValueError(f"{path}: not a readable Matrix Market file ({exc})") from exc
    return _from_matrix(path, matrix, dtype, duplicates)


def load_npz(path, *, dtype=np.float64, duplicates="error"):
    """Read a sparse matrix saved by :func:`scipy.sparse.save_npz`.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npz`` file. Its stored entries are the observed ratings (explicit
        zeros included).
    dtype : {float64, float32}, default=float64
        Dtype of the stored ratings.
    duplicates : {'error', 'last'}, default='error'
        An entry stored twice or more: 'error' refuses the file, 'last' keeps
        the last one with a warning (as :func:`load_triples`); never a sum.

    Returns
    -------
    RatingData
        Labels are the row numbers ``0..n-1`` and column numbers ``0..d-1``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is empty or not a scipy sparse npz file, holds a malformed
        matrix (index arrays out of range or inconsistent), or stores a value
        that is not finite.
    """
    path = existing_file(path)
    dtype = rating_dtype(dtype)
    check_duplicates_option(duplicates)
    check_not_empty(path)
    try:
        matrix = sp.load_npz(path)
    except (ValueError, OSError, KeyError, EOFError) as exc:
        raise ValueError(f"{path}: not a scipy sparse npz file ({exc})") from exc
    return _from_matrix(path, matrix, dtype, duplicates)


def _from_matrix(path, matrix, dtype, duplicates):
    if matrix.ndim != 2 or min(matrix.shape) < 1:
        raise ValueError(f"{path}: expected a non-empty 2-D matrix, got shape {matrix.shape}")
    if np.dtype(matrix.dtype).kind not in "biuf":
        raise ValueError(f"{path}: ratings must be real numbers, got dtype {matrix.dtype}")
    if sp.issparse(matrix):
        # The file's index arrays are checked before scipy's compiled code
        # reads them: a crafted file could otherwise make it read out of bounds.
        try:
            n_repeated = repeated_pairs(matrix, "the file is damaged")[0]
            csr = None if n_repeated else sp.csr_matrix(
                sparse_as_csr(matrix, "the file is damaged"), copy=True)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: malformed sparse matrix: {exc}") from None
        if n_repeated:
            # The entries in stored order (their arrays are checked), by the
            # loaders' rule for a pair stored twice.
            coo = matrix.tocoo()
            coords = coo.coords if hasattr(coo, "coords") else (coo.row, coo.col)
            labels = (np.arange(matrix.shape[0]), np.arange(matrix.shape[1]))
            return RatingData(
                csr_of_entries(np.asarray(coords[0], np.int64), np.asarray(coords[1], np.int64),
                               np.asarray(coo.data), matrix.shape, dtype,
                               duplicates=duplicates, path=path, labels=labels),
                labels[0], labels[1])
        csr.sort_indices()  # explicit zeros stay
        values, indices, indptr = csr.data, csr.indices, csr.indptr
    else:
        # A dense (array) file lists every entry: all are observed.
        n_rows, n_cols = matrix.shape
        values = np.asarray(matrix).ravel()
        indices = np.tile(np.arange(n_cols, dtype=np.int64), n_rows)
        indptr = np.arange(n_rows + 1, dtype=np.int64) * n_cols
    if not np.isfinite(values).all():
        row = np.searchsorted(indptr, np.flatnonzero(~np.isfinite(values))[0], side="right") - 1
        raise ValueError(f"{path}: row {row} stores a value that is not finite")
    return RatingData(build_csr(values, indices, indptr, matrix.shape, dtype),
                      np.arange(matrix.shape[0], dtype=np.int64),
                      np.arange(matrix.shape[1], dtype=np.int64))
