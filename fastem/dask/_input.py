"""Dask input: row blocks of a Dask array, or of (row, col, value) triples.

A matrix on Dask is a list of lazy row blocks, each an
:class:`~fastem._observed.ObservedData` built on a worker from a row chunk of
a ``dask.array.Array`` (NumPy or scipy.sparse chunks) or from the triples of
a ``dask.dataframe.DataFrame`` grouped by row (:class:`Triples`).
"""

import math
import numbers
import sys
from typing import NamedTuple

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp

from .._observed import ObservedData, as_observed, empty_observed, sort_entries
from .._source import DeferredInput
from .._validation import index_dtype, value_dtype
from ._scheduler import active_client

__all__ = ["LazyBlocks", "Triples", "from_triples", "lazy_blocks"]

_SPLIT_HINT = "rechunk it so that each chunk holds whole rows: X.rechunk({1: -1})"

# ---------------------------------------------------------------------------
# input: Dask arrays
# ---------------------------------------------------------------------------

class LazyBlocks(NamedTuple):
    """A matrix as lazy row blocks (Delayed ObservedData), in row order.

    ``reader`` (a Dask array, None for triples) is what the blocks are read
    from, chunk by chunk: per-row results mapped over its chunks keep them,
    the empty ones included.
    """

    blocks: list
    row_counts: tuple  # rows per block, NaN where unknown
    n_features: int
    dtype: np.dtype  # of the observed values
    reader: object = None
    missing_values: object = None


def _array_block(chunk, missing_values, n_features, dtype):
    """One row chunk of a Dask array as ObservedData (runs on a worker)."""
    if sp.issparse(chunk):
        if chunk.shape[1:] != (n_features,):
            raise ValueError(f"a block of X has shape {chunk.shape}, but X has "
                             f"{n_features} columns; {_SPLIT_HINT}")
        if chunk.shape[0] == 0:
            return empty_observed(0, n_features, dtype)
        return as_observed(chunk, dtype=dtype)
    if not isinstance(chunk, np.ndarray):
        raise TypeError(f"the blocks of a Dask array must be NumPy arrays or "
                        f"scipy.sparse matrices, got {type(chunk).__name__}")
    if chunk.ndim != 2 or chunk.shape[1] != n_features:
        raise ValueError(f"a block of X has shape {chunk.shape}, but X has "
                         f"{n_features} columns; {_SPLIT_HINT}")
    if chunk.shape[0] == 0:
        return empty_observed(0, n_features, dtype)
    return as_observed(chunk, missing_values=missing_values, dtype=dtype)


def _array_input(X, missing_values):
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D Dask array (n_samples, n_features), got "
                         f"{X.ndim}-D of shape {X.shape}")
    n_features = X.shape[1]
    if isinstance(n_features, float) and math.isnan(n_features):
        raise ValueError("X has an unknown number of columns; compute its chunk sizes "
                         "first: X.compute_chunk_sizes()")
    if n_features < 1:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a "
                         "minimum of 1 is required.")
    if len(X.chunks[1]) != 1:
        raise ValueError(f"X is chunked along its columns (column chunks "
                         f"{X.chunks[1][:5]}...); fastem needs whole rows in each block: "
                         "rechunk it with X.rechunk({1: -1})")
    dtype = value_dtype(X.dtype, what="X")
    chunks = X.to_delayed().ravel().tolist()
    blocks = [dask.delayed(_array_block, pure=True)(chunk, missing_values, n_features,
                                                    dtype) for chunk in chunks]
    return LazyBlocks(blocks, tuple(X.chunks[0]), int(n_features), dtype, X, missing_values)


# ---------------------------------------------------------------------------
# input: triples
# ---------------------------------------------------------------------------

