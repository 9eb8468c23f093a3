"""Dask input and the EM driver for matrices held in row blocks on a cluster.

Imported by the estimator only when it is given a Dask collection, so that
importing fastem never imports Dask.

A matrix is a list of row blocks, each an :class:`~fastem._data.ObservedData`
built on a worker from a row chunk of a ``dask.array.Array`` or from the
(row, col, value) triples of a ``dask.dataframe.DataFrame`` grouped by row.
A fit persists the blocks once; each EM iteration then sends the parameters
to every worker once, runs the fused pass on each block where it lives (the
posteriors never leave the worker) and adds the small K x d statistics in a
tree, on each worker first, so that one sum per worker crosses the network;
the client runs the M-step of the in-memory driver
(:func:`fastem._em.em_loop`). Everything goes through ``dask.compute`` and
``dask.persist``, so it runs on whatever scheduler is active: a
``distributed.Client`` or Dask's local threads.
"""

import math
import numbers
import sys
import threading
from typing import NamedTuple

import dask
import dask.array as da
import dask.sizeof
import numpy as np
import scipy.sparse as sp

from ._data import ObservedData, as_observed
from ._em import (COURSE_WEIGHT_FLOOR, EMResult, Params, SufficientStats,
                  check_loop_settings, check_params, check_row_loglik, em_loop, estep,
                  exact_sum, exact_to_float, fused_pass, make_workspace)
from ._init import (Distances, centred_column_sq, cluster_sums, column_counts,
                    column_sums, lloyd_params)
from .mixture import _entry_indices, completed, completed_entries

__all__ = ["Triples", "from_triples", "BlockData", "fit_data",
           "run_em", "exact_sum", "exact_to_float", "predict_blocks", "total_loglik",
           "predict_entries"]

# Partial sums added per task of a reduction on one worker (across workers
# the sums are added pairwise). The trees add in block order: their sums do
# not depend on when the tasks ran, only, in their last bits, on which
# worker holds which block.
SPLIT_EVERY = 8
# Seconds a broadcast of parameters may take (K x d floats, normally well
# under a second) before they go in the task graph instead.
SCATTER_TIMEOUT = 30
_SPLIT_HINT = "rechunk it so that each chunk holds whole rows: X.rechunk({1: -1})"


# ---------------------------------------------------------------------------
# the scheduler: broadcasts, computations, reductions
# ---------------------------------------------------------------------------

def _client():
    """The distributed Client that ``dask.compute`` would use now, or None."""
    scheduler = dask.base.get_scheduler()
    client = getattr(scheduler, "__self__", None)
    if client is not None and type(client).__module__.startswith("distributed"):
        return client
    return None


def _share(value):
    """``value`` as a dependency of tasks, sent to the workers once.

    With a distributed Client it is scattered to every worker (one copy
    each, however many tasks read it); otherwise it is one key of the graph.
    Keep the returned object while tasks that read it may still run.
    """
    client = _client()
    if client is None:
        return dask.delayed(value, traverse=False)
    try:
        # A list of one: scatter would send the items of a tuple one by one.
        return client.scatter([value], broadcast=True, hash=False,
                              timeout=SCATTER_TIMEOUT)[0]
    except (OSError, KeyError):
        # A worker left the cluster during the broadcast (a connection
        # closed or timed out, a worker unknown by the time of the copy).
        # The value then travels in the graph, from which Dask can compute
        # it again wherever it is lost.
        return dask.delayed(value, traverse=False)


def _task(function, *args):
    return dask.delayed(function, pure=False)(*args)


def _compute(*collections):
    # Graphs of a few tasks per block on blocks already built: nothing to
    # optimise, and optimising costs time on every EM iteration.
    return dask.compute(*collections, optimize_graph=False)


def _persist(delayeds):
    return list(dask.persist(*delayeds)) if delayeds else []


def _add(*parts):
    """Sum of tuples of arrays and numbers, item by item, in the order given."""
    total = list(parts[0])
    for part in parts[1:]:
        for k, item in enumerate(part):
            total[k] = total[k] + item
    return tuple(total)


def _tree_sum(parts, split_every=SPLIT_EVERY):
    """A task summing the tuples ``parts`` in a tree of fixed shape, in their order."""
    while len(parts) > 1:
        parts = [_task(_add, *parts[start:start + split_every])
                 for start in range(0, len(parts), split_every)]
    return parts[0]


