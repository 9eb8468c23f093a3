"""Initial mixture parameters: the course's rule, random rows, k-means++.

Every initialisation reads the observed entries only (an
:class:`~fastem._data.ObservedData`), so sparse input is never densified,
and draws its randomness from one ``numpy.random.RandomState``.
"""

import math

import numpy as np

from ._em import Params, SufficientStats, fused_pass, make_workspace

__all__ = ["INIT_METHODS", "initial_params"]

INIT_METHODS = ("k-means++", "random_from_data", "course")

# Lloyd iterations after the k-means++ seeding: enough to move the seeds off
# single rows; EM does the rest.
KMEANS_MAX_ITER = 10


def initial_params(data, n_components, method, random_state, *, covariance_type,
                   min_variance, backend=None, n_threads=None):
    """Initial parameters of a mixture for ``data``.

    Parameters
    ----------
    data : ObservedData of shape (n_samples, n_features)
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
    if method == "course":
        return _course(data, n_components, random_state, covariance_type)
    if method == "random_from_data":
        return _random_from_data(data, n_components, random_state, covariance_type,
                                 min_variance)
    if method == "k-means++":
        return _kmeans_plus_plus(data, n_components, random_state, covariance_type,
                                 min_variance, backend, n_threads)
    raise ValueError(f"unknown init method {method!r}; use one of {INIT_METHODS}")


# ---------------------------------------------------------------------------
# sums over the observed entries
# ---------------------------------------------------------------------------

def _column_sums(data, values):
    """Per-column float64 sums of ``values`` (one per observed entry)."""
    # A sparse product: much faster than np.bincount with weights.
    return data.to_csr(values).T @ np.ones(data.n_samples)


def _column_counts(data):
    return np.bincount(data.indices, minlength=data.n_features).astype(np.float64)


def _column_means(data, counts):
    """Column means of the observed values; the overall mean where a column is empty."""
    sums = _column_sums(data, data.data.astype(np.float64, copy=False))
    overall = sums.sum() / counts.sum() if data.nnz else 0.0
    return np.divide(sums, counts, out=np.full(data.n_features, overall),
                     where=counts > 0)


def _row_dense(data, row, fill):
    """Row ``row`` as a dense float64 vector, missing entries from ``fill``."""
    start, stop = data.indptr[row], data.indptr[row + 1]
    out = np.array(fill, dtype=np.float64)
    out[data.indices[start:stop]] = data.data[start:stop]
    return out


def _centred_column_sq(data, mean_vector):
    """sum over observed x_ui of (x_ui - mean_vector[i])^2, per column i."""
    diff = data.data - mean_vector[data.indices]
    np.square(diff, out=diff)
    return _column_sums(data, diff)


def _safe(variances, min_variance, fallback):
    """Floor at ``min_variance``; a variance still not positive becomes ``fallback``."""
    variances = np.maximum(variances, min_variance)
    return np.where(variances > 0, variances, fallback)


def _overall_variance(data):
    # Positive fallback for degenerate data (a single value, no observed entry).
    if data.nnz == 0:
        return 1.0
    value = float(np.var(data.data, dtype=np.float64))
    return value if value > 0 else 1.0


def _uniform_weights(n_components):
    return np.full(n_components, 1.0 / n_components)


# ---------------------------------------------------------------------------
# 'course'
# ---------------------------------------------------------------------------

def _course(data, n_components, random_state, covariance_type):
    """SPEC section 3's init, on the observed entries (missing read as 0)."""
    n, d = data.shape
    chosen = random_state.choice(n, n_components, replace=False)
    means = np.stack([_row_dense(data, row, np.zeros(d)) for row in chosen])
    missing = n - _column_counts(data)  # rows where column i reads 0
    # (x - mu)^2 summed over every entry: observed ones, plus mu^2 for each 0.
    column_sq = np.stack([
        _centred_column_sq(data, mu) + missing * mu * mu for mu in means
    ])
    if covariance_type == "diag":
        variances = column_sq / n
    else:
        variances = column_sq.sum(axis=1) / (n * d)
    variances = _safe(variances, 0.0, _overall_variance(data))
    return Params(means, variances, _uniform_weights(n_components))


# ---------------------------------------------------------------------------
# 'random_from_data'
# ---------------------------------------------------------------------------

def _random_from_data(data, n_components, random_state, covariance_type, min_variance):
    """K random rows as means, their missing entries the column means."""
    chosen = random_state.choice(data.n_samples, n_components, replace=False)
    counts = _column_counts(data)
    column_means = _column_means(data, counts)
    means = np.stack([_row_dense(data, row, column_means) for row in chosen])
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
    spread = _centred_column_sq(data, column_means)
    column_sq = spread + counts * (column_means - means) ** 2
    spherical = column_sq.sum(axis=1) / max(float(counts.sum()), 1.0)
    fallback = _overall_variance(data)
    if covariance_type == "diag":
        diag = np.divide(column_sq, counts, out=np.repeat(spherical[:, None],
                                                          data.n_features, axis=1),
                         where=counts > 0)
        return _safe(diag, min_variance, fallback)
    return _safe(spherical, min_variance, fallback)


