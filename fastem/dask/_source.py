"""The data source of a matrix held in row blocks by Dask: :class:`DaskSource`.

A fit persists the blocks once; each EM iteration then sends the parameters
to every worker once, runs the fused pass on each block where it lives (the
posteriors never leave the worker) and adds the small K x d statistics in a
tree, on each worker first, so that one sum per worker crosses the network;
the client runs the M-step of the EM driver (``fastem._em``). The
initialisations read the sums and rows they need block by block, and the
k-means++ and k-means states stay on the workers. Predictions are lazy Dask
arrays, one chunk per row block.
"""

import math
import threading

import dask
import dask.array as da
import numpy as np

from .._observed import (centred_column_sq, cluster_sizes, cluster_sums, column_counts,
                         column_sums, dense_rows, row_entries)
from .._pass import PassBuffers, SufficientStats, estep, exact_sum, exact_to_float
from .._pass import sq_distances as _sq_distances
from .._predictions import completed_entries, entry_indices
from .._source import Clustering, DataSource, Seeding
from .._validation import Params
from ._input import lazy_blocks, _array_block
from ._scheduler import (block_owners, compute, local_first_sum, persist, share, task,
                         tree_sum)

__all__ = ["DaskSource", "as_source"]


def as_source(X, *, missing_values, backend, n_threads, for_fit, n_features=None):
    """The data source of a Dask array, a Dask DataFrame of triples or Triples.

    Parameters
    ----------
    X : dask.array.Array, dask.dataframe.DataFrame or Triples
    missing_values : float or None
        Marker of missing entries in NumPy blocks.
    backend : {None, 'cython', 'python'}
    n_threads : int or None
        Kernel threads per block task; None: 1 (Dask already runs one task
        per worker thread).
    for_fit : bool
        True: the blocks are built and persisted on the workers now, for
        the passes of a fit. False: they stay lazy (predictions).
    n_features : int, optional
        The fitted model's, for triples whose number of columns is not given.

    Returns
    -------
    DaskSource
    """
    lazy = lazy_blocks(X, missing_values, n_features)
    if for_fit:
        return DaskSource.persisted(lazy, backend=backend, n_threads=n_threads)
    return DaskSource(lazy.blocks, lazy.row_counts, lazy.n_features, lazy.dtype,
                      backend=backend, n_threads=n_threads, lazy=lazy)


def _block_info(block):
    largest = float(np.abs(block.data).max()) if block.nnz else 0.0
    return block.n_samples, block.nnz, largest


