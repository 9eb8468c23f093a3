"""What every loader returns: :class:`RatingData`, its CSR assembly, and its conversion."""

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._exceptions import DuplicateRatingsWarning
from .._observed import as_observed, repeated_pairs_error
from .._validation import index_dtype, value_dtype

__all__ = ["RatingData", "to_observed", "rating_dtype", "build_csr", "csr_of_entries",
           "DUPLICATES", "DuplicateRatingsWarning", "check_duplicates_option"]


@dataclass(frozen=True, eq=False)
class RatingData:
    """A rating matrix read from a file, with the raw ids of its rows and columns.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix of shape (n_users, n_items)
        Float32 or float64. The stored entries are the observed ratings,
        explicit zeros included; entries that are not stored are missing.
        Indices are sorted within each row and no entry is stored twice.
    row_labels : ndarray of shape (n_users,)
        ``row_labels[u]`` is the raw id of user ``u`` (row ``u``).
    col_labels : ndarray of shape (n_items,)
        ``col_labels[i]`` is the raw id of item ``i`` (column ``i``).

    Notes
    -----
    Labels are int64 for integer ids (and for the row and column numbers of
    formats without ids) and str otherwise, in ascending order.
    """

    matrix: sp.csr_matrix
    row_labels: np.ndarray
    col_labels: np.ndarray

    def __post_init__(self):
        n_rows, n_cols = self.matrix.shape
        if self.row_labels.shape != (n_rows,) or self.col_labels.shape != (n_cols,):
            raise ValueError(
                f"labels of shapes {self.row_labels.shape} and "
                f"{self.col_labels.shape} do not match a matrix of shape "
                f"{self.matrix.shape}"
            )

    @property
    def shape(self):
        """``(n_users, n_items)``."""
        return self.matrix.shape

    @property
    def nnz(self):
        """Number of observed ratings."""
        return self.matrix.nnz

    def to_observed(self, dtype=None):
        """Return the observed ratings as :class:`~fastem.ObservedData`.

        Parameters
        ----------
        dtype : {None, float32, float64}, default=None
            Dtype of the values; None keeps the matrix's.

        Returns
        -------
        ObservedData
            See :func:`to_observed`.
        """
        return to_observed(self, dtype=dtype)


def to_observed(rating_data, dtype=None):
    """Return the observed ratings of a :class:`RatingData` for the estimators.

    Parameters
    ----------
    rating_data : RatingData
        A loaded rating matrix.
    dtype : {None, float32, float64}, default=None
        Dtype of the values; None keeps the matrix's.

    Returns
    -------
    ObservedData
        The stored entries of ``rating_data.matrix``, explicit zeros
        included. Nothing is densified.
    """
    return as_observed(rating_data.matrix, dtype=dtype)


def rating_dtype(dtype):
    """The dtype of the stored ratings a loader is asked for: float32 or float64.

    The rule of :func:`fastem._validation.value_dtype` for a ``dtype=``
    argument (None: float64); TypeError for any other dtype.
    """
    return value_dtype(np.dtype(np.float64), dtype)


def build_csr(values, indices, indptr, shape, dtype):
    """A csr_matrix on these arrays, with int32 indices when they fit."""
    indices_dtype = index_dtype(values.shape[0], shape[1])
    return sp.csr_matrix(
        (values.astype(dtype, copy=False), indices.astype(indices_dtype, copy=False),
         indptr.astype(indices_dtype, copy=False)),
        shape=shape, copy=False,
    )


DUPLICATES = ("error", "last")


def check_duplicates_option(duplicates):
    """The loaders' ``duplicates`` option: 'error' or 'last'."""
    if duplicates not in DUPLICATES:
        raise ValueError(f"duplicates={duplicates!r} is invalid: use 'error' (refuse a "
                         "(user, item) pair given twice) or 'last' (keep its last rating)")
    return duplicates


def csr_of_entries(rows, cols, values, shape, dtype, *, duplicates, path, labels):
    """CSR matrix of the entries, by the rule for repeated (row, col) pairs.

    ``duplicates='error'``: a ValueError naming how many entries repeat a pair
    and the first pair, in ``labels`` (row ids, column ids). ``'last'``: the
    last entry of each pair in file order stays, with a warning naming how
    many were dropped.
    """
    n_rows, n_cols = shape
    n = values.shape[0]
    # Keys row << col_bits | col order the entries as CSR does; shifts and
    # masks are much cheaper than multiplications and divisions.
    col_bits = max(1, (n_cols - 1).bit_length())
    pos_bits = max(1, (n - 1).bit_length())
    keys = (rows << col_bits) | cols
    if n > 1 and not (keys[1:] > keys[:-1]).all():
        if (n_rows - 1).bit_length() + col_bits + pos_bits < 63:
            # Sorting key << pos_bits | position orders by key, then by file
            # order, several times faster than a stable argsort.
            packed = (keys << pos_bits) | np.arange(n, dtype=np.int64)
            packed.sort()
            keys = packed >> pos_bits
            order = packed & ((1 << pos_bits) - 1)
            del packed
        else:
            order = np.argsort(keys, kind="stable")
            keys = keys[order]
        last = np.empty(n, dtype=bool)
        np.not_equal(keys[1:], keys[:-1], out=last[:-1])
        last[-1] = True
        n_dropped = int(n - np.count_nonzero(last))
        if n_dropped:
            if duplicates == "error":
                first = int(np.argmin(last))
                raise repeated_pairs_error(
                    n_dropped, labels[0][keys[first] >> col_bits],
                    labels[1][keys[first] & ((1 << col_bits) - 1)], what=str(path),
                    fix="to keep the last rating of each pair (a later rating "
                        "replaces an earlier one), pass duplicates='last' (on the command "
                        "line: --duplicates last)", pair="(user, item)")
            warnings.warn(f"{path}: {n_dropped} rating(s) repeat a (user, item) pair "
                          "given before: the last rating of each pair was kept",
                          DuplicateRatingsWarning, stacklevel=3)
            keys, order = keys[last], order[last]
        values = values[order]
    rows = keys >> col_bits
    indices = keys & ((1 << col_bits) - 1)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return build_csr(values, indices, indptr, shape, dtype)