def _check_count(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be None or an int >= 1, got {value!r}")
    return int(value)


class Triples(DeferredInput):
    """Ratings as (row, col, value) triples in a Dask DataFrame, read as a matrix.

    Made by :func:`from_triples`; the estimator's methods take it where they
    take X.

    Parameters
    ----------
    frame, row, col, value, n_samples, n_features, npartitions
        As in :func:`from_triples`.
    """

    source_module = "fastem.dask"

    def __init__(self, frame, *, row="row", col="col", value="value", n_samples=None,
                 n_features=None, npartitions=None):
        if not _is_dataframe(frame):
            raise TypeError(f"triples must be a dask.dataframe.DataFrame, got "
                            f"{type(frame).__name__}")
        names = (row, col, value)
        if len(set(names)) != 3:
            raise ValueError(f"row, col and value must name three different columns, "
                             f"got {names}")
        missing = [name for name in names if name not in frame.columns]
        if missing:
            raise ValueError(f"the DataFrame has no column {missing[0]!r}; its columns "
                             f"are {list(frame.columns)}; name the row, column and value "
                             "columns with from_triples(df, row=..., col=..., value=...)")
        for name, what in ((row, "row"), (col, "col")):
            if getattr(frame.dtypes[name], "kind", "O") not in "iu":
                raise ValueError(f"the {what} column {name!r} must hold integer indices, "
                                 f"got dtype {frame.dtypes[name]}; convert it with "
                                 f"df[{name!r}].astype('int64')")
        self.value_dtype = value_dtype(frame.dtypes[value], what=f"the value column {value!r}")
        self.frame = frame[list(names)]
        self.names = names
        self.n_samples = _check_count(n_samples, "n_samples")
        self.n_features = _check_count(n_features, "n_features")
        self.npartitions = _check_count(npartitions, "npartitions")
        self._summary = None
        self._divisions = None

    def __repr__(self):
        row, col, value = self.names
        return (f"Triples(row={row!r}, col={col!r}, value={value!r}, "
                f"n_samples={self.n_samples}, n_features={self.n_features}, "
                f"npartitions={self.frame.npartitions})")

    def summary(self):
        """(number of triples, largest row, largest column), checked; computed once.

        Returns
        -------
        tuple of int
            ``(count, largest row, largest column)``; -1 for the largest
            indices of no triple.

        Raises
        ------
        ValueError
            For missing values (NA) in any of the three columns, or a negative
            row or column.
        """
        if self._summary is None:
            row, col, value = self.names
            frame = self.frame
            count, nulls, row_min, row_max, col_min, col_max = dask.compute(
                frame[row].count(), frame.isna().sum(), frame[row].min(), frame[row].max(),
                frame[col].min(), frame[col].max())
            for name in self.names:
                if int(nulls[name]):
                    raise ValueError(f"the column {name!r} has {int(nulls[name])} missing "
                                     "value(s) (NA); drop those triples first: "
                                     "df.dropna()")
            count = int(count)
            for name, low in ((row, row_min), (col, col_min)):
                if count and int(low) < 0:
                    raise ValueError(f"the column {name!r} holds negative indices (down "
                                     f"to {int(low)}); rows and columns are numbered "
                                     "from 0")
            self._summary = (count, int(row_max) if count else -1,
                             int(col_max) if count else -1)
        return self._summary

    def matrix_shape(self, n_features=None):
        """(n_samples, n_features): given, else one more than the largest index.

        Parameters
        ----------
        n_features : int, optional
            The model's number of columns, for predictions: it replaces the
            data's when the number of columns was not given.

        Returns
        -------
        tuple of int
        """
        count, row_max, col_max = self.summary()
        n_samples = self.n_samples if self.n_samples is not None else row_max + 1
        n_features = self.n_features or n_features or col_max + 1
        if n_samples < 1:
            raise ValueError("the DataFrame holds no triple: give n_samples to read it as "
                             "a matrix of empty rows")
        if n_features < 1:
            raise ValueError("the DataFrame holds no triple: give n_features")
        for name, largest, size, what in ((self.names[0], row_max, n_samples, "n_samples"),
                                          (self.names[1], col_max, n_features,
                                           "n_features")):
            if largest >= size:
                raise ValueError(f"the column {name!r} holds index {largest}, but "
                                 f"{what}={size}; indices must lie in [0, {size})")
        return n_samples, n_features

    def grouped(self):
        """The triples indexed and partitioned by row (a shuffle by Dask).

        Returns
        -------
        dask.dataframe.DataFrame
            Partition ``p`` holds the rows in ``[divisions[p], divisions[p +
            1])`` (the last one includes its upper division).
        """
        row = self.names[0]
        npartitions = self.npartitions or self.frame.npartitions
        # Dask's default shuffle needs a distributed Client; without one
        # (local threads, say), the shuffle of tasks.
        method = None if active_client() is not None else "tasks"
        if self._divisions is None:
            # Dask picks the divisions from quantiles of the rows (a pass over
            # the data); rows are integers, so partition p starts at the first
            # one >= its division.
            divisions = self.frame.set_index(row, npartitions=npartitions,
                                             shuffle_method=method).divisions
            if any(d is None for d in divisions):
                # Dask left them unknown (one partition, say): one block of
                # every row.
                divisions = (0, max(self.summary()[1], 0))
            self._divisions = tuple(math.ceil(d) for d in divisions)
        # Explicit divisions: the partitions are those recorded, even where
        # the quantiles, computed again, would come out differently.
        return self.frame.set_index(row, divisions=list(self._divisions),
                                    shuffle_method=method)


def from_triples(df, row="row", col="col", value="value", *, n_samples=None,
                 n_features=None, npartitions=None):
    """Read (row, col, value) triples in a Dask DataFrame as a partially observed matrix.

    Each triple is one observed entry; every other entry is missing. The
    estimator's ``fit``, ``predict``, ``predict_proba``, ``score_samples``,
    ``score``, ``bic``, ``aic``, ``fill`` and ``predict_entries`` take the
    result where they take X. Dask groups the triples into blocks of
    consecutive rows (a shuffle by row, ``set_index``) on the workers; each
    block becomes the compact CSR form of its entries there.

    Parameters
    ----------
    df : dask.dataframe.DataFrame
        One triple per line; other columns are ignored.
    row, col, value : str, default 'row', 'col', 'value'
        Names of the columns holding the row index (int, from 0), the column
        index (int, from 0) and the observed value (numbers; float32 stays
        float32, anything else becomes float64).
    n_samples, n_features : int, optional
        Shape of the matrix; by default one more than the largest row
        (column) index. For predictions, ``n_features`` defaults to the
        fitted model's.
    npartitions : int, optional
        Number of row blocks; by default that of ``df``.

    Returns
    -------
    Triples

    Raises
    ------
    ValueError
        When a column is absent or does not hold integers (indices), holds
        missing values or negative indices, or an index reaches the given
        size; when a (row, col) pair appears twice or a value is not finite
        (raised when the blocks are built).

    Examples
    --------
    >>> import dask.dataframe as dd, fastem
    >>> from fastem.dask import from_triples
    >>> df = dd.read_parquet("ratings/")                         # doctest: +SKIP
    >>> X = from_triples(df, row="user", col="item", value="rating")  # doctest: +SKIP
    >>> gm = fastem.GaussianMixture(12).fit(X)                   # doctest: +SKIP
    """
    return Triples(df, row=row, col=col, value=value, n_samples=n_samples,
                   n_features=n_features, npartitions=npartitions)


def _triples_block(frame, start, stop, names, n_features, dtype):
    """The triples of rows [start, stop) as ObservedData (runs on a worker)."""
    row, col, value = names
    rows = frame.index.to_numpy(dtype=np.int64) - start
    cols = frame[col].to_numpy(dtype=np.int64)
    values = frame[value].to_numpy(dtype=dtype)
    n_rows = stop - start
    if rows.shape[0] and (rows.min() < 0 or rows.max() >= n_rows):
        raise ValueError(f"the column {row!r} holds indices outside [0, n_samples); "
                         f"block [{start}, {stop}) got [{start + rows.min()}, "
                         f"{start + rows.max()}]")
    if cols.shape[0] and (cols.min() < 0 or cols.max() >= n_features):
        raise ValueError(f"the column {col!r} holds indices outside [0, {n_features}), "
                         f"from {cols.min()} to {cols.max()}")
    if not np.isfinite(values).all():
        raise ValueError(f"the column {value!r} holds values that are not finite (NaN "
                         "or inf); drop those triples: a missing entry is one without "
                         "a triple")
    # Rows, then columns, ascending: the same block whatever order the
    # shuffle delivered the triples in.
    rows, cols, values, n_repeated, k = sort_entries(rows, cols, values)
    if n_repeated:
        raise ValueError(f"the pair ({row}={start + rows[k]}, {col}={cols[k]}) appears "
                         f"more than once ({n_repeated} repeated triple(s) in its block: a "
                         f"pair is one observation, never summed); keep one value per pair (e.g. "
                         f"df.drop_duplicates([{row!r}, {col!r}]) or a groupby mean)")
    indices_dtype = index_dtype(rows.shape[0], n_features)
    indptr = np.zeros(n_rows + 1, dtype=indices_dtype)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return ObservedData(values, cols.astype(indices_dtype), indptr, n_features, copy=False)


def _triples_input(triples, n_features=None):
    n_samples, n_features = triples.matrix_shape(n_features)
    dtype = triples.value_dtype
    if triples.summary()[0] == 0:
        block = dask.delayed(empty_observed)(n_samples, n_features, dtype)
        return LazyBlocks([block], (n_samples,), n_features, dtype)
    grouped = triples.grouped()
    divisions = triples._divisions
    # Partition p covers rows [start, stop): all rows from 0 to n_samples, with
    # any row of no triple in the partition where it would sort.
    bounds = [0, *divisions[1:-1], n_samples]
    parts = grouped.to_delayed()
    blocks = [dask.delayed(_triples_block, pure=True)(part, start, stop, triples.names,
                                                      n_features, dtype)
              for part, start, stop in zip(parts, bounds[:-1], bounds[1:])]
    return LazyBlocks(blocks, tuple(stop - start for start, stop in zip(bounds[:-1],
                                                                    bounds[1:])),
                  n_features, dtype)


def _is_dataframe(X):
    # A Dask DataFrame exists only once dask.dataframe (and pandas) is imported.
    module = sys.modules.get("dask.dataframe")
    return module is not None and isinstance(X, module.DataFrame)


def lazy_blocks(X, missing_values, n_features=None):
    """Lazy row blocks of a Dask array, a Dask DataFrame of triples or Triples."""
    if isinstance(X, Triples):
        return _triples_input(X, n_features)
    if isinstance(X, da.Array):
        return _array_input(X, missing_values)
    if _is_dataframe(X):
        return _triples_input(Triples(X), n_features)
    raise TypeError(f"a Dask {type(X).__name__} cannot be read as a matrix: pass a "
                    "dask.array.Array (chunked along rows), a dask.dataframe.DataFrame "
                    "of (row, col, value) triples, or fastem.dask.from_triples(df, ...)")