class DaskSource(DataSource):
    """A matrix held as row blocks by Dask.

    Parameters
    ----------
    blocks : list of Delayed ObservedData
        Row blocks, in row order (persisted for a fit, lazy otherwise).
    row_counts : sequence of int or NaN
        Rows per block, NaN where not known yet.
    n_features : int
    dtype : numpy.dtype
        Of the observed values.
    backend, n_threads
        How each block's kernels run; ``n_threads`` None: 1.
    nnz, max_abs : int and float, optional
        Known after the blocks are built (:meth:`persisted`).
    lazy : LazyBlocks, optional
        What lazy blocks were made from: predictions on a Dask array map its
        chunks, so that they keep them.
    """

    def __init__(self, blocks, row_counts, n_features, dtype, *, backend=None,
                 n_threads=None, nnz=None, max_abs=None, lazy=None):
        self.blocks = list(blocks)
        self.row_counts = tuple(row_counts)
        self.n_samples = sum(self.row_counts)
        if not math.isnan(self.n_samples):
            self.n_samples = int(self.n_samples)
            self.starts = np.concatenate([[0], np.cumsum(self.row_counts,
                                                         dtype=np.int64)])
        self.n_features = int(n_features)
        self.dtype = dtype
        self.nnz = nnz
        self.max_abs = max_abs
        self.backend = backend
        self.n_threads = 1 if n_threads is None else int(n_threads)
        # Where the blocks are: a hint for the reductions (a stale one after
        # a worker is lost costs transfers, not correctness).
        self.owners = block_owners(self.blocks) if nnz is not None else None
        self.lazy = lazy
        self._column_stats = None
        self._fetched = {}

    @classmethod
    def persisted(cls, lazy, *, backend=None, n_threads=None):
        """The blocks of ``lazy`` (LazyBlocks) built and persisted on the workers."""
        if (all(not math.isnan(n) for n in lazy.row_counts)
                and sum(lazy.row_counts) == 0):
            raise ValueError(f"Found array with 0 sample(s) (shape=(0, "
                             f"{lazy.n_features})) while a minimum of 1 is required.")
        blocks = persist(lazy.blocks)
        infos = compute([task(_block_info, block) for block in blocks])[0]
        for k, ((n_rows, _, _), expected) in enumerate(zip(infos, lazy.row_counts)):
            if not math.isnan(expected) and n_rows != expected:
                raise ValueError(f"block {k} of X has {n_rows} rows where its chunks say "
                                 f"{expected}; recompute them: X.compute_chunk_sizes()")
        # Blocks without rows take no part in a fit.
        kept = [(block, info) for block, info in zip(blocks, infos) if info[0] > 0]
        return cls([block for block, _ in kept], [info[0] for _, info in kept],
                   lazy.n_features, lazy.dtype, backend=backend, n_threads=n_threads,
                   nnz=int(sum(info[1] for _, info in kept)),
                   max_abs=max((info[2] for _, info in kept), default=0.0))

    # -- tasks on the blocks ----------------------------------------------------

    @property
    def kernels(self):
        """(backend, n_threads) of each block's kernels."""
        return (self.backend, self.n_threads)

    def task_on(self, k, function, *args):
        """A task reading block ``k``, to run on the worker holding the block.

        Without the hint Dask may run it on an idle worker and copy the block
        there (it weighs a transfer against waiting); a worker that has left
        is passed over.
        """
        if self.owners is None or self.owners[k] is None:
            return task(function, *args)
        with dask.annotate(workers=[self.owners[k]], allow_other_workers=True):
            return task(function, *args)

    def sum_parts(self, parts):
        """A task summing one tuple per block (see ``_scheduler.local_first_sum``)."""
        return local_first_sum(parts, self.owners)

    def sum_over_blocks(self, function, *args):
        """Computed sum over the blocks of ``function(block, *args)`` (tuples)."""
        return compute(self.sum_parts([self.task_on(k, function, block, *args)
                                       for k, block in enumerate(self.blocks)]))[0]

    def _first_rows(self):
        """Row number of the first row of each block; None where unknown."""
        starts = np.concatenate([[0], np.cumsum(self.row_counts)])[:-1]
        return [None if math.isnan(start) else int(start) for start in starts]

    # -- EM ---------------------------------------------------------------------

    def em_pass(self, params, *, weight_floor):
        shared = share(params)
        parts = [self.task_on(k, _em_pass, block, shared, first_row, self.kernels,
                              weight_floor)
                 for k, (block, first_row) in enumerate(zip(self.blocks,
                                                            self._first_rows()))]
        *arrays, loglik = compute(self.sum_parts(parts))[0]
        return SufficientStats.from_arrays(*arrays), exact_to_float(loglik)

    # -- what the initialisations read ------------------------------------------

    def _columns(self):
        if self._column_stats is None:
            self._column_stats = self.sum_over_blocks(_column_stats)
        return self._column_stats

    def column_counts(self):
        return self._columns()[1]

    def column_sums(self):
        return self._columns()[0]

    def _block_of(self, rows):
        """(block, row within it) of each global row."""
        rows = np.asarray(rows, dtype=np.int64)
        block = np.searchsorted(self.starts, rows, side="right") - 1
        return block, rows - self.starts[block]

    def remember_rows(self, rows, entries):
        """Keep the (columns, values) of these rows for the next :meth:`rows`."""
        self._fetched.update(zip(np.asarray(rows).tolist(), entries))

    def rows(self, rows, fill):
        rows = np.asarray(rows, dtype=np.int64)
        fetched, self._fetched = self._fetched, {}
        missing = np.array(sorted(set(rows.tolist()) - set(fetched)), dtype=np.int64)
        blocks, local = self._block_of(missing)
        wanted = sorted(set(blocks.tolist()))
        found = compute([self.task_on(b, row_entries, self.blocks[b], local[blocks == b])
                         for b in wanted])[0]
        for b, entries in zip(wanted, found):
            fetched.update(zip(missing[blocks == b].tolist(), entries))
        return dense_rows([fetched[row] for row in rows.tolist()], fill)

    def centred_column_sq(self, centres):
        shared = share(np.ascontiguousarray(centres, dtype=np.float64))
        return self.sum_over_blocks(_centred_column_sq, shared)[0]

    def seeding(self):
        return _Seeding(self)

    def clustering(self, n_components):
        return _Clustering(self, n_components)

    # -- predictions ------------------------------------------------------------

    def map_rows(self, params, output):
        # A copy: the lazy result must not change if the model is fitted again.
        params = Params(*(np.array(array, dtype=np.float64) for array in params))
        shared = dask.delayed(params, traverse=False)  # one key, read by every block
        n_components, n_features = params.means.shape
        columns = {"": (), "n_components": (n_components,),
                   "n_features": (n_features,)}[output.columns]
        dtype = self.dtype if output.dtype is None else output.dtype
        if self.lazy is not None and self.lazy.reader is not None:
            X = self.lazy.reader
            extra = {"drop_axis": 1} if not columns else {}
            return X.map_blocks(_map_chunk, shared, output.function, self.kernels,
                                self.lazy.missing_values, n_features, self.dtype,
                                dtype=dtype, meta=np.empty((0,) * (1 + len(columns)), dtype),
                                chunks=(X.chunks[0], *[(c,) for c in columns]), **extra)
        parts = []
        for index, (block, n_rows, first_row) in enumerate(zip(
                self.blocks, self.row_counts, self._first_rows())):
            value = dask.delayed(_map_block, pure=True)(block, shared, output.function,
                                                        self.kernels, first_row, index)
            parts.append(da.from_delayed(value, shape=(n_rows, *columns), dtype=dtype))
        return da.concatenate(parts, axis=0)

    def total_log_likelihood(self, params):
        shared = share(params)
        parts = [task(_block_loglik, block, shared, self.kernels, first_row, index)
                 for index, (block, first_row) in enumerate(zip(self.blocks,
                                                                self._first_rows()))]
        n_samples, loglik = compute(tree_sum(parts))[0]
        if n_samples == 0:
            raise ValueError(f"Found array with 0 sample(s) (shape=(0, {self.n_features}))"
                             " while a minimum of 1 is required.")
        return exact_to_float(loglik), int(n_samples)

    def entries(self, params, rows, cols):
        row_counts = self.row_counts
        if any(math.isnan(n) for n in row_counts):
            row_counts = compute([task(_block_rows, block) for block in self.blocks])[0]
        starts = np.concatenate([[0], np.cumsum(row_counts, dtype=np.int64)])
        rows, cols = entry_indices(rows, cols, (int(starts[-1]), self.n_features))
        blocks = np.searchsorted(starts, rows, side="right") - 1
        wanted = sorted(set(blocks.tolist()))
        shared = share(params) if wanted else None
        found = compute([task(_block_entries, self.blocks[b], rows[blocks == b] - starts[b],
                              cols[blocks == b], shared, self.kernels)
                         for b in wanted])[0]
        values = np.empty(rows.shape[0], dtype=self.dtype)
        for b, block_values in zip(wanted, found):
            values[blocks == b] = block_values
        return values


