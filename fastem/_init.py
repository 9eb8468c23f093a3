"""Initial mixture parameters: the course's rule, random rows, k-means++.

Every initialisation reads the observed entries only (an
:class:`~fastem._data.ObservedData`), so sparse input is never densified,
and draws its randomness from one ``numpy.random.RandomState``.

The algorithms read the data through a few sums and look-ups (the methods of
:class:`LocalData`), so that the same code, with the same random draws, also
initialises a matrix held in row blocks on a Dask cluster
(``fastem._dask.BlockData`` implements the same methods block by block).
"""

import math

import numpy as np
import scipy.sparse as sp

from ._data import ObservedData, row_blocks
from ._em import Params, SufficientStats, fused_pass, make_workspace, sq_distances

__all__ = ["INIT_METHODS", "initial_params", "LocalData", "Distances",
           "centred_column_sq", "cluster_sums", "column_sums"]

INIT_METHODS = ("k-means++", "random_from_data", "course")

# Observed entries per block of rows in the sums over the data: the
# temporaries of a sum are O(block), never O(nnz).
_BLOCK_ENTRIES = 1 << 21

# Lloyd iterations after the k-means++ seeding: enough to move the seeds off
# single rows; EM does the rest.
KMEANS_MAX_ITER = 10


def initial_params(data, n_components, method, random_state, *, covariance_type,
                   min_variance, backend=None, n_threads=None):
    """Initial parameters of a mixture for ``data``.

    Parameters
    ----------
    data : ObservedData of shape (n_samples, n_features), or a block source
        A block source (``fastem._dask.BlockData``) has the methods of
        :class:`LocalData`.
    n_components : int
        K, between 1 and ``n_samples``.
    method : {'k-means++', 'random_from_data', 'course'}
        'course': SPEC section 3 (K random rows as they are, missing entries
        as 0, variance over all n * d entries). 'random_from_data': K random
        rows, their missing entries set to the column means. 'k-means++':
        k-means++ seeding and a few k-means iterations on the observed entries.
    random_state : numpy.random.RandomState
        Source of every random draw. 'course' calls its ``choice(n, K,
        replace=False)`` once, so ``RandomState(seed)`` reproduces the
        course's ``np.random.seed(seed); np.random.choice(...)``.
    covariance_type : {'spherical', 'diag'}
    min_variance : float
        Floor of the variances (not applied by 'course', as in the course).
    backend, n_threads
        Passed to the kernels ('k-means++' only).

    Returns
    -------
    Params
        means (K, d), variances (K,) or (K, d), weights (K,); float64.
    """
    if isinstance(data, ObservedData):
        data = LocalData(data, backend=backend, n_threads=n_threads)
    if method == "course":
        return _course(data, n_components, random_state, covariance_type)
    if method == "random_from_data":
        return _random_from_data(data, n_components, random_state, covariance_type,
                                 min_variance)
    if method == "k-means++":
        return _kmeans_plus_plus(data, n_components, random_state, covariance_type,
                                 min_variance)
    raise ValueError(f"unknown init method {method!r}; use one of {INIT_METHODS}")


# ---------------------------------------------------------------------------
# sums over the observed entries of one block of rows
# ---------------------------------------------------------------------------

def _column_sums(data, entry_values):
    """Per-column float64 sums of values given per observed entry.

    ``entry_values(start, stop)`` returns the values of entries start..stop-1;
    it is called on blocks of rows, so that no temporary is O(nnz).
    """
    sums = np.zeros(data.n_features)
    for first, last in _row_blocks(data.indptr):
        start, stop = data.indptr[first], data.indptr[last]
        block = sp.csr_matrix(
            (entry_values(start, stop), data.indices[start:stop],
             data.indptr[first:last + 1] - start),
            shape=(last - first, data.n_features), copy=False)
        # A sparse product: much faster than np.bincount with weights.
        sums += block.T @ np.ones(last - first)
    return sums


def column_sums(data):
    """Per-column float64 sums of the observed values of ``data``."""
    return _column_sums(data, lambda start, stop: data.data[start:stop].astype(np.float64))


def column_counts(data):
    """Number of observed entries of each column, as float64."""
    counts = np.zeros(data.n_features)
    # By blocks: np.bincount copies its input to intp.
    for first, last in _row_blocks(data.indptr):
        counts += np.bincount(data.indices[data.indptr[first]:data.indptr[last]],
                              minlength=data.n_features)
    return counts


