"""Initial mixture parameters: the course's rule, random rows, k-means++.

Every initialisation reads the data through a data source
(:class:`fastem._source.DataSource`): a few sums over the observed entries,
some rows, and the k-means++ and k-means states. So sparse input is never
densified, and a matrix in memory and one in row blocks on a Dask cluster
are initialised by the same code with the same random draws from one
``numpy.random.RandomState``.
"""

import math

import numpy as np

from ._validation import INIT_METHODS, Params

__all__ = ["initial_params", "KMEANS_MAX_ITER"]

# Lloyd iterations after the k-means++ seeding: enough to move the seeds off
# single rows; EM does the rest.
KMEANS_MAX_ITER = 10


def initial_params(data, n_components, method, random_state, *, covariance_type,
                   min_variance):
    """Initial parameters of a mixture for ``data``.

    Parameters
    ----------
    data : DataSource of shape (n_samples, n_features)
        In memory or on Dask; its kernels run on its backend and threads.
    n_components : int
        K, between 1 and ``n_samples``.
    method : {'k-means++', 'random_from_data', 'course'}
        'course': docs/model.md, section 3 (K random rows as they are, missing entries
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

    Returns
    -------
    Params
        means (K, d), variances (K,) or (K, d), weights (K,); float64.
    """
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
    """The course's init (docs/model.md, section 3) on the observed entries,
    missing ones read as 0."""
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
    weights = np.maximum(clusters.sizes(), 1.0)
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