# ---------------------------------------------------------------------------
# tasks on one block (run on the workers)
# ---------------------------------------------------------------------------

# The pass buffers of each worker thread, kept across iterations as the
# in-memory source keeps its own.
_thread_buffers = threading.local()


def _buffers(n_components, n_features, diag, kernels):
    backend, n_threads = kernels
    key = (n_components, n_features, diag, backend, n_threads)
    buffers = getattr(_thread_buffers, "buffers", None)
    if buffers is None or buffers.key != key:
        buffers = PassBuffers(n_components, n_features, diag=diag, backend=backend,
                              n_threads=n_threads)
        _thread_buffers.buffers = buffers
    return buffers


def _em_pass(block, params, first_row, kernels, weight_floor):
    """One fused pass over a block: its statistics and exact log-likelihood sum.

    The posteriors are made and dropped here, on the worker.
    """
    n_components, n_features = params.means.shape
    buffers = _buffers(n_components, n_features, np.ndim(params.variances) == 2, kernels)
    buffers.fused_pass(block, params, weight_floor=weight_floor, first_row=first_row)
    # Copies: the buffers serve this thread's next block while the sums travel.
    return (*buffers.stats.copy().arrays(), exact_sum(buffers.row_loglik,
                                                      backend=kernels[0]))


def _column_stats(block):
    return column_sums(block), column_counts(block)


