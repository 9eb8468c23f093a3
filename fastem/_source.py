"""The one interface to where the observed entries live: :class:`DataSource`.

The EM driver, the initialisations and the estimator's predictions read the
data through the methods below and nothing else, so that the same code runs
on a matrix in this process (``fastem._memory.InMemorySource``) and on row
blocks held by Dask workers (``fastem.dask.DaskSource``). Every method is a
computation over all the rows, whose result is small (K x d at most) or is
per row (predictions, returned as an array of the source's kind).
``tests/test_sources.py`` checks that both implementations give the same
answers.
"""

import abc

import numpy as np

__all__ = ["DataSource", "Seeding", "Clustering", "DeferredInput"]


class DataSource(abc.ABC):
    """The observed entries of an ``(n_samples, n_features)`` matrix, wherever they are.

    Attributes
    ----------
    n_samples, n_features : int
    nnz : int or None
        Number of observed entries; None where not known before a pass (lazy
        Dask blocks, read for predictions).
    dtype : numpy.dtype
        Of the observed values (float32 or float64).
    max_abs : float or None
        Largest absolute observed value (0 with none); None as ``nnz``.
    backend : {None, 'cython', 'python'}
    n_threads : int or None
        How the kernels run on these data.
    """

    n_samples: int
    n_features: int
    nnz: int
    dtype: np.dtype
    max_abs: float

    @property
    def shape(self):
        return (self.n_samples, self.n_features)

    # -- EM ---------------------------------------------------------------------

    @abc.abstractmethod
    def em_pass(self, params, *, weight_floor):
        """One fused pass over every row: the M-step's statistics and the log-likelihood.

        Returns
        -------
        stats : fastem._pass.SufficientStats
            Summed over all rows.
        log_likelihood : float
            The exactly rounded sum of the rows' log-likelihoods.
        """

    # -- what the initialisations read ------------------------------------------

    @abc.abstractmethod
    def column_counts(self):
        """Observed entries per column, float64 (n_features,)."""

    @abc.abstractmethod
    def column_sums(self):
        """Sums of the observed values per column, float64 (n_features,)."""

    @abc.abstractmethod
    def rows(self, rows, fill):
        """The given rows, dense, their missing entries from ``fill``: (len(rows), d)."""

    @abc.abstractmethod
    def centred_column_sq(self, centres):
        """Per centre and column i, the sum over observed x_ui of (x_ui - centre_i)^2.

        Returns
        -------
        ndarray of shape (len(centres), n_features)
        """

    @abc.abstractmethod
    def seeding(self):
        """The state of a k-means++ seeding over these rows: a :class:`Seeding`."""

    @abc.abstractmethod
    def clustering(self, n_components):
        """The state of k-means iterations over these rows: a :class:`Clustering`."""

    def check_fit_memory(self, n_components, diag):
        """Raise MemoryError when a fit of ``n_components`` cannot fit in memory.

        Where the passes run elsewhere (Dask workers) there is nothing to
        check here: the default does nothing.
        """

    def overall_variance(self):
        """Variance of all observed values (two passes); 1 where it is not positive."""
        # Positive fallback for degenerate data (a single value, no observed entry).
        count = float(self.column_counts().sum())
        if count == 0:
            return 1.0
        mean = float(self.column_sums().sum()) / count
        spread = self.centred_column_sq(np.full((1, self.n_features), mean))
        value = float(spread.sum()) / count
        return value if value > 0 else 1.0

    # -- predictions ------------------------------------------------------------

    @abc.abstractmethod
    def map_rows(self, params, output):
        """The E-step of every row under ``params``, turned into ``output``.

        Parameters
        ----------
        params : Params
        output : fastem._predictions.RowOutput

        Returns
        -------
        array of shape (n_samples, ...)
            A NumPy array in memory, a lazy Dask array on Dask.
        """

    @abc.abstractmethod
    def total_log_likelihood(self, params):
        """The exactly rounded total log-likelihood of the rows under ``params``.

        Returns
        -------
        log_likelihood : float
        n_samples : int
            The number of rows (counted, where the source did not know it).
        """

    @abc.abstractmethod
    def entries(self, params, rows, cols):
        """Entries (rows[p], cols[p]) of the completed matrix, as a flat NumPy array.

        ``rows`` and ``cols`` (array-likes of ints, of one shape) are checked
        against the shape (``fastem._predictions.entry_indices``). Only the
        rows asked for go through the E-step.
        """


class Seeding(abc.ABC):
    """A k-means++ seeding: every row's squared distance to its closest centre."""

    @abc.abstractmethod
    def start(self, centre):
        """The first centre: every row's distance to it."""

    @abc.abstractmethod
    def total(self):
        """Sum of the closest distances, accumulated in row order."""

    @abc.abstractmethod
    def locate(self, draws):
        """Rows at which the running sum of distances first reaches each draw."""

    @abc.abstractmethod
    def trial(self, candidates):
        """Sum of the closest distances if each candidate were added: (n_candidates,)."""

    @abc.abstractmethod
    def keep(self, best):
        """Add candidate ``best`` of the last trial to the centres."""


class Clustering(abc.ABC):
    """k-means iterations: hard-assignment passes of the EM kernels."""

    @abc.abstractmethod
    def assign(self, means):
        """Assign each row to its nearest mean (over its observed entries).

        Returns
        -------
        stats : fastem._pass.SufficientStats
            Of the hard pass: counts and sums per cluster and column.
        unchanged : bool
            Whether every row kept the cluster of the previous call.
        """

    @abc.abstractmethod
    def sizes(self):
        """Rows with an observed entry in each cluster of the last assignment, (K,)."""

    @abc.abstractmethod
    def spread(self, means, diag):
        """Squared deviations from the cluster means under the last assignment.

        Returns
        -------
        cluster_sq, counts : ndarray of shape (K,), or (K, d) if ``diag``
        """


class DeferredInput:
    """An input whose entries are read into a data source by a module of its own.

    ``fastem.dask.Triples`` is one: ``fastem._input.as_source`` hands it to
    the module named by ``source_module`` (which imports Dask), so that the
    layers above never need to know Dask.
    """

    source_module = None