def _owners(blocks):
    """The worker holding each persisted block, or None without a distributed Client."""
    client = _client()
    if client is None:
        return None
    holders = client.who_has(blocks)
    return [(holders.get(block.key) or (None,))[0] for block in blocks]


def _local_first_sum(parts, owners):
    """A task summing the tuples ``parts`` (one per block), worker by worker.

    The parts of the blocks a worker holds are added there first, in block
    order, so that one sum per worker crosses the network, not one per
    block; the sums of the workers are then added pairwise, in the order of
    their first blocks: log2(workers) transfers of one sum on the longest
    path. ``owners`` None: one tree over all the blocks.
    """
    if owners is None:
        return _tree_sum(parts)
    groups = {}
    for part, owner in zip(parts, owners):
        groups.setdefault(owner, []).append(part)
    return _tree_sum([_tree_sum(group) for group in groups.values()], split_every=2)


# Dask places tasks by the size of their inputs: without these, a block
# would look like a small object, free to move to wherever a task runs.
@dask.sizeof.sizeof.register(ObservedData)
def _sizeof_block(block):
    return int(block.data.nbytes + block.indices.nbytes + block.indptr.nbytes)


@dask.sizeof.sizeof.register(Distances)
def _sizeof_distances(distances):
    return _sizeof_block(distances.data)


# Scratch memory of the compiled pass, one per worker thread, kept across
# iterations as the in-memory driver keeps its own.
_scratch = threading.local()


def _workspace(n_components, n_features, diag, backend, n_threads):
    key = (n_components, n_features, diag, backend, n_threads)
    cached = getattr(_scratch, "workspace", None)
    if cached is None or cached[0] != key:
        cached = (key, make_workspace(n_components, n_features, diag=diag,
                                      backend=backend, n_threads=n_threads))
        _scratch.workspace = cached
    return cached[1]


class _Kernels(NamedTuple):
    """How each block's kernels run: backend and threads per block."""

    backend: object
    n_threads: int


def _kernels(backend, n_threads):
    # Each worker runs tasks in its own threads already: one kernel thread
    # per block unless asked, so that the cores are not oversubscribed.
    return _Kernels(backend, 1 if n_threads is None else int(n_threads))


# ---------------------------------------------------------------------------
# input: Dask arrays
# ---------------------------------------------------------------------------

class _Input(NamedTuple):
    """A matrix as lazy row blocks (Delayed ObservedData)."""

    blocks: list
    row_counts: tuple  # rows per block, NaN where unknown
    n_features: int
    dtype: np.dtype  # of the observed values


def _value_dtype(dtype, what):
    """Dtype of the observed values read from ``dtype``: float32 stays, else float64."""
    # pandas' nullable dtypes name their NumPy dtype; other non-NumPy dtypes
    # (strings, categories) hold no numbers.
    dtype = getattr(dtype, "numpy_dtype", dtype)
    if not isinstance(dtype, np.dtype):
        raise TypeError(f"{what} must hold numbers, got dtype {dtype}")
    if dtype.kind == "c":
        raise ValueError(f"Complex data not supported; {what} must hold real numbers")
    if dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold numbers, got dtype {dtype}")
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


def _empty_block(n_rows, n_features, dtype):
    index_dtype = np.int32 if n_features < 2**31 else np.int64
    return ObservedData(np.empty(0, dtype), np.empty(0, index_dtype),
                        np.zeros(n_rows + 1, index_dtype), n_features, copy=False)


def _array_block(chunk, missing_values, n_features, dtype):
    """One row chunk of a Dask array as ObservedData (runs on a worker)."""
    if sp.issparse(chunk):
        if chunk.shape[1:] != (n_features,):
            raise ValueError(f"a block of X has shape {chunk.shape}, but X has "
                             f"{n_features} columns; {_SPLIT_HINT}")
        if chunk.shape[0] == 0:
            return _empty_block(0, n_features, dtype)
        return as_observed(chunk, dtype=dtype)
    if not isinstance(chunk, np.ndarray):
        raise TypeError(f"the blocks of a Dask array must be NumPy arrays or "
                        f"scipy.sparse matrices, got {type(chunk).__name__}")
    if chunk.ndim != 2 or chunk.shape[1] != n_features:
        raise ValueError(f"a block of X has shape {chunk.shape}, but X has "
                         f"{n_features} columns; {_SPLIT_HINT}")
    if chunk.shape[0] == 0:
        return _empty_block(0, n_features, dtype)
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
    dtype = _value_dtype(X.dtype, "X")
    chunks = X.to_delayed().ravel().tolist()
    blocks = [dask.delayed(_array_block, pure=True)(chunk, missing_values, n_features,
                                                    dtype) for chunk in chunks]
    return _Input(blocks, tuple(X.chunks[0]), int(n_features), dtype)