def _centred_column_sq(block, centres):
    return (centred_column_sq(block, centres),)


def _distances(block, centres, kernels):
    backend, n_threads = kernels
    return _sq_distances(block, centres, backend=backend, n_threads=n_threads)


def _estep_block(block, params, kernels, first_row, index):
    """E-step of one block; ``first_row`` None when the blocks' sizes are unknown."""
    backend, n_threads = kernels
    try:
        return estep(block, params, backend=backend, n_threads=n_threads,
                     first_row=first_row or 0)
    except ValueError as exc:
        if first_row is None:  # rows of this block counted from its start
            raise ValueError(f"in row block {index}: {exc}") from None
        raise


def _map_block(block, params, function, kernels, first_row, index):
    post, row_loglik = _estep_block(block, params, kernels, first_row, index)
    return function(block, post, row_loglik, params)


def _map_chunk(chunk, params, function, kernels, missing_values, n_features, dtype,
               block_info=None):
    """:func:`_map_block` on a chunk of a Dask array (``map_blocks``)."""
    block = _array_block(chunk, missing_values, n_features, dtype)
    first_row = block_info[0]["array-location"][0][0] if block_info else None
    first_row = None if first_row is None or math.isnan(first_row) else int(first_row)
    index = block_info[0]["chunk-location"][0] if block_info else 0
    return _map_block(block, params, function, kernels, first_row, index)


def _block_loglik(block, params, kernels, first_row, index):
    _, row_loglik = _estep_block(block, params, kernels, first_row, index)
    return block.n_samples, exact_sum(row_loglik, backend=kernels[0])


def _block_rows(block):
    return block.n_samples


def _block_entries(block, rows, cols, params, kernels):
    backend, n_threads = kernels
    return completed_entries(block, rows, cols, params, backend=backend,
                             n_threads=n_threads)


# ---------------------------------------------------------------------------
# k-means++ seeding and k-means on the blocks
# ---------------------------------------------------------------------------