# ---------------------------------------------------------------------------
# 'k-means++'
# ---------------------------------------------------------------------------

class _Distances:
    """Squared distances over the observed entries: |x_u - c|^2 on C_u."""

    def __init__(self, data):
        self.values = data.to_csr(data.data.astype(np.float64, copy=False))
        self.pattern = data.to_csr(np.ones(data.nnz))
        squares = data.to_csr(np.square(data.data, dtype=np.float64))
        self.row_sq = np.asarray(squares.sum(axis=1)).ravel()

    def to(self, centres):
        """Distances of every row to each centre: (n_samples, n_centres)."""
        centres = np.atleast_2d(centres)
        dist = (self.row_sq[:, None] - 2.0 * (self.values @ centres.T)
                + self.pattern @ (centres * centres).T)
        return np.maximum(dist, 0.0, out=dist)


def _kmeans_plus_plus(data, n_components, random_state, covariance_type, min_variance,
                      backend, n_threads):
    column_means = _column_means(data, _column_counts(data))
    means = _seed_kmeans_plus_plus(data, n_components, random_state, column_means)
    labels, means = _lloyd(data, means, backend, n_threads)
    # Rows with no observed entry are at distance 0 from every centre: they
    # say nothing about the weights. An empty cluster keeps a small weight,
    # so that EM can still use it.
    seen = labels[np.diff(data.indptr) > 0]
    counts = np.bincount(seen, minlength=n_components).astype(np.float64)
    weights = np.maximum(counts, 1.0)
    weights /= weights.sum()
    variances = _cluster_variances(data, labels, means, covariance_type, min_variance)
    return Params(means, variances, weights)


def _seed_kmeans_plus_plus(data, n_components, random_state, column_means):
    """Greedy k-means++ (as scikit-learn's): 2 + ln K trials per new centre.

    Centres are rows of the data with their missing entries set to the
    column means; distances are taken over each row's observed entries.
    """
    n = data.n_samples
    distances = _Distances(data)
    n_trials = 2 + int(math.log(n_components))
    first = random_state.randint(n)
    centres = [_row_dense(data, first, column_means)]
    closest = distances.to(centres[0])[:, 0]
    for _ in range(1, n_components):
        potential = closest.sum()
        if potential > 0:
            cumulative = np.cumsum(closest)
            draws = random_state.uniform(size=n_trials) * cumulative[-1]
            rows = np.minimum(np.searchsorted(cumulative, draws), n - 1)
        else:  # every row sits on a centre: any row will do
            rows = random_state.randint(n, size=n_trials)
        candidates = np.stack([_row_dense(data, row, column_means) for row in rows])
        trial = np.minimum(closest[:, None], distances.to(candidates))
        best = int(np.argmin(trial.sum(axis=0)))
        centres.append(candidates[best])
        closest = trial[:, best]
    return np.stack(centres)


def _lloyd(data, means, backend, n_threads):
    """A few k-means iterations; returns the final labels and means.

    Each iteration is one hard-assignment pass of the EM kernels (each row to
    its nearest mean over its observed entries) and a mean update where a
    cluster observes a column; elsewhere the mean keeps its value.
    """
    n_components, n_features = means.shape
    # Unit variances and equal weights: the pass then assigns by distance.
    variances = np.ones(n_components)
    weights = _uniform_weights(n_components)
    post = np.empty((data.n_samples, n_components))
    row_loglik = np.empty(data.n_samples)
    stats = SufficientStats(n_components, n_features)
    workspace = make_workspace(n_components, n_features, backend=backend,
                               n_threads=n_threads)
    labels = None
    for _ in range(KMEANS_MAX_ITER):
        fused_pass(data, Params(means, variances, weights), post, row_loglik, stats,
                   hard=True, backend=backend, n_threads=n_threads, workspace=workspace)
        new_labels = post.argmax(axis=1)
        counts = stats.resp_obs_sum
        means = np.divide(stats.resp_x_sum, counts, out=means.copy(), where=counts > 0)
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
    return new_labels, means


def _row_blocks(indptr, entries=1 << 21):
    """(first, last) row ranges of about ``entries`` observed entries each."""
    n_rows = indptr.shape[0] - 1
    targets = np.arange(entries, indptr[-1], entries)
    bounds = np.unique(np.concatenate(
        [[0], np.searchsorted(indptr, targets, side="right") - 1, [n_rows]]))
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _cluster_variances(data, labels, means, covariance_type, min_variance):
    """Within-cluster mean squared deviation over the observed entries.

    A cluster (diag: a cluster and column) without observed entries gets the
    pooled value of all clusters.
    """
    n_components, n_features = means.shape
    diag = covariance_type == "diag"
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
    pooled = cluster_sq.sum() / counts.sum() if counts.sum() > 0 else 0.0
    fallback = pooled if pooled > 0 else _overall_variance(data)
    variances = np.divide(cluster_sq, counts, out=np.full(cluster_sq.shape, fallback),
                          where=counts > 0)
    return _safe(variances, min_variance, fallback)
