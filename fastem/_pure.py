"""Pure NumPy/SciPy kernels: the twin of the compiled ``_kernels`` module.

Both modules export the same functions with the same arguments; ``_backend``
validates the arguments and chooses one. Arrays marked OUT are overwritten.
Work is done with sparse products over the observed entries only: time and
memory are O(nnz * K + n_samples * K + K * n_features).
"""

import numpy as np
import scipy.sparse as sp

__all__ = [
    "fused_pass", "estep_pass", "accumulate_stats", "workspace_size",
    "openmp_enabled", "max_threads",
]

openmp_enabled = False


def max_threads():
    return 1


def workspace_size(n_components, n_features, n_threads):
    """This backend needs no workspace."""
    return 0


def _csr(values, indices, indptr, n_features):
    shape = (indptr.shape[0] - 1, n_features)
    return sp.csr_matrix((values, indices, indptr), shape=shape, copy=False)


def _squared_distances(data, indices, indptr, means):
    """a[u, j] = sum over the observed i of row u of (x_ui - means[j, i])**2."""
    n_features = means.shape[1]
    # Centre each column on the component average so that the expansion
    # |x - m|^2 = x^2 - 2 x m + m^2 does not cancel catastrophically.
    shift = means.mean(axis=0)
    centred_data = data - shift[indices]
    centred_means = means - shift
    X = _csr(centred_data, indices, indptr, n_features)
    mask = _csr(np.ones_like(centred_data), indices, indptr, n_features)
    sq_norms = _csr(centred_data**2, indices, indptr, n_features) @ np.ones(n_features)
    dist = mask @ (centred_means**2).T
    dist -= 2.0 * (X @ centred_means.T)
    dist += sq_norms[:, None]
    np.maximum(dist, 0.0, out=dist)
    return dist


def _log_posteriors(dist, row_counts, variances, log_weights, post, row_loglik):
    """Fill post and row_loglik from squared distances (log domain)."""
    log_joint = post
    np.multiply(dist, -0.5 / variances, out=log_joint)
    log_joint -= np.outer(row_counts, 0.5 * np.log(2.0 * np.pi * variances))
    log_joint += log_weights
    row_max = log_joint.max(axis=1)
    np.subtract(log_joint, row_max[:, None], out=log_joint)
    np.exp(log_joint, out=log_joint)
    np.log(log_joint.sum(axis=1), out=row_loglik)
    row_loglik += row_max
    log_joint /= log_joint.sum(axis=1)[:, None]


def _harden(dist, post):
    """Replace post by a one-hot assignment to the nearest mean."""
    nearest = dist.argmin(axis=1)
    post.fill(0.0)
    post[np.arange(post.shape[0]), nearest] = 1.0


def estep_pass(data, indices, indptr, means, variances, log_weights, post,
               row_loglik, n_threads):
    """E-step over the observed entries.

    Parameters
    ----------
    data, indices, indptr : ndarray
        Validated CSR arrays of the observed entries (n_samples rows).
    means : ndarray of shape (n_components, n_features), float64
    variances : ndarray of shape (n_components,), float64, positive
    log_weights : ndarray of shape (n_components,), float64
        Log mixing weights as used in the component scores.
    post : ndarray of shape (n_samples, n_components), float64, OUT
        Posterior probabilities.
    row_loglik : ndarray of shape (n_samples,), float64, OUT
        log p(x_u) over the observed entries of each row.
    n_threads : int
        Ignored by this backend.
    """
    dist = _squared_distances(data, indices, indptr, means)
    row_counts = np.diff(indptr).astype(np.float64)
    _log_posteriors(dist, row_counts, variances, log_weights, post, row_loglik)


def fused_pass(data, indices, indptr, means, variances, log_weights, hard, post,
               row_loglik, resp_sum, resp_x_sum, resp_obs_sum, resp_sqdist_sum,
               n_threads, workspace=None):
    """One EM iteration's pass: the E-step and the M-step's sufficient statistics.

    Parameters
    ----------
    data, indices, indptr, means, variances, log_weights, post, row_loglik, n_threads
        As in :func:`estep_pass`.
    hard : bool
        If True, ``post`` becomes a one-hot assignment of each row to its
        nearest mean (k-means); ``row_loglik`` is still the mixture's.
    resp_sum : ndarray of shape (n_components,), float64, OUT
        n_j = sum_u post[u, j].
    resp_x_sum : ndarray of shape (n_components, n_features), float64, OUT
        S1[j, i] = sum_u post[u, j] x_ui over the observed entries.
    resp_obs_sum : ndarray of shape (n_components, n_features), float64, OUT
        N[j, i] = sum_u post[u, j] over the rows observing column i.
    resp_sqdist_sum : ndarray of shape (n_components,), float64, OUT
        R_j = sum_u post[u, j] |x_u - means[j]|^2 over the observed entries.
    workspace : ndarray or None
        Scratch memory of ``workspace_size(...)`` doubles; unused here.
    """
    n_features = means.shape[1]
    dist = _squared_distances(data, indices, indptr, means)
    row_counts = np.diff(indptr).astype(np.float64)
    _log_posteriors(dist, row_counts, variances, log_weights, post, row_loglik)
    if hard:
        _harden(dist, post)
    _accumulate(data, indices, indptr, n_features, post, dist, resp_sum,
                resp_x_sum, resp_obs_sum, resp_sqdist_sum)


def accumulate_stats(data, indices, indptr, means, post, resp_sum, resp_x_sum,
                     resp_obs_sum, resp_sqdist_sum):
    """The sufficient statistics of :func:`fused_pass` for a given ``post``.

    This serves an M-step from arbitrary posteriors (the course's ``mstep``);
    ``resp_sqdist_sum`` is taken with respect to ``means``.
    """
    dist = _squared_distances(data, indices, indptr, means)
    _accumulate(data, indices, indptr, means.shape[1], post, dist, resp_sum,
                resp_x_sum, resp_obs_sum, resp_sqdist_sum)


def _accumulate(data, indices, indptr, n_features, post, dist, resp_sum,
                resp_x_sum, resp_obs_sum, resp_sqdist_sum):
    X = _csr(data, indices, indptr, n_features)
    mask = _csr(np.ones(data.shape[0]), indices, indptr, n_features)
    post.sum(axis=0, out=resp_sum)
    resp_x_sum[...] = (X.T @ post).T
    resp_obs_sum[...] = (mask.T @ post).T
    np.einsum("uj,uj->j", post, dist, out=resp_sqdist_sum)
