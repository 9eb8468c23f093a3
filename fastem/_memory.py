"""The data source of a matrix held in this process: :class:`InMemorySource`."""

from typing import NamedTuple

import numpy as np

from ._backend import threads_for
from ._em import run_em as _run_em
from ._observed import (ObservedData, centred_column_sq, cluster_sizes, cluster_sums,
                        column_counts, column_sums, dense_rows, row_entries)
from ._pass import (PassBuffers, check_fit_memory, estep, exact_sum, exact_to_float,
                    sq_distances, total_loglik)
from ._predictions import completed_entries, entry_indices
from ._source import Clustering, DataSource, Seeding
from ._validation import Params, check_max_iter, check_n_threads, check_tol

__all__ = ["InMemorySource", "InMemoryResult", "run_em"]


class InMemorySource(DataSource):
    """The observed entries of a matrix in this process, as one ObservedData.

    Parameters
    ----------
    data : ObservedData of shape (n_samples, n_features)
    backend : {None, 'cython', 'python'}, default=None
    n_threads : int or None, default=None
        Kernel threads; None: the backend's default, at most one per
        ``fastem._backend.ENTRIES_PER_THREAD`` observed entries (a small
        matrix runs on one thread).
    columns : ObservedData of shape (n_features, n_samples), optional
        The same entries by column (the transpose of ``data``). Given, EM's
        passes read the matrix column by column
        (``fastem._pass.column_fused_pass``), which is faster where the rows
        are few and the columns many; everything else reads ``data``.

    Attributes
    ----------
    data : ObservedData
    buffers : PassBuffers or None
        Those of the last :meth:`em_pass` (its posteriors are the last
        E-step's), kept across passes with the same shapes.
    """

    def __init__(self, data, *, backend=None, n_threads=None, columns=None):
        if not isinstance(data, ObservedData):
            raise TypeError(f"InMemorySource takes ObservedData, got {type(data).__name__}")
        if columns is not None and (not isinstance(columns, ObservedData)
                                    or columns.shape != data.shape[::-1]
                                    or columns.nnz != data.nnz):
            raise ValueError("columns must be the ObservedData of the transpose of data")
        self.data = data
        self.columns = columns
        self.row_counts = None if columns is None else data.row_counts
        self.backend = backend
        self.n_threads = threads_for(data.nnz, n_threads, backend)
        self.n_samples, self.n_features = data.shape
        self.nnz = data.nnz
        self.dtype = data.data.dtype
        # Two reductions rather than np.abs: no temporary of nnz values.
        self.max_abs = float(max(data.data.max(), -data.data.min())) if data.nnz else 0.0
        self.buffers = None

    def check_fit_memory(self, n_components, diag):
        check_fit_memory(self.n_samples, self.n_features, n_components, diag=diag,
                         backend=self.backend, n_threads=self.n_threads)

    def _buffers(self, n_components, diag):
        n_rows = None if self.columns is None else self.n_samples
        key = (n_components, self.n_features, diag, self.backend, self.n_threads, n_rows)
        if self.buffers is None or self.buffers.key != key:
            self.buffers = PassBuffers(n_components, self.n_features, diag=diag,
                                       backend=self.backend, n_threads=self.n_threads,
                                       n_rows=n_rows)
        return self.buffers

    def em_pass(self, params, *, weight_floor):
        buffers = self._buffers(params.means.shape[0], np.ndim(params.variances) == 2)
        if self.columns is None:
            buffers.fused_pass(self.data, params, weight_floor=weight_floor)
        else:
            buffers.column_pass(self.columns, self.row_counts, params,
                                weight_floor=weight_floor)
        return buffers.stats, exact_to_float(exact_sum(buffers.row_loglik,
                                                       backend=self.backend))

    def column_counts(self):
        return column_counts(self.data)

    def column_sums(self):
        return column_sums(self.data)

    def rows(self, rows, fill):
        return dense_rows(row_entries(self.data, rows), fill)

    def centred_column_sq(self, centres):
        return centred_column_sq(self.data, centres)

    def seeding(self):
        return _Seeding(self)

    def clustering(self, n_components):
        return _Clustering(self, n_components)

    def _estep(self, params):
        """Posteriors and row log-likelihoods, by columns where the source has them."""
        if self.columns is None:
            return estep(self.data, params, backend=self.backend, n_threads=self.n_threads)
        # The column pass's statistics are not needed here: its E-step alone
        # is still faster than the row E-step's cache misses on such data.
        buffers = self._buffers(params.means.shape[0], np.ndim(params.variances) == 2)
        buffers.column_pass(self.columns, self.row_counts, params)
        return buffers.post.copy(), buffers.row_loglik.copy()

    def map_rows(self, params, output):
        post, row_loglik = self._estep(params)
        return output.function(self.data, post, row_loglik, params)

    def total_log_likelihood(self, params):
        _, row_loglik = self._estep(params)
        return total_loglik(row_loglik, backend=self.backend), self.n_samples

    def entries(self, params, rows, cols):
        rows, cols = entry_indices(rows, cols, self.shape)
        return completed_entries(self.data, rows, cols, params, backend=self.backend,
                                 n_threads=self.n_threads)


