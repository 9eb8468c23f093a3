"""The course's ``kmeans`` module: hard-assignment k-means on complete data."""

from typing import Tuple

import numpy as np

from .._em import mstep as _mstep
from .._pass import PassBuffers
from ._shared import mstep_from_post, observed, to_mixture, to_params
from .common import GaussianMixture

__all__ = ["estep", "mstep", "run"]


def estep(X: np.ndarray, mixture: GaussianMixture) -> np.ndarray:
    """One-hot assignment (n, K) of each row to its nearest mean."""
    data = observed(X, None)
    means = to_params(mixture, data.n_features).means
    buffers = PassBuffers(*means.shape)
    buffers.hard_pass(data, means)
    return buffers.post.copy()


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
    params = to_params(mixture, data.n_features)
    buffers = PassBuffers(*params.means.shape)
    prev_cost = None
    cost = None
    while prev_cost is None or prev_cost - cost > 1e-4:
        prev_cost = cost
        buffers.hard_pass(data, params.means)
        params, sq_error = _mstep(buffers.stats, params.means, params.variances,
                                  data.n_samples, min_variance=0.0, mean_threshold=0.0)
        cost = float(sq_error.sum())
    return to_mixture(params), buffers.post.copy(), cost