# ---------------------------------------------------------------------------
# input: triples
# ---------------------------------------------------------------------------

def _check_count(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be None or an int >= 1, got {value!r}")
    return int(value)


class Triples:
    """Ratings as (row, col, value) triples in a Dask DataFrame, read as a matrix.

    Made by :func:`from_triples`; the estimator's methods take it where they
    take X. See there for the parameters.
    """

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
        self.value_dtype = _value_dtype(frame.dtypes[value], f"the value column {value!r}")
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

        ``n_features`` (the model's, for predictions) replaces the data's when
        the number of columns was not given.
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

        Partition ``p`` holds the rows in ``[divisions[p], divisions[p + 1])``
        (the last one includes its upper division).
        """
        row = self.names[0]
        npartitions = self.npartitions or self.frame.npartitions
        # Dask's default shuffle needs a distributed Client; without one
        # (local threads, say), the shuffle of tasks.
        method = None if _client() is not None else "tasks"
        if self._divisions is None:
            # Dask picks the divisions from quantiles of the rows (a pass over
            # the data); rows are integers, so partition p starts at the first
            # one >= its division.
            divisions = self.frame.set_index(row, npartitions=npartitions,
                                             shuffle_method=method).divisions
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
    order = np.lexsort((cols, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    repeated = (rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1])
    if repeated.any():
        k = int(np.argmax(repeated))
        raise ValueError(f"the pair ({row}={start + rows[k]}, {col}={cols[k]}) appears "
                         f"more than once; keep one value per pair (e.g. "
                         f"df.drop_duplicates([{row!r}, {col!r}]) or a groupby mean)")
    index_dtype = np.int32 if max(rows.shape[0], n_features) < 2**31 else np.int64
    indptr = np.zeros(n_rows + 1, dtype=index_dtype)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return ObservedData(values, cols.astype(index_dtype), indptr, n_features, copy=False)


def _triples_input(triples, n_features=None):
    n_samples, n_features = triples.matrix_shape(n_features)
    dtype = triples.value_dtype
    if triples.summary()[0] == 0:
        block = dask.delayed(_empty_block)(n_samples, n_features, dtype)
        return _Input([block], (n_samples,), n_features, dtype)
    grouped = triples.grouped()
    divisions = triples._divisions
    # Partition p covers rows [start, stop): all rows from 0 to n_samples, with
    # any row of no triple in the partition where it would sort.
    bounds = [0, *divisions[1:-1], n_samples]
    parts = grouped.to_delayed()
    blocks = [dask.delayed(_triples_block, pure=True)(part, start, stop, triples.names,
                                                      n_features, dtype)
              for part, start, stop in zip(parts, bounds[:-1], bounds[1:])]
    return _Input(blocks, tuple(stop - start for start, stop in zip(bounds[:-1],
                                                                    bounds[1:])),
                  n_features, dtype)


def _is_dataframe(X):
    # A Dask DataFrame exists only once dask.dataframe (and pandas) is imported.
    module = sys.modules.get("dask.dataframe")
    return module is not None and isinstance(X, module.DataFrame)


def _input(X, missing_values, n_features=None):
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


# ---------------------------------------------------------------------------
# the persisted blocks of a fit
# ---------------------------------------------------------------------------

def _block_info(block):
    largest = float(np.abs(block.data).max()) if block.nnz else 0.0
    return block.n_samples, block.nnz, largest


def fit_data(X, missing_values, *, backend=None, n_threads=None):
    """The row blocks of ``X`` built and persisted on the workers, for a fit.

    Parameters
    ----------
    X : dask.array.Array, dask.dataframe.DataFrame or Triples
    missing_values : float or None
        Marker of missing entries in NumPy blocks.
    backend : {None, 'cython', 'python'}
    n_threads : int or None
        Kernel threads per block task; None: 1.

    Returns
    -------
    BlockData
    """
    source = _input(X, missing_values)
    if all(not math.isnan(n) for n in source.row_counts) and sum(source.row_counts) == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape=(0, {source.n_features})) "
                         "while a minimum of 1 is required.")
    blocks = _persist(source.blocks)
    infos = _compute([_task(_block_info, block) for block in blocks])[0]
    for k, ((n_rows, _, _), expected) in enumerate(zip(infos, source.row_counts)):
        if not math.isnan(expected) and n_rows != expected:
            raise ValueError(f"block {k} of X has {n_rows} rows where its chunks say "
                             f"{expected}; recompute them: X.compute_chunk_sizes()")
    return BlockData(blocks, infos, source.n_features, source.dtype,
                     kernels=_kernels(backend, n_threads))


class BlockData:
    """A matrix held as persisted row blocks: what a fit reads, block by block.

    Has the attributes and methods of :class:`fastem._init.LocalData`, so the
    initialisations run on it with the same random draws as in memory; each
    method is a computation over the blocks summed on the client.

    Parameters
    ----------
    blocks : list of Delayed ObservedData
        Persisted row blocks, in row order.
    infos : list of (n_rows, nnz, largest |value|)
        One per block.
    n_features : int
    dtype : numpy.dtype
        Of the observed values.
    kernels : _Kernels
    """

    def __init__(self, blocks, infos, n_features, dtype, *, kernels):
        # Blocks without rows take no part in a fit.
        kept = [(block, info) for block, info in zip(blocks, infos) if info[0] > 0]
        self.blocks = [block for block, _ in kept]
        row_counts = np.array([info[0] for _, info in kept], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(row_counts)])
        self.n_samples = int(self.starts[-1])
        self.n_features = int(n_features)
        self.nnz = int(sum(info[1] for _, info in kept))
        self.max_abs = max((info[2] for _, info in kept), default=0.0)
        self.dtype = dtype
        self.kernels = kernels
        # Where the blocks are: a hint for the reductions (a stale one after
        # a worker is lost costs transfers, not correctness).
        self.owners = _owners(self.blocks)
        self._column_stats = None
        self._variance = None
        self._fetched = {}

    @property
    def shape(self):
        return (self.n_samples, self.n_features)

    def task_on(self, k, function, *args):
        """A task reading block ``k``, to run on the worker holding the block.

        Without the hint Dask may run it on an idle worker and copy the block
        there (it weighs a transfer against waiting); a worker that has left
        is passed over.
        """
        if self.owners is None or self.owners[k] is None:
            return _task(function, *args)
        with dask.annotate(workers=[self.owners[k]], allow_other_workers=True):
            return _task(function, *args)

    def sum_parts(self, parts):
        """A task summing one tuple per block (see :func:`_local_first_sum`)."""
        return _local_first_sum(parts, self.owners)

    def sum_over_blocks(self, function, *args):
        """Computed sum over the blocks of ``function(block, *args)`` (tuples)."""
        return _compute(self.sum_parts([self.task_on(k, function, block, *args)
                                        for k, block in enumerate(self.blocks)]))[0]

    def _block_of(self, rows):
        """(block, row within it) of each global row."""
        rows = np.asarray(rows, dtype=np.int64)
        block = np.searchsorted(self.starts, rows, side="right") - 1
        return block, rows - self.starts[block]

    def column_counts(self):
        return self._columns()[1]

    def column_sums(self):
        return self._columns()[0]

    def _columns(self):
        if self._column_stats is None:
            self._column_stats = self.sum_over_blocks(_column_stats)
        return self._column_stats

    def remember_rows(self, rows, entries):
        """Keep the (columns, values) of these rows for the next :meth:`rows`."""
        self._fetched.update(zip(np.asarray(rows).tolist(), entries))

    def rows(self, rows, fill):
        """The given rows, dense, their missing entries from ``fill``: (len(rows), d)."""
        rows = np.asarray(rows, dtype=np.int64)
        fetched, self._fetched = self._fetched, {}
        missing = np.array(sorted(set(rows.tolist()) - set(fetched)), dtype=np.int64)
        blocks, local = self._block_of(missing)
        wanted = sorted(set(blocks.tolist()))
        found = _compute([self.task_on(b, _row_entries, self.blocks[b], local[blocks == b])
                          for b in wanted])[0]
        for b, entries in zip(wanted, found):
            fetched.update(zip(missing[blocks == b].tolist(), entries))
        out = []
        for row in rows.tolist():
            columns, values = fetched[row]
            dense = np.array(fill, dtype=np.float64)
            dense[columns] = values
            out.append(dense)
        return np.stack(out)

    def centred_column_sq(self, centres):
        shared = _share(np.ascontiguousarray(centres, dtype=np.float64))
        return self.sum_over_blocks(_centred_column_sq, shared)[0]

    def overall_variance(self):
        """Variance of all observed values (two passes); 1 where it is not positive."""
        if self._variance is None:
            if self.nnz == 0:
                self._variance = 1.0
            else:
                mean = float(self.column_sums().sum()) / self.nnz
                (sq,) = self.sum_over_blocks(_squared_deviations, mean)
                value = float(sq) / self.nnz
                self._variance = value if value > 0 else 1.0
        return self._variance

    def seeding(self):
        return _BlockSeeding(self)

    def clustering(self, n_components):
        return _BlockClustering(self, n_components)

    def run_em(self, params, **settings):
        """:func:`run_em` on these blocks."""
        return run_em(self, params, **settings)


def _column_stats(block):
    return column_sums(block), column_counts(block)


def _centred_column_sq(block, centres):
    return (centred_column_sq(block, centres),)


def _squared_deviations(block, mean):
    deviations = block.data.astype(np.float64) - mean
    return (float(np.dot(deviations, deviations)),)


def _row_entries(block, rows):
    """(columns, values) of the given rows of a block."""
    out = []
    for row in rows.tolist():
        start, stop = block.indptr[row], block.indptr[row + 1]
        out.append((np.array(block.indices[start:stop]), np.array(block.data[start:stop])))
    return out


# ---------------------------------------------------------------------------
# k-means++ seeding and k-means on the blocks
# ---------------------------------------------------------------------------

class _BlockSeeding:
    """k-means++ state kept on the workers: per block, the distances of its rows
    to their closest centre; the client sees per-block totals only.

    A draw ``u * total`` falls in the first block whose running total reaches
    it, then at the first row of that block whose running sum reaches the
    rest: the row the in-memory cumulative sum finds, except when the draw
    lies within rounding (1e-16 relative) of a boundary between rows.
    """

    def __init__(self, data):
        self.data = data
        self.distances = _persist([data.task_on(k, Distances, block, data.kernels.backend,
                                                data.kernels.n_threads)
                                   for k, block in enumerate(data.blocks)])
        self.closest = self.trials = None
        self.block_totals = self.trial_totals = self.running = None
        # Centres the persisted state was computed from: kept while that state
        # may have to be recomputed (a lost worker).
        self.shared = []

    def start(self, centre):
        self.shared.append(_share(np.atleast_2d(centre)))
        self.closest = _persist([self.data.task_on(k, _first_distances, dist,
                                                   self.shared[-1])
                                 for k, dist in enumerate(self.distances)])
        self.block_totals = None

    def total(self):
        if self.block_totals is None:
            self.block_totals = np.array(_compute(
                [self.data.task_on(k, _distance_total, closest)
                 for k, closest in enumerate(self.closest)])[0])
        self.running = np.cumsum(self.block_totals)
        return self.running[-1]

    def locate(self, draws):
        blocks = np.searchsorted(self.running, draws)
        last = len(self.closest) - 1
        beyond = blocks > last  # past the end by rounding: the last row, as in memory
        blocks = np.minimum(blocks, last)
        offsets = np.where(blocks > 0, self.running[np.maximum(blocks - 1, 0)], 0.0)
        wanted = sorted(set(blocks.tolist()))
        found = _compute([self.data.task_on(b, _locate_in_block, self.closest[b],
                                            self.data.blocks[b],
                                            draws[blocks == b] - offsets[blocks == b])
                          for b in wanted])[0]
        rows = np.empty(draws.shape[0], dtype=np.int64)
        for b, (local, entries) in zip(wanted, found):
            rows[blocks == b] = self.data.starts[b] + local
            # The client asks for these rows next (the candidates): fetched now.
            self.data.remember_rows(self.data.starts[b] + local, entries)
        rows[beyond] = self.data.n_samples - 1
        return rows

    def trial(self, candidates):
        self.shared.append(_share(candidates))
        self.trials = _persist([
            self.data.task_on(k, _trial_distances, closest, dist, self.shared[-1])
            for k, (closest, dist) in enumerate(zip(self.closest, self.distances))])
        # Per block and candidate: the total distance if the candidate were kept.
        self.trial_totals = np.array(_compute([self.data.task_on(k, _distance_total, trial)
                                               for k, trial in enumerate(self.trials)])[0])
        return self.trial_totals.sum(axis=0)

    def keep(self, best):
        self.closest = _persist([self.data.task_on(k, _column, trial, best)
                                 for k, trial in enumerate(self.trials)])
        self.block_totals = self.trial_totals[:, best]


def _first_distances(distances, centre):
    return distances.to(centre)[:, 0]


def _distance_total(distances):
    """Sum over the rows of a block, row after row, per column if 2-D."""
    return distances.sum(axis=0)


def _locate_in_block(closest, block, draws):
    """Rows of a block where its running sum of distances reaches each draw,
    with their entries."""
    rows = np.searchsorted(np.cumsum(closest), draws)
    rows = np.minimum(rows, closest.shape[0] - 1)
    return rows, _row_entries(block, rows)


def _trial_distances(closest, distances, candidates):
    return np.minimum(closest[:, None], distances.to(candidates))


def _column(trial, best):
    return np.ascontiguousarray(trial[:, best])


class _BlockClustering:
    """k-means iterations on the blocks; the labels stay on the workers."""

    def __init__(self, data, n_components):
        self.data = data
        self.n_components = n_components
        self.labels = self.last_sizes = None
        self.shared = []  # parameters the persisted labels were computed from

    def assign(self, means):
        self.shared.append(_share(lloyd_params(means)))
        kernels = self.data.kernels
        on = self.data.task_on
        passes = _persist([on(k, _hard_pass, block, self.shared[-1], kernels)
                           for k, block in enumerate(self.data.blocks)])
        labels = _persist([on(k, _second, result) for k, result in enumerate(passes)])
        parts = self.data.sum_parts([on(k, _first, result)
                                     for k, result in enumerate(passes)])
        if self.labels is None:
            (*stats, sizes), = _compute(parts)
            same = [False]
        else:
            (*stats, sizes), same = _compute(parts, [
                on(k, np.array_equal, new, old)
                for k, (new, old) in enumerate(zip(labels, self.labels))])
        self.labels, self.last_sizes = labels, sizes
        return SufficientStats.from_arrays(*stats), all(same)

    def sizes(self, n_components):
        return self.last_sizes

    def spread(self, means, diag):
        shared = _share(means)
        parts = [self.data.task_on(k, _cluster_spread, block, labels, shared, diag)
                 for k, (block, labels) in enumerate(zip(self.data.blocks, self.labels))]
        return _compute(self.data.sum_parts(parts))[0]


def _hard_pass(block, params, kernels):
    """A k-means pass: statistics and cluster sizes (rows with an observed
    entry), and the labels."""
    n_components, n_features = params.means.shape
    post = np.empty((block.n_samples, n_components))
    row_loglik = np.empty(block.n_samples)
    stats = SufficientStats(n_components, n_features)
    fused_pass(block, params, post, row_loglik, stats, hard=True, backend=kernels.backend,
               n_threads=kernels.n_threads,
               workspace=_workspace(n_components, n_features, False, kernels.backend,
                                    kernels.n_threads))
    labels = post.argmax(axis=1)
    seen = labels[np.diff(block.indptr) > 0]
    sizes = np.bincount(seen, minlength=n_components).astype(np.float64)
    return (*stats.arrays(), sizes), labels


def _first(pair):
    return pair[0]


def _second(pair):
    return pair[1]


def _cluster_spread(block, labels, means, diag):
    return cluster_sums(block, labels, means, diag)


# ---------------------------------------------------------------------------
# EM
# ---------------------------------------------------------------------------

def _em_pass(block, params, first_row, kernels, weight_floor):
    """One fused pass over a block: its statistics and exact log-likelihood sum.

    The posteriors are made and dropped here, on the worker.
    """
    n_components, n_features = params.means.shape
    diag = params.variances.ndim == 2
    post = np.empty((block.n_samples, n_components))
    row_loglik = np.empty(block.n_samples)
    stats = SufficientStats(n_components, n_features, diag)
    fused_pass(block, params, post, row_loglik, stats, weight_floor=weight_floor,
               backend=kernels.backend, n_threads=kernels.n_threads,
               workspace=_workspace(n_components, n_features, diag, kernels.backend,
                                    kernels.n_threads))
    check_row_loglik(row_loglik, first_row)
    return (*stats.arrays(), exact_sum(row_loglik, backend=kernels.backend))


def run_em(data, params, *, tol=1e-6, max_iter=None, min_variance=0.25,
           mean_threshold=1.0, weight_floor=COURSE_WEIGHT_FLOOR, callback=None):
    """EM on persisted row blocks, as :func:`fastem._em.run_em` does in memory.

    Each iteration sends ``params`` to the workers once, runs one task per
    block (the fused pass where the block lives) and sums the statistics
    in a tree of tasks; the M-step, its checks and the convergence rule are
    :func:`fastem._em.em_loop`'s. The log-likelihood is the exactly rounded
    sum of the rows' (the in-memory value). Backend and threads are those of
    ``data.kernels``.

    Returns
    -------
    EMResult
        With ``post=None``: the posteriors stay on the workers.
    """
    check_loop_settings(tol, max_iter)
    params = check_params(params, data.n_features)
    first_rows = data.starts[:-1].tolist()

    def one_pass(params):
        shared = _share(params)
        parts = [data.task_on(k, _em_pass, block, shared, first_row, data.kernels,
                              weight_floor)
                 for k, (block, first_row) in enumerate(zip(data.blocks, first_rows))]
        *arrays, loglik = _compute(data.sum_parts(parts))[0]
        return SufficientStats.from_arrays(*arrays), exact_to_float(loglik)

    params, log_likelihood, n_iter, converged = em_loop(
        one_pass, params, data.n_samples, tol=tol, max_iter=max_iter,
        min_variance=min_variance, mean_threshold=mean_threshold, callback=callback)
    return EMResult(params, None, log_likelihood, n_iter, converged)


# ---------------------------------------------------------------------------
# predictions of a fitted model
# ---------------------------------------------------------------------------

def _model_input(model, X):
    """Lazy blocks of ``X``, checked against the fitted model, and its parameters."""
    source = _input(X, model.missing_values, n_features=model.n_features_in_)
    if source.n_features != model.n_features_in_:
        raise ValueError(f"X has {source.n_features} features, but GaussianMixture is "
                         f"expecting {model.n_features_in_} features as input")
    # A copy: the lazy results must not change if the model is fitted again.
    params = Params(np.array(model.means_, dtype=np.float64),
                    np.array(model.variances_, dtype=np.float64),
                    np.array(model.weights_, dtype=np.float64))
    return source, params, _kernels(model.backend, model.n_threads)


def _first_rows(row_counts):
    """Row number of the first row of each block; None where unknown."""
    starts = np.concatenate([[0], np.cumsum(row_counts)])[:-1]
    return [None if math.isnan(start) else int(start) for start in starts]


def _estep_block(block, params, kernels, first_row, index):
    """E-step of one block; ``first_row`` None when the blocks' sizes are unknown."""
    try:
        return estep(block, params, backend=kernels.backend, n_threads=kernels.n_threads,
                     first_row=first_row or 0)
    except ValueError as exc:
        if first_row is None:  # rows of this block counted from its start
            raise ValueError(f"in row block {index}: {exc}") from None
        raise


def _predict_block(block, params, method, kernels, first_row, index):
    post, row_loglik = _estep_block(block, params, kernels, first_row, index)
    if method == "predict_proba":
        return post
    if method == "predict":
        return post.argmax(axis=1)
    if method == "score_samples":
        return row_loglik
    return completed(block, post, params.means)  # fill


def _predict_chunk(chunk, params, method, kernels, missing_values, n_features, dtype,
                   block_info=None):
    """:func:`_predict_block` on a chunk of a Dask array (``map_blocks``)."""
    block = _array_block(chunk, missing_values, n_features, dtype)
    first_row = block_info[0]["array-location"][0][0] if block_info else None
    first_row = None if first_row is None or math.isnan(first_row) else int(first_row)
    index = block_info[0]["chunk-location"][0] if block_info else 0
    return _predict_block(block, params, method, kernels, first_row, index)


def predict_blocks(model, X, method):
    """``method`` of a fitted model on Dask input, as a lazy Dask array.

    Parameters
    ----------
    model : fitted GaussianMixture
    X : dask.array.Array, dask.dataframe.DataFrame or Triples
    method : {'predict_proba', 'predict', 'score_samples', 'fill'}

    Returns
    -------
    dask.array.Array
        The chunks of rows of a Dask array ``X``; one chunk per row block
        of triples.
    """
    source, params, kernels = _model_input(model, X)
    shared = dask.delayed(params, traverse=False)  # one key, read by every block
    n_components, n_features = params.means.shape
    dtype = {"predict_proba": np.float64, "predict": np.int64,
             "score_samples": np.float64, "fill": source.dtype}[method]
    columns = {"predict_proba": (n_components,), "predict": (),
               "score_samples": (), "fill": (n_features,)}[method]
    if isinstance(X, da.Array):
        extra = {"drop_axis": 1} if not columns else {}
        return X.map_blocks(_predict_chunk, shared, method, kernels, model.missing_values,
                            n_features, source.dtype, dtype=dtype,
                            meta=np.empty((0,) * (1 + len(columns)), dtype=dtype),
                            chunks=(X.chunks[0], *[(c,) for c in columns]), **extra)
    outputs = []
    for index, (block, n_rows, first_row) in enumerate(zip(
            source.blocks, source.row_counts, _first_rows(source.row_counts))):
        value = dask.delayed(_predict_block, pure=True)(block, shared, method, kernels,
                                                         first_row, index)
        outputs.append(da.from_delayed(value, shape=(n_rows, *columns), dtype=dtype))
    return da.concatenate(outputs, axis=0)


def _block_loglik(block, params, kernels, first_row, index):
    _, row_loglik = _estep_block(block, params, kernels, first_row, index)
    return block.n_samples, exact_sum(row_loglik, backend=kernels.backend)


def total_loglik(model, X):
    """(total log-likelihood, number of rows) of Dask input under a fitted model."""
    source, params, kernels = _model_input(model, X)
    shared = _share(params)
    parts = [_task(_block_loglik, block, shared, kernels, first_row, index)
             for index, (block, first_row) in enumerate(zip(
                 source.blocks, _first_rows(source.row_counts)))]
    n_samples, loglik = _compute(_tree_sum(parts))[0]
    if n_samples == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape=(0, {source.n_features})) "
                         "while a minimum of 1 is required.")
    return exact_to_float(loglik), int(n_samples)