def row_dense(data, row, fill):
    """Row ``row`` as a dense float64 vector, missing entries from ``fill``."""
    start, stop = data.indptr[row], data.indptr[row + 1]
    out = np.array(fill, dtype=np.float64)
    out[data.indices[start:stop]] = data.data[start:stop]
    return out


def _centred_column_sq(data, mean_vector):
    """sum over observed x_ui of (x_ui - mean_vector[i])^2, per column i."""
    def squares(start, stop):
        diff = data.data[start:stop] - mean_vector[data.indices[start:stop]]
        return np.square(diff, out=diff)
    return _column_sums(data, squares)


def centred_column_sq(data, centres):
    """:func:`_centred_column_sq` for each row of ``centres``: shape (len(centres), d)."""
    return np.stack([_centred_column_sq(data, centre) for centre in centres])


class Distances:
    """Squared distances over the observed entries: |x_u - c|^2 on C_u."""

    def __init__(self, data, backend=None, n_threads=None):
        self.data = data
        self.backend = backend
        self.n_threads = n_threads

    def to(self, centres):
        """Distances of every row to each centre: (n_samples, n_centres)."""
        return sq_distances(self.data, centres, backend=self.backend,
                            n_threads=self.n_threads)


def _row_blocks(indptr):
    """(first, last) row ranges of about ``_BLOCK_ENTRIES`` observed entries each."""
    return row_blocks(indptr, _BLOCK_ENTRIES)


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
    # Blocks of rows, so that the per-entry temporaries stay small.
    for first, last in _row_blocks(data.indptr):
        start, stop = data.indptr[first], data.indptr[last]
        rows = labels[first:last]
        entry_labels = np.repeat(rows, np.diff(data.indptr[first:last + 1]))
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


def lloyd_params(means):
    """Unit variances and equal weights: a hard pass then assigns by distance."""
    n_components = means.shape[0]
    return Params(means, np.ones(n_components), _uniform_weights(n_components))


# ---------------------------------------------------------------------------
# the data, in this process
# ---------------------------------------------------------------------------

class LocalData:
    """What the initialisations read from the data, for data in this process.

    ``fastem._dask.BlockData`` has the same attributes and methods for a
    matrix held in row blocks on a cluster, computed block by block.

    Parameters
    ----------
    data : ObservedData of shape (n_samples, n_features)
    backend, n_threads
        Passed to the kernels (the k-means passes).
    """

    def __init__(self, data, *, backend=None, n_threads=None):
        self.data = data
        self.backend = backend
        self.n_threads = n_threads
        self.n_samples, self.n_features = data.shape
        self.nnz = data.nnz

    def column_counts(self):
        """Observed entries per column, float64 (n_features,)."""
        return column_counts(self.data)

    def column_sums(self):
        """Sums of the observed values per column, float64 (n_features,)."""
        return column_sums(self.data)

    def rows(self, rows, fill):
        """The given rows, dense, their missing entries from ``fill``: (len(rows), d)."""
        return np.stack([row_dense(self.data, row, fill) for row in rows])

    def centred_column_sq(self, centres):
        """Per centre and column, the sum of (x_ui - centre_i)^2 over observed x_ui."""
        return centred_column_sq(self.data, centres)

    def overall_variance(self):
        """Variance of all observed values; 1 where it is not positive."""
        # Positive fallback for degenerate data (a single value, no observed entry).
        if self.nnz == 0:
            return 1.0
        value = float(np.var(self.data.data, dtype=np.float64))
        return value if value > 0 else 1.0

    def seeding(self):
        """The state of a k-means++ seeding: :class:`_LocalSeeding`."""
        return _LocalSeeding(self.data, self.backend, self.n_threads)

    def clustering(self, n_components):
        """The state of k-means iterations: :class:`_LocalClustering`."""
        return _LocalClustering(self.data, n_components, self.backend, self.n_threads)


