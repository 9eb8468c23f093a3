"""The course's EM on incomplete data, written densely in plain NumPy.

This is the yardstick for fastem's timings: the vectorised implementation a
careful student of the course writes (docs/model.md, sections 1-3). Arrays are dense
(n, d), 0 marks a missing entry, and the only Python loops run over the K
components and the EM iterations, never over rows.
"""

import numpy as np
from scipy.special import logsumexp

__all__ = ["estep_dense", "mstep_dense", "em_iteration_dense", "run_dense"]


def estep_dense(X, mu, var, p):
    """E-step in the log domain over the observed (non-zero) entries.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Data, 0 marking missing entries.
    mu : ndarray of shape (K, d)
    var : ndarray of shape (K,)
    p : ndarray of shape (K,)

    Returns
    -------
    post : ndarray of shape (n, K)
    log_likelihood : float
    """
    mask = X != 0
    n_observed = mask.sum(axis=1)
    K = mu.shape[0]
    f = np.empty((X.shape[0], K))
    for j in range(K):
        sq_dist = (((X - mu[j]) * mask) ** 2).sum(axis=1)
        f[:, j] = (np.log(p[j] + 1e-16)
                   - n_observed / 2 * np.log(2 * np.pi * var[j])
                   - sq_dist / (2 * var[j]))
    row_loglik = logsumexp(f, axis=1)
    post = np.exp(f - row_loglik[:, None])
    return post, row_loglik.sum()


def mstep_dense(X, post, mu, min_variance=0.25):
    """M-step: means where the soft count reaches 1, floored variances.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Data, 0 marking missing entries.
    post : ndarray of shape (n, K)
    mu : ndarray of shape (K, d)
        Current means, kept where a soft count is below 1.
    min_variance : float, default=0.25

    Returns
    -------
    mu, var, p : ndarray of shapes (K, d), (K,), (K,)
    """
    n = X.shape[0]
    mask = X != 0
    n_hat = post.sum(axis=0)
    p = n_hat / n
    counts = post.T @ mask  # N[j, i]
    sums = post.T @ X  # missing entries are 0 and add nothing
    mu = np.where(counts >= 1, sums / np.maximum(counts, 1e-300), mu)
    K = mu.shape[0]
    var = np.empty(K)
    for j in range(K):
        sq_dist = (((X - mu[j]) * mask) ** 2).sum(axis=1)
        var[j] = post[:, j] @ sq_dist / (post[:, j] @ mask.sum(axis=1))
    var = np.maximum(var, min_variance)
    return mu, var, p


def em_iteration_dense(X, mu, var, p):
    """One loop iteration of the course's run: E-step then M-step.

    Returns
    -------
    mu, var, p : ndarray
        The new mixture.
    post : ndarray of shape (n, K)
        Posteriors of the E-step.
    log_likelihood : float
        Log-likelihood of the E-step (under the mixture passed in).
    """
    post, log_likelihood = estep_dense(X, mu, var, p)
    mu, var, p = mstep_dense(X, post, mu)
    return mu, var, p, post, log_likelihood


def run_dense(X, mu, var, p):
    """The course's run: EM until LL_new - LL_old <= 1e-6 * |LL_new|.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Data, 0 marking missing entries.
    mu, var, p : ndarray of shapes (K, d), (K,), (K,)
        Initial mixture, e.g. from ``fastem.course.init``.

    Returns
    -------
    mu, var, p : ndarray
        Mixture of the last M-step.
    post : ndarray of shape (n, K)
        Posteriors of the last E-step.
    log_likelihood : float
        Log-likelihood of the last E-step.
    n_iter : int
        Number of E-step/M-step iterations.
    """
    X = np.asarray(X, dtype=np.float64)
    previous = None
    n_iter = 0
    while True:
        mu, var, p, post, log_likelihood = em_iteration_dense(X, mu, var, p)
        n_iter += 1
        if previous is not None and log_likelihood - previous <= 1e-6 * abs(log_likelihood):
            return mu, var, p, post, log_likelihood, n_iter
        previous = log_likelihood