class _Seeding(Seeding):
    """k-means++ state kept on the workers: per block, the distances of its rows
    to their closest centre; the client sees per-block totals only.

    A draw ``u * total`` falls in the first block whose running total reaches
    it, then at the first row of that block whose running sum reaches the
    rest: the row the in-memory cumulative sum finds, except when the draw
    lies within rounding (1e-16 relative) of a boundary between rows.
    """

    def __init__(self, source):
        self.source = source
        self.closest = self.trials = None
        self.block_totals = self.trial_totals = self.running = None
        # Centres the persisted state was computed from: kept while that state
        # may have to be recomputed (a lost worker).
        self.shared = []

    def _on_blocks(self, function, *per_block, shared=()):
        """Persisted ``function(block, *per_block[k], *shared, kernels)`` per block."""
        source = self.source
        return persist([source.task_on(k, function, block, *(part[k] for part in per_block),
                                       *shared, source.kernels)
                        for k, block in enumerate(source.blocks)])

    def _totals(self, arrays):
        return np.array(compute([self.source.task_on(k, _distance_total, array)
                                 for k, array in enumerate(arrays)])[0])

    def start(self, centre):
        self.shared.append(share(np.atleast_2d(centre)))
        self.closest = self._on_blocks(_first_distances, shared=(self.shared[-1],))
        self.block_totals = None

    def total(self):
        if self.block_totals is None:
            self.block_totals = self._totals(self.closest)
        self.running = np.cumsum(self.block_totals)
        return self.running[-1]

    def locate(self, draws):
        source = self.source
        blocks = np.searchsorted(self.running, draws)
        last = len(self.closest) - 1
        beyond = blocks > last  # past the end by rounding: the last row, as in memory
        blocks = np.minimum(blocks, last)
        offsets = np.where(blocks > 0, self.running[np.maximum(blocks - 1, 0)], 0.0)
        wanted = sorted(set(blocks.tolist()))
        found = compute([source.task_on(b, _locate_in_block, self.closest[b],
                                        source.blocks[b],
                                        draws[blocks == b] - offsets[blocks == b])
                         for b in wanted])[0]
        rows = np.empty(draws.shape[0], dtype=np.int64)
        for b, (local, entries) in zip(wanted, found):
            rows[blocks == b] = source.starts[b] + local
            # The client asks for these rows next (the candidates): fetched now.
            source.remember_rows(source.starts[b] + local, entries)
        rows[beyond] = source.n_samples - 1
        return rows

    def trial(self, candidates):
        self.shared.append(share(candidates))
        self.trials = self._on_blocks(_trial_distances, self.closest,
                                      shared=(self.shared[-1],))
        # Per block and candidate: the total distance if the candidate were kept.
        self.trial_totals = self._totals(self.trials)
        return self.trial_totals.sum(axis=0)

    def keep(self, best):
        self.closest = persist([self.source.task_on(k, _column, trial, best)
                                for k, trial in enumerate(self.trials)])
        self.block_totals = self.trial_totals[:, best]


def _first_distances(block, centre, kernels):
    return _distances(block, centre, kernels)[:, 0]


def _distance_total(distances):
    """Sum over the rows of a block, row after row, per column if 2-D."""
    return distances.sum(axis=0)


def _locate_in_block(closest, block, draws):
    """Rows of a block where its running sum of distances reaches each draw,
    with their entries."""
    rows = np.searchsorted(np.cumsum(closest), draws)
    rows = np.minimum(rows, closest.shape[0] - 1)
    return rows, row_entries(block, rows)


def _trial_distances(block, closest, candidates, kernels):
    return np.minimum(closest[:, None], _distances(block, candidates, kernels))


def _column(trial, best):
    return np.ascontiguousarray(trial[:, best])


class _Clustering(Clustering):
    """k-means iterations on the blocks; the labels stay on the workers."""

    def __init__(self, source, n_components):
        self.source = source
        self.n_components = n_components
        self.labels = self.last_sizes = None
        self.shared = []  # means the persisted labels were computed from

    def assign(self, means):
        self.shared.append(share(means))
        on = self.source.task_on
        passes = persist([on(k, _hard_pass, block, self.shared[-1], self.source.kernels)
                          for k, block in enumerate(self.source.blocks)])
        labels = persist([on(k, _second, result) for k, result in enumerate(passes)])
        parts = self.source.sum_parts([on(k, _first, result)
                                       for k, result in enumerate(passes)])
        if self.labels is None:
            (*stats, sizes), = compute(parts)
            same = [False]
        else:
            (*stats, sizes), same = compute(parts, [
                on(k, np.array_equal, new, old)
                for k, (new, old) in enumerate(zip(labels, self.labels))])
        self.labels, self.last_sizes = labels, sizes
        return SufficientStats.from_arrays(*stats), all(same)

    def sizes(self):
        return self.last_sizes

    def spread(self, means, diag):
        shared = share(means)
        parts = [self.source.task_on(k, cluster_sums, block, labels, shared, diag)
                 for k, (block, labels) in enumerate(zip(self.source.blocks, self.labels))]
        return compute(self.source.sum_parts(parts))[0]


def _hard_pass(block, means, kernels):
    """A k-means pass: statistics and cluster sizes (rows with an observed
    entry), and the labels."""
    buffers = _buffers(means.shape[0], means.shape[1], False, kernels)
    labels = buffers.hard_pass(block, means)
    sizes = cluster_sizes(block, labels, means.shape[0])
    return (*buffers.stats.copy().arrays(), sizes), labels


def _first(pair):
    return pair[0]


def _second(pair):
    return pair[1]