class _Seeding(Seeding):
    """Distances of the rows to their closest centre, and trials of new centres."""

    def __init__(self, source):
        self.source = source
        self.closest = self.cumulative = self.trial_distances = None

    def _distances(self, centres):
        return sq_distances(self.source.data, centres, backend=self.source.backend,
                            n_threads=self.source.n_threads)

    def start(self, centre):
        self.closest = self._distances(centre)[:, 0]

    def total(self):
        self.cumulative = np.cumsum(self.closest)
        return self.cumulative[-1]

    def locate(self, draws):
        rows = np.searchsorted(self.cumulative, draws)
        return np.minimum(rows, self.closest.shape[0] - 1)

    def trial(self, candidates):
        self.trial_distances = np.minimum(self.closest[:, None],
                                          self._distances(candidates))
        return self.trial_distances.sum(axis=0)

    def keep(self, best):
        self.closest = self.trial_distances[:, best]


class _Clustering(Clustering):
    """k-means iterations: hard-assignment passes of the EM kernels."""

    def __init__(self, source, n_components):
        self.data = source.data
        self.n_components = n_components
        self.buffers = PassBuffers(n_components, source.n_features, backend=source.backend,
                                   n_threads=source.n_threads)
        self.labels = None

    def assign(self, means):
        labels = self.buffers.hard_pass(self.data, means)
        unchanged = self.labels is not None and np.array_equal(labels, self.labels)
        self.labels = labels
        return self.buffers.stats, unchanged

    def sizes(self):
        return cluster_sizes(self.data, self.labels, self.n_components)

    def spread(self, means, diag):
        return cluster_sums(self.data, self.labels, means, diag)


class InMemoryResult(NamedTuple):
    """An EM run in memory: :class:`fastem._em.EMResult` and the last posteriors."""

    params: Params
    post: np.ndarray
    log_likelihood: float
    n_iter: int
    converged: bool


def run_em(data, params, *, backend=None, n_threads=None, tol=1e-6, max_iter=None,
           **settings):
    """EM on ObservedData in this process (``fastem._em.run_em`` on its source).

    Parameters
    ----------
    data : ObservedData
    params : Params
        The initial parameters.
    backend, n_threads
        How the kernels run.
    tol, max_iter
        The convergence rule; ``max_iter=None`` runs until it holds.
    **settings
        ``min_variance``, ``mean_threshold``, ``weight_floor``, ``callback``:
        see ``fastem._em.run_em``.

    Returns
    -------
    InMemoryResult
        With the posteriors of the last E-step (a copy).
    """
    check_tol(tol)
    max_iter = check_max_iter(max_iter, allow_none=True)
    source = InMemorySource(data, backend=backend, n_threads=check_n_threads(n_threads))
    result = _run_em(source, params, tol=tol, max_iter=max_iter, **settings)
    return InMemoryResult(result.params, source.buffers.post.copy(), *result[1:])