class _LocalSeeding:
    """Distances of the rows to their closest centre, and trials of new centres."""

    def __init__(self, data, backend, n_threads):
        self.distances = Distances(data, backend, n_threads)
        self.closest = self.cumulative = self.trial_distances = None

    def start(self, centre):
        """The first centre: every row's distance to it."""
        self.closest = self.distances.to(centre)[:, 0]

    def total(self):
        """Sum of the closest distances, accumulated in row order."""
        self.cumulative = np.cumsum(self.closest)
        return self.cumulative[-1]

    def locate(self, draws):
        """Rows at which the running sum of distances first reaches each draw."""
        rows = np.searchsorted(self.cumulative, draws)
        return np.minimum(rows, self.closest.shape[0] - 1)

    def trial(self, candidates):
        """Sum of the closest distances if each candidate were added: (n_candidates,)."""
        self.trial_distances = np.minimum(self.closest[:, None],
                                          self.distances.to(candidates))
        return self.trial_distances.sum(axis=0)

    def keep(self, best):
        """Add candidate ``best`` of the last trial to the centres."""
        self.closest = self.trial_distances[:, best]


class _LocalClustering:
    """k-means iterations: hard-assignment passes of the EM kernels."""

    def __init__(self, data, n_components, backend, n_threads):
        self.data = data
        self.backend = backend
        self.n_threads = n_threads
        self.post = np.empty((data.n_samples, n_components))
        self.row_loglik = np.empty(data.n_samples)
        self.stats = SufficientStats(n_components, data.n_features)
        self.workspace = make_workspace(n_components, data.n_features, backend=backend,
                                        n_threads=n_threads)
        self.labels = None

    def assign(self, means):
        """Assign each row to its nearest mean (over its observed entries).

        Returns
        -------
        stats : SufficientStats
            Of the hard pass: counts and sums per cluster and column.
        unchanged : bool
            Whether every row kept the cluster of the previous call.
        """
        fused_pass(self.data, lloyd_params(means), self.post, self.row_loglik, self.stats,
                   hard=True, backend=self.backend, n_threads=self.n_threads,
                   workspace=self.workspace)
        labels = self.post.argmax(axis=1)
        unchanged = self.labels is not None and np.array_equal(labels, self.labels)
        self.labels = labels
        return self.stats, unchanged

    def sizes(self, n_components):
        """Rows with an observed entry in each cluster, float64 (K,)."""
        seen = self.labels[np.diff(self.data.indptr) > 0]
        return np.bincount(seen, minlength=n_components).astype(np.float64)

    def spread(self, means, diag):
        """:func:`cluster_sums` under the last assignment."""
        return cluster_sums(self.data, self.labels, means, diag)


# ---------------------------------------------------------------------------
# shared pieces
# ---------------------------------------------------------------------------

def _column_means(data, counts):
    """Column means of the observed values; the overall mean where a column is empty."""
    sums = data.column_sums()
    overall = sums.sum() / counts.sum() if data.nnz else 0.0
    return np.divide(sums, counts, out=np.full(data.n_features, overall),
                     where=counts > 0)


def _safe(variances, min_variance, fallback):
    """Floor at ``min_variance``; a variance still not positive becomes ``fallback()``.

    ``fallback`` is called only then: on a cluster it costs a pass over the data.
    """
    variances = np.maximum(variances, min_variance)
    if (variances > 0).all():
        return variances
    return np.where(variances > 0, variances, fallback())


def _uniform_weights(n_components):
    return np.full(n_components, 1.0 / n_components)


# ---------------------------------------------------------------------------
# 'course'
# ---------------------------------------------------------------------------

def _course(data, n_components, random_state, covariance_type):
    """SPEC section 3's init, on the observed entries (missing read as 0)."""
    n, d = data.n_samples, data.n_features
    chosen = random_state.choice(n, n_components, replace=False)
    means = data.rows(chosen, np.zeros(d))
    missing = n - data.column_counts()  # rows where column i reads 0
    # (x - mu)^2 summed over every entry: observed ones, plus mu^2 for each 0.
    column_sq = data.centred_column_sq(means) + missing * means * means
    if covariance_type == "diag":
        variances = column_sq / n
    else:
        variances = column_sq.sum(axis=1) / (n * d)
    variances = _safe(variances, 0.0, data.overall_variance)
    return Params(means, variances, _uniform_weights(n_components))


# ---------------------------------------------------------------------------
# 'random_from_data'
# ---------------------------------------------------------------------------

