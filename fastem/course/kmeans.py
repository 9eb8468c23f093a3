"""The course's ``kmeans`` module: hard-assignment k-means on complete data."""

from typing import Tuple

import numpy as np

from .._em import (Params, SufficientStats, check_params, fused_pass, make_workspace,
                   mstep as _mstep)
from ._shared import mstep_from_post, observed, to_mixture, to_params
from .common import GaussianMixture

__all__ = ["estep", "mstep", "run"]


def _assign(data, means, post, row_loglik, stats, workspace=None):
    # Hard assignment ignores variances and weights; unit ones keep the pass valid.
    K = means.shape[0]
    params = Params(means, np.ones(K), np.full(K, 1.0 / K))
    fused_pass(data, params, post, row_loglik, stats, hard=True, workspace=workspace)


def estep(X: np.ndarray, mixture: GaussianMixture) -> np.ndarray:
    """One-hot assignment (n, K) of each row to its nearest mean."""
    data = observed(X, None)
    means = check_params(to_params(mixture), data.n_features).means
    K = means.shape[0]
    post = np.empty((data.n_samples, K))
    _assign(data, means, post, np.empty(data.n_samples),
            SufficientStats(K, data.n_features))
    return post


def mstep(X: np.ndarray, post: np.ndarray) -> Tuple[GaussianMixture, float]:
    """Means of the assigned rows, pooled variances, weights and the cost."""
    data = observed(X, None)
    post = np.asarray(post, dtype=np.float64)
    if post.ndim != 2:
        raise ValueError(f"post must be 2-D (n, K), got shape {post.shape}")
    K = post.shape[1]
    mixture, sq_error = mstep_from_post(
        data, post, np.zeros((K, data.n_features)), np.ones(K),
        min_variance=0.0, mean_threshold=0.0)
    return mixture, float(sq_error.sum())


def run(X: np.ndarray, mixture: GaussianMixture,
        post: np.ndarray) -> Tuple[GaussianMixture, np.ndarray, float]:
    """k-means until the cost decreases by no more than 1e-4.

    Returns the mixture, the one-hot assignments and the final cost (sum of
    squared distances to the assigned means).
    """
    data = observed(X, None)
    params = check_params(to_params(mixture), data.n_features)
    K = params.means.shape[0]
    post = np.empty((data.n_samples, K))
    row_loglik = np.empty(data.n_samples)
    stats = SufficientStats(K, data.n_features)
    workspace = make_workspace(K, data.n_features)
    prev_cost = None
    cost = None
    while prev_cost is None or prev_cost - cost > 1e-4:
        prev_cost = cost
        _assign(data, params.means, post, row_loglik, stats, workspace)
        params, sq_error = _mstep(stats, params.means, params.variances,
                                  data.n_samples, min_variance=0.0,
                                  mean_threshold=0.0)
        cost = float(sq_error.sum())
    return to_mixture(params), post, cost