def _block_rows(block):
    return block.n_samples


def _block_entries(block, rows, cols, params, kernels):
    return completed_entries(block, rows, cols, params, backend=kernels.backend,
                             n_threads=kernels.n_threads)


def predict_entries(model, X, rows, cols):
    """Entries (rows[p], cols[p]) of the completed matrix of Dask input, computed.

    Each block completes the entries of its own rows, where it lives.

    Returns
    -------
    ndarray of the shape of ``rows``
    """
    source, params, kernels = _model_input(model, X)
    row_counts = source.row_counts
    if any(math.isnan(n) for n in row_counts):
        row_counts = _compute([_task(_block_rows, block) for block in source.blocks])[0]
    starts = np.concatenate([[0], np.cumsum(row_counts, dtype=np.int64)])
    shape = np.shape(rows)
    rows, cols = _entry_indices(rows, cols, (int(starts[-1]), source.n_features))
    blocks = np.searchsorted(starts, rows, side="right") - 1
    wanted = sorted(set(blocks.tolist()))
    shared = _share(params) if wanted else None
    found = _compute([_task(_block_entries, source.blocks[b], rows[blocks == b] - starts[b],
                            cols[blocks == b], shared, kernels) for b in wanted])[0]
    values = np.empty(rows.shape[0], dtype=source.dtype)
    for b, block_values in zip(wanted, found):
        values[blocks == b] = block_values
    return values.reshape(shape)