def _random_from_data(data, n_components, random_state, covariance_type, min_variance):
    """K random rows as means, their missing entries the column means."""
    chosen = random_state.choice(data.n_samples, n_components, replace=False)
    counts = data.column_counts()
    column_means = _column_means(data, counts)
    means = data.rows(chosen, column_means)
    variances = _spread_around(data, counts, column_means, means, covariance_type,
                               min_variance)
    return Params(means, variances, _uniform_weights(n_components))


def _spread_around(data, counts, column_means, means, covariance_type, min_variance):
    """Mean squared deviation of all observed entries from each mean.

    Spherical: over all observed entries; diag: per column, falling back to
    the component's spherical value in columns with no observed entry.
    """
    # One pass: deviations from the column means, then per mean
    # sum (x - mu)^2 = sum (x - m)^2 + count * (m - mu)^2 (sum (x - m) = 0).
    spread = data.centred_column_sq(column_means[None, :])[0]
    column_sq = spread + counts * (column_means - means) ** 2
    spherical = column_sq.sum(axis=1) / max(float(counts.sum()), 1.0)
    if covariance_type == "diag":
        diag = np.divide(column_sq, counts, out=np.repeat(spherical[:, None],
                                                          data.n_features, axis=1),
                         where=counts > 0)
        return _safe(diag, min_variance, data.overall_variance)
    return _safe(spherical, min_variance, data.overall_variance)


# ---------------------------------------------------------------------------
# 'k-means++'
# ---------------------------------------------------------------------------

def _kmeans_plus_plus(data, n_components, random_state, covariance_type, min_variance):
    column_means = _column_means(data, data.column_counts())
    means = _seed_kmeans_plus_plus(data, n_components, random_state, column_means)
    clusters = data.clustering(n_components)
    means = _lloyd(clusters, means)
    # Rows with no observed entry are at distance 0 from every centre: they
    # say nothing about the weights. An empty cluster keeps a small weight,
    # so that EM can still use it.
    weights = np.maximum(clusters.sizes(n_components), 1.0)
    weights /= weights.sum()
    variances = _cluster_variances(data, clusters, means, covariance_type, min_variance)
    return Params(means, variances, weights)


def _seed_kmeans_plus_plus(data, n_components, random_state, column_means):
    """Greedy k-means++ (as scikit-learn's): 2 + ln K trials per new centre.

    Centres are rows of the data with their missing entries set to the
    column means; distances are taken over each row's observed entries.
    """
    n = data.n_samples
    seeding = data.seeding()
    n_trials = 2 + int(math.log(n_components))
    first = random_state.randint(n)
    centres = [data.rows([first], column_means)[0]]
    seeding.start(centres[0])
    for _ in range(1, n_components):
        potential = seeding.total()
        if potential > 0:
            draws = random_state.uniform(size=n_trials) * potential
            rows = seeding.locate(draws)
        else:  # every row sits on a centre: any row will do
            rows = random_state.randint(n, size=n_trials)
        candidates = data.rows(rows, column_means)
        best = int(np.argmin(seeding.trial(candidates)))
        centres.append(candidates[best])
        seeding.keep(best)
    return np.stack(centres)


def _lloyd(clusters, means):
    """A few k-means iterations; returns the final means (``clusters`` keeps the labels).

    Each iteration is one hard-assignment pass of the EM kernels (each row to
    its nearest mean over its observed entries) and a mean update where a
    cluster observes a column; elsewhere the mean keeps its value.
    """
    for _ in range(KMEANS_MAX_ITER):
        stats, unchanged = clusters.assign(means)
        counts = stats.resp_obs_sum
        means = np.divide(stats.resp_x_sum, counts, out=means.copy(), where=counts > 0)
        if unchanged:
            break
    return means


def _cluster_variances(data, clusters, means, covariance_type, min_variance):
    """Within-cluster mean squared deviation over the observed entries.

    A cluster (diag: a cluster and column) without observed entries gets the
    pooled value of all clusters.
    """
    cluster_sq, counts = clusters.spread(means, covariance_type == "diag")
    pooled = cluster_sq.sum() / counts.sum() if counts.sum() > 0 else 0.0
    fallback = pooled if pooled > 0 else data.overall_variance()
    variances = np.divide(cluster_sq, counts, out=np.full(cluster_sq.shape, fallback),
                          where=counts > 0)
    return _safe(variances, min_variance, lambda: fallback)
