"""The observed entries of a partially observed matrix, in validated CSR form.

Every kernel reads its data through an :class:`ObservedData`, whose arrays are
checked once, here, so that compiled code can trust them.

Duplicates: a (row, column) pair is one observation. Input that stores a pair
more than once (a sparse matrix not in canonical form, a file listing a
(user, item) pair twice, Dask triples) is refused with a ValueError naming
how many repeated entries there are and the first pair
(:func:`repeated_pairs_error`); it is never summed. The rating-file loaders
can instead keep the last rating of each pair (``duplicates='last'``), with a
warning naming how many were dropped. The sums and
look-ups over the observed entries of one matrix (column sums, rows, entry
values) live here too, each computed in blocks of rows so that no temporary
is O(nnz).
"""

import numbers

import numpy as np
import scipy.sparse as sp

from ._validation import FLOAT_DTYPES, index_dtype, value_dtype

__all__ = ["ObservedData", "as_observed", "sparse_as_csr", "empty_observed", "row_blocks",
           "sort_entries", "repeated_pairs", "repeated_pairs_error",
           "row_of_entry", "row_subset", "row_entries", "dense_rows", "entry_values", "column_sums",
           "column_counts", "centred_column_sq", "cluster_sizes", "cluster_sums"]

# What to do about a malformed scipy.sparse matrix, at the end of the messages.
MALFORMED_MATRIX = ("the matrix is malformed (were its arrays changed after it was "
                    "built?); rebuild it with scipy's constructors")
_INDEX_DTYPES = (np.int32, np.int64)


class ObservedData:
    """Observed entries of an ``(n_samples, n_features)`` matrix in CSR order.

    Parameters
    ----------
    data : ndarray of shape (nnz,), float32 or float64
        Observed values, row by row.
    indices : ndarray of shape (nnz,), int32 or int64
        Column of each observed value.
    indptr : ndarray of shape (n_samples + 1,), same dtype as ``indices``
        Row ``u`` owns ``data[indptr[u]:indptr[u + 1]]``.
    n_features : int
        Number of columns.
    copy : bool, default=True
        Copy the arrays, so that later changes to the caller's arrays cannot
        invalidate the checks made here. False only for fresh arrays.

    Raises
    ------
    ValueError, TypeError
        If the arrays do not describe a valid CSR matrix with finite values.

    Notes
    -----
    The arrays are kept read-only and the instance is immutable; a row may
    not name the same column twice.
    """

    __slots__ = ("data", "indices", "indptr", "n_samples", "n_features")

    def __init__(self, data, indices, indptr, n_features, *, copy=True):
        # (np.array(..., copy=None) would say this in NumPy 2 only.)
        data, indices, indptr = (np.array(a) if copy else np.asarray(a)
                                 for a in (data, indices, indptr))
        if data.dtype not in FLOAT_DTYPES:
            raise TypeError(
                f"observed values must be float32 or float64, got {data.dtype}"
            )
        if indices.dtype not in _INDEX_DTYPES or indptr.dtype != indices.dtype:
            raise TypeError(
                "CSR indices and indptr must share one dtype, int32 or int64; "
                f"got {indices.dtype} and {indptr.dtype}"
            )
        if data.ndim != 1 or indices.ndim != 1 or indptr.ndim != 1:
            raise ValueError("CSR data, indices and indptr must be 1-D arrays")
        if isinstance(n_features, bool) or not isinstance(n_features, numbers.Integral):
            raise TypeError(f"n_features must be an int, got {n_features!r}")
        n_features = int(n_features)
        if n_features < 1:
            raise ValueError(f"n_features must be at least 1, got {n_features}")
        nnz = data.shape[0]
        if indices.shape[0] != nnz:
            raise ValueError(
                f"CSR data has {nnz} values but indices has {indices.shape[0]}"
            )
        if indptr.shape[0] < 1:
            raise ValueError("CSR indptr must have n_samples + 1 >= 1 entries")
        if indptr[0] != 0 or indptr[-1] != nnz:
            raise ValueError(
                f"CSR indptr must start at 0 and end at nnz={nnz}; "
                f"got {indptr[0]} and {indptr[-1]}"
            )
        row_counts = np.diff(indptr)
        if row_counts.size and row_counts.min() < 0:
            raise ValueError("CSR indptr must be non-decreasing")
        if nnz:
            if indices.min() < 0 or indices.max() >= n_features:
                raise ValueError(
                    f"CSR column indices must lie in [0, {n_features}); "
                    f"got values in [{indices.min()}, {indices.max()}]"
                )
            if not _all_finite(data):
                raise ValueError(
                    "observed values must be finite; mark missing entries as "
                    "missing instead of storing NaN or inf"
                )
            _check_no_duplicates(indices, indptr, n_features)
        # object.__setattr__: the instance is frozen (see __setattr__).
        for name, value in (("data", _read_only(data)), ("indices", _read_only(indices)),
                            ("indptr", _read_only(indptr)),
                            ("n_samples", indptr.shape[0] - 1), ("n_features", n_features)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        # The compiled kernels trust the checked arrays without bounds checks:
        # replacing one after the checks could make them read out of bounds.
        raise AttributeError(
            f"ObservedData is immutable; build a new one instead of setting {name!r}")

    def __delattr__(self, name):
        raise AttributeError(f"ObservedData is immutable; cannot delete {name!r}")

    def __repr__(self):
        return (f"ObservedData(n_samples={self.n_samples}, n_features={self.n_features}, "
                f"nnz={self.nnz}, dtype={self.data.dtype.name})")

    def __reduce__(self):
        # Copies and unpickled instances are built, and checked, anew.
        return (ObservedData, (self.data, self.indices, self.indptr, self.n_features))

    @property
    def shape(self):
        return (self.n_samples, self.n_features)

    @property
    def nnz(self):
        return self.data.shape[0]

    @property
    def row_counts(self):
        """Number of observed entries in each row, as float64."""
        return np.diff(self.indptr).astype(np.float64)

    def to_csr(self, values=None):
        """Return a scipy CSR matrix on these indices (sharing memory).

        Parameters
        ----------
        values : ndarray of shape (nnz,), optional
            Values in the order of the observed entries; default the data.

        Returns
        -------
        scipy.sparse.csr_matrix
            Of shape ``self.shape``; its stored entries are the observed ones.
        """
        values = self.data if values is None else values
        return sp.csr_matrix(
            (values, self.indices, self.indptr), shape=self.shape, copy=False
        )


def row_blocks(indptr, entries):
    """(first, last) row ranges of about ``entries`` observed entries each.

    For work over the observed entries in pieces, so that temporaries stay
    O(entries) rather than O(nnz); a longer row makes a block of its own.
    """
    n_rows = indptr.shape[0] - 1
    targets = np.arange(entries, indptr[-1], entries)
    bounds = np.unique(np.concatenate(
        [[0], np.searchsorted(indptr, targets, side="right") - 1, [n_rows]]))
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _read_only(array):
    array = np.ascontiguousarray(array)
    if array.flags.writeable:
        array = array.view()
        array.flags.writeable = False
    return array


# Entries per step of the O(nnz) checks: their temporaries stay a few MB.
_CHECK_CHUNK = 1 << 22


def _all_finite(values):
    return all(np.isfinite(values[start:start + _CHECK_CHUNK]).all()
               for start in range(0, values.shape[0], _CHECK_CHUNK))


def _rows_sorted(indices, indptr):
    """True if the columns of every row strictly increase."""
    row_starts = indptr[1:-1]  # non-decreasing: checked before
    n_pairs = indices.shape[0] - 1
    for start in range(0, n_pairs, _CHECK_CHUNK):
        stop = min(start + _CHECK_CHUNK, n_pairs)
        # Pair (e, e + 1) for e in [start, stop); a row starting at e + 1
        # separates the pair, whatever the columns.
        increasing = indices[start + 1:stop + 1] > indices[start:stop]
        first, last = np.searchsorted(row_starts, [start + 1, stop + 1])
        increasing[row_starts[first:last] - 1 - start] = True
        if not increasing.all():
            return False
    return True


def repeated_pairs_error(n_repeated, row, col, what="X", fix=None, pair="(row, column)"):
    """The ValueError of input that stores a (row, column) pair twice or more.

    ``n_repeated`` entries repeat a pair stored before them; (``row``,
    ``col``) is the first such pair, in the caller's terms (indices or ids).
    """
    fix = fix or ("keep one value per pair, e.g. the last: for a scipy matrix, "
                  "rebuild it from de-duplicated (row, col, value) triples")
    return ValueError(
        f"{what} names the same {pair} pair twice or more: {n_repeated} "
        f"repeated entr{'y' if n_repeated == 1 else 'ies'}, the first at ({row}, {col}); "
        f"a pair is one observation, never summed: {fix}")


def _check_no_duplicates(indices, indptr, n_features):
    # A repeated (row, column) pair has no meaning as an observation.
    if _rows_sorted(indices, indptr):
        return  # sorted rows (the usual case) cannot repeat a column
    rows = np.repeat(np.arange(indptr.shape[0] - 1, dtype=np.int64), np.diff(indptr))
    rows, cols, _, n_repeated, first = sort_entries(rows, indices, indices)
    if n_repeated:
        raise repeated_pairs_error(n_repeated, int(rows[first]), int(cols[first]),
                                   "the data")


def as_observed(X, *, missing_values=np.nan, dtype=None):
    """Return the observed entries of ``X`` as :class:`ObservedData`.

    Parameters
    ----------
    X : {array-like, sparse matrix, ObservedData} of shape (n_samples, n_features)
        Dense input: entries equal to ``missing_values`` are missing (NaN
        matches NaN). Sparse input: the stored entries are the observed ones,
        explicit zeros included; entries that are not stored are missing.
        ObservedData: used as it is.
    missing_values : float or None, default=np.nan
        Marker of missing entries in dense input; None: nothing is missing.
    dtype : {None, float32, float64}, default=None
        Dtype of the observed values; None keeps float32 and turns anything
        else into float64.

    Returns
    -------
    ObservedData

    Raises
    ------
    ValueError, TypeError
        For input that is not a 2-D matrix of real numbers with at least one
        row and one column, or is malformed (see :func:`sparse_as_csr`).
    """
    if isinstance(X, ObservedData):
        if dtype is None or X.data.dtype == dtype:
            return X
        return ObservedData(X.data.astype(dtype), X.indices, X.indptr, X.n_features,
                            copy=False)
    if sp.issparse(X):
        return _from_sparse(X, dtype)
    return _from_dense(X, missing_values, dtype)


def _check_2d(shape):
    if len(shape) != 2:
        raise ValueError(
            f"Expected a 2-D array (n_samples, n_features), got {len(shape)}-D of shape "
            f"{shape}. Reshape your data either using X.reshape(-1, 1) if it has a "
            "single feature or X.reshape(1, -1) if it is a single sample.")
    for size, what in zip(shape, ("sample", "feature")):
        if size < 1:
            raise ValueError(
                f"Found array with 0 {what}(s) (shape={shape}) while a minimum of 1 is "
                "required: X must have at least one row and one column.")


def _index_array(array, what, fix):
    array = np.asarray(array)
    if array.dtype not in _INDEX_DTYPES:
        raise TypeError(f"{what} must be int32 or int64, got dtype {array.dtype}; {fix}")
    if array.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array, got shape {array.shape}; {fix}")
    return array


def _check_range(index, size, what, fix):
    if index.shape[0] and (index.min() < 0 or index.max() >= size):
        raise ValueError(
            f"{what} must lie in [0, {size}), got values in [{index.min()}, "
            f"{index.max()}]; {fix}")


def _check_compressed(X, name, fix):
    n_rows, n_cols = X.shape
    data = np.asarray(X.data)
    if X.format == "bsr":
        block_rows, block_cols = X.blocksize
        major, minor = n_rows // block_rows, n_cols // block_cols
        good_data = data.ndim == 3 and data.shape[1:] == (block_rows, block_cols)
    else:
        major, minor = (n_rows, n_cols) if X.format == "csr" else (n_cols, n_rows)
        good_data = data.ndim == 1
    if not good_data:
        raise ValueError(f"{name} data has shape {data.shape}, which does not fit the "
                         f"format; {fix}")
    indices = _index_array(X.indices, f"{name} indices", fix)
    indptr = _index_array(X.indptr, f"{name} indptr", fix)
    if indptr.shape[0] != major + 1:
        raise ValueError(f"{name} indptr has {indptr.shape[0]} entries, but a matrix of "
                         f"shape {X.shape} needs {major + 1}; {fix}")
    if indices.shape[0] != data.shape[0]:
        raise ValueError(f"{name} data has {data.shape[0]} entries but indices has "
                         f"{indices.shape[0]}; {fix}")
    if indptr[0] != 0 or indptr[-1] != indices.shape[0]:
        raise ValueError(f"{name} indptr must start at 0 and end at nnz="
                         f"{indices.shape[0]}, got {indptr[0]} and {indptr[-1]}; "
                         f"{fix}")
    if (np.diff(indptr) < 0).any():
        raise ValueError(f"{name} indptr must be non-decreasing; {fix}")
    _check_range(indices, minor, f"{name} indices", fix)


def _check_coo(X, fix):
    data = np.asarray(X.data)
    coords = X.coords if hasattr(X, "coords") else (X.row, X.col)
    if data.ndim != 1 or len(coords) != 2:
        raise ValueError(f"COO data and coordinates do not fit a 2-D matrix; {fix}")
    for name, index, size in zip(("row", "col"), coords, X.shape):
        index = _index_array(index, f"COO {name} indices", fix)
        if index.shape[0] != data.shape[0]:
            raise ValueError(f"COO data has {data.shape[0]} entries but {name} has "
                             f"{index.shape[0]}; {fix}")
        _check_range(index, size, f"COO {name} indices", fix)


def _check_lil(X, fix):
    rows, data = X.rows, X.data
    if len(rows) != X.shape[0] or len(data) != X.shape[0] or any(
            len(r) != len(v) for r, v in zip(rows, data)):
        raise ValueError(f"LIL rows and data do not have the same lengths; {fix}")


def sparse_as_csr(X, fix=MALFORMED_MATRIX):
    """``X`` as CSR, its index arrays checked before scipy's compiled code reads them.

    scipy's conversions (tocsr, sorting, summing duplicates) trust the index
    arrays of a matrix; those of a matrix changed after it was built (say
    ``X.indices = ...``) or read from a crafted file could make them read or
    write out of bounds. ``fix`` ends the error messages.

    Raises
    ------
    ValueError, TypeError
        If an index array has the wrong length, dtype or values.
    """
    if X.format in ("csr", "csc", "bsr"):
        _check_compressed(X, X.format.upper(), fix)
    elif X.format == "coo":
        _check_coo(X, fix)
    elif X.format == "lil":
        _check_lil(X, fix)  # columns are checked in the CSR made from it
    else:
        # dok, dia: their conversion to COO is NumPy code; check its result.
        X = X.tocoo()
        _check_coo(X, fix)
    return X.tocsr()


def repeated_pairs(X, fix=MALFORMED_MATRIX):
    """Repeated (row, column) pairs of a scipy.sparse matrix, its arrays checked first.

    Returns
    -------
    n_repeated : int
        Stored entries whose pair an earlier entry has (0: none).
    row, col : int
        The first repeated pair (-1, -1 with none).
    """
    if X.format == "coo":
        # scipy's conversion of COO adds repeated pairs up: look before it.
        _check_coo(X, fix)
        coords = X.coords if hasattr(X, "coords") else (X.row, X.col)
        rows, cols = np.asarray(coords[0]), np.asarray(coords[1])
    else:
        csr = sparse_as_csr(X, fix)
        if csr.has_canonical_format:
            return 0, -1, -1
        rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
        cols = np.asarray(csr.indices)
    rows, cols, _, n_repeated, first = sort_entries(rows, cols, cols)
    if not n_repeated:
        return 0, -1, -1
    return n_repeated, int(rows[first]), int(cols[first])


def _from_sparse(X, dtype):
    _check_2d(X.shape)
    _numbers_only(X.dtype)
    values_dtype = value_dtype(X.dtype, dtype)
    n_repeated, row, col = repeated_pairs(X)
    if n_repeated:
        raise repeated_pairs_error(n_repeated, row, col)
    csr = sparse_as_csr(X)
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sort_indices()  # no repeated pair (checked above): canonical now
    indices, indptr = csr.indices, csr.indptr
    if indices.dtype != indptr.dtype:
        common = np.promote_types(indices.dtype, indptr.dtype)
        indices, indptr = indices.astype(common), indptr.astype(common)
    return ObservedData(
        csr.data.astype(values_dtype, copy=False), indices, indptr, X.shape[1]
    )


def _is_nan(value):
    try:
        return bool(np.isnan(value))
    except TypeError:
        return False


def _numbers_only(dtype):
    # Complex numbers are refused as non-numbers here (estimators say more).
    if np.dtype(dtype).kind not in "biuf":
        raise TypeError(f"X must hold numbers, got dtype {dtype}")


def _from_dense(X, missing_values, dtype):
    X = np.asarray(X)
    _check_2d(X.shape)
    _numbers_only(X.dtype)
    values_dtype = value_dtype(X.dtype, dtype)
    if missing_values is None:
        observed = np.ones(X.shape, dtype=bool)
    elif _is_nan(missing_values):
        observed = ~np.isnan(X) if X.dtype.kind == "f" else np.ones(X.shape, dtype=bool)
    else:
        observed = X != missing_values
    counts = observed.sum(axis=1)
    nnz = int(counts.sum())
    indices_dtype = index_dtype(nnz, X.shape[1])
    indptr = np.zeros(X.shape[0] + 1, dtype=indices_dtype)
    np.cumsum(counts, out=indptr[1:])
    indices = np.nonzero(observed)[1].astype(indices_dtype, copy=False)
    data = X[observed].astype(values_dtype, copy=False)  # a fresh array
    return ObservedData(data, indices, indptr, X.shape[1], copy=False)


def empty_observed(n_samples, n_features, dtype):
    """``n_samples`` rows with no observed entry."""
    indices_dtype = index_dtype(n_features)
    return ObservedData(np.empty(0, dtype), np.empty(0, indices_dtype),
                        np.zeros(n_samples + 1, indices_dtype), n_features, copy=False)


# ---------------------------------------------------------------------------
# rows and entries
# ---------------------------------------------------------------------------

def sort_entries(rows, cols, values):
    """Entries given as (row, column, value) sorted by row then column.

    Returns
    -------
    rows, cols, values : ndarray
        Sorted.
    n_repeated : int
        Entries whose (row, column) pair is that of the entry before them.
    first : int
        Position, in the sorted arrays, of the first such pair (-1 with none).
    """
    order = np.lexsort((cols, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    repeated = (rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1])
    n_repeated = int(repeated.sum())
    return rows, cols, values, n_repeated, int(np.argmax(repeated)) if n_repeated else -1


def row_of_entry(data):
    """The row of each observed entry, (nnz,) intp."""
    return np.repeat(np.arange(data.n_samples, dtype=np.intp), np.diff(data.indptr))


def row_subset(data, rows):
    """The given (sorted, distinct) rows of ``data``, as new ObservedData."""
    starts = data.indptr[rows].astype(np.int64)
    counts = data.indptr[rows + 1].astype(np.int64) - starts
    indptr = np.zeros(rows.shape[0] + 1, dtype=data.indptr.dtype)
    np.cumsum(counts, out=indptr[1:])
    take = np.repeat(starts - indptr[:-1], counts) + np.arange(indptr[-1])
    return ObservedData(data.data[take], data.indices[take], indptr, data.n_features,
                        copy=False)


def row_entries(data, rows):
    """(columns, values) of each of the given rows, as a list of pairs of copies."""
    out = []
    for row in np.asarray(rows).tolist():
        start, stop = data.indptr[row], data.indptr[row + 1]
        out.append((np.array(data.indices[start:stop]), np.array(data.data[start:stop])))
    return out


def dense_rows(entries, fill):
    """Rows given as (columns, values) pairs, dense, missing entries from ``fill``."""
    out = np.empty((len(entries), np.shape(fill)[0]))
    for out_row, (columns, values) in zip(out, entries):
        out_row[:] = fill
        out_row[columns] = values
    return out


def entry_values(data, rows, cols):
    """Values of ``data`` at (rows, cols), and a mask of those observed."""
    keys = row_of_entry(data).astype(np.int64) * data.n_features + data.indices
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    query = rows.astype(np.int64) * data.n_features + cols
    where = np.minimum(np.searchsorted(keys, query), max(keys.shape[0] - 1, 0))
    found = keys[where] == query if keys.shape[0] else np.zeros(query.shape, bool)
    values = data.data[order[where]] if keys.shape[0] else np.zeros(query.shape)
    return values, found


# ---------------------------------------------------------------------------
# sums over the observed entries
# ---------------------------------------------------------------------------

# Observed entries per block of rows in the sums: their temporaries are
# O(block), never O(nnz).
_BLOCK_ENTRIES = 1 << 21


def _block_csr(data, first, last, values):
    start = data.indptr[first]
    return sp.csr_matrix((values, data.indices[start:data.indptr[last]],
                          data.indptr[first:last + 1] - start),
                         shape=(last - first, data.n_features), copy=False)


def _column_sums(data, entry_values_of):
    """Per-column float64 sums of values given per observed entry.

    ``entry_values_of(start, stop)`` returns the values of entries start..stop-1;
    it is called on blocks of rows.
    """
    sums = np.zeros(data.n_features)
    for first, last in row_blocks(data.indptr, _BLOCK_ENTRIES):
        values = entry_values_of(data.indptr[first], data.indptr[last])
        # A sparse product: much faster than np.bincount with weights.
        sums += _block_csr(data, first, last, values).T @ np.ones(last - first)
    return sums


def column_sums(data):
    """Per-column float64 sums of the observed values of ``data``."""
    return _column_sums(data, lambda start, stop: data.data[start:stop].astype(np.float64))


def column_counts(data):
    """Number of observed entries of each column, as float64."""
    counts = np.zeros(data.n_features)
    # By blocks: np.bincount copies its input to intp.
    for first, last in row_blocks(data.indptr, _BLOCK_ENTRIES):
        counts += np.bincount(data.indices[data.indptr[first]:data.indptr[last]],
                              minlength=data.n_features)
    return counts


def centred_column_sq(data, centres):
    """Per centre and column i, the sum over observed x_ui of (x_ui - centre_i)^2.

    Returns
    -------
    ndarray of shape (len(centres), n_features)
    """
    def squares_from(centre):
        def squares(start, stop):
            diff = data.data[start:stop] - centre[data.indices[start:stop]]
            return np.square(diff, out=diff)
        return squares
    return np.stack([_column_sums(data, squares_from(centre)) for centre in centres])


def cluster_sizes(data, labels, n_components):
    """Rows with an observed entry in each cluster, float64 (n_components,)."""
    seen = labels[np.diff(data.indptr) > 0]
    return np.bincount(seen, minlength=n_components).astype(np.float64)


def cluster_sums(data, labels, means, diag):
    """Squared deviations of the observed entries from their cluster's mean.

    Returns
    -------
    cluster_sq, counts : ndarray of shape (K,), or (K, d) if ``diag``
        Sums of the squared deviations and numbers of entries, per cluster
        (and column).
    """
    n_components, n_features = means.shape
    cluster_sq = np.zeros((n_components, n_features) if diag else n_components)
    counts = np.zeros_like(cluster_sq)
    for first, last in row_blocks(data.indptr, _BLOCK_ENTRIES):
        start, stop = data.indptr[first], data.indptr[last]
        entry_labels = np.repeat(labels[first:last], np.diff(data.indptr[first:last + 1]))
        columns = data.indices[start:stop]
        sq = np.square(data.data[start:stop] - means[entry_labels, columns])
        if diag:
            cells = entry_labels * n_features + columns
            size = n_components * n_features
            cluster_sq += np.bincount(cells, weights=sq, minlength=size).reshape(
                n_components, n_features)
            counts += np.bincount(cells, minlength=size).reshape(n_components, n_features)
        else:
            cluster_sq += np.bincount(entry_labels, weights=sq, minlength=n_components)
            counts += np.bincount(entry_labels, minlength=n_components)
    return cluster_sq, counts
